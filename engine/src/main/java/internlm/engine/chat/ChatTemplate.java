package internlm.engine.chat;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import internlm.engine.tokenizer.Tokenizer;
import internlm.loader.Vocabulary;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * InternLM's chat format (InternLM2/2.5/3; spec §9.2–9.3): ChatML with an extra role and role names.
 * <ul>
 *   <li>each turn is {@code <|im_start|>role[ name=NAME]\ncontent<|im_end|>\n}; roles system, user, assistant and
 *       environment (tool results; OpenAI's "tool" role maps to it, "developer" to system); names "plugin" and
 *       "interpreter" become the tokens {@code <|plugin|>} / {@code <|interpreter|>}, other names (e.g. "file") stay
 *       as written;</li>
 *   <li>the token sequence starts with BOS once; for generation the text ends with {@code <|im_start|>assistant\n}
 *       (a final assistant message is left open instead, to be continued);</li>
 *   <li>when the conversation does not start with a system message, a default system prompt is put first
 *       (InternLM's identity prompt, as HF {@code chat()} and LMDeploy do; or the deep-thinking prompt);</li>
 *   <li>tools become a {@code system name=<|plugin|>} turn holding the JSON array of function schemas, right after
 *       the first system turn; an assistant turn's tool calls are written after its content as
 *       {@code <|action_start|><|plugin|>\n{"name": …, "parameters": …}<|action_end|>} (code-interpreter calls as
 *       {@code <|action_start|><|interpreter|>\n```python …```<|action_end|>}); tool results are
 *       {@code environment name=<|plugin|>} (or {@code <|interpreter|>}) turns. JSON in the prompt is written as
 *       Python's {@code json.dumps(..., ensure_ascii=False)} writes it, like LMDeploy (see {@link PyJson}).</li>
 * </ul>
 * A model file's own {@code tokenizer.chat_template} (Jinja) is not executed: {@link #forModel} checks that it is
 * this ChatML format and refuses clearly when it is something else.
 */
public final class ChatTemplate {
    /** InternLM's default system prompt (HF chat() meta_instruction / LMDeploy / the InternLM3 README). */
    public static final String DEFAULT_SYSTEM_PROMPT = """
            You are an AI assistant whose name is InternLM (书生·浦语).
            - InternLM (书生·浦语) is a conversational language model that is developed by Shanghai AI Laboratory (上海人工智能实验室). It is designed to be helpful, honest, and harmless.
            - InternLM (书生·浦语) can understand and communicate fluently in the language chosen by the user such as English and 中文.""";

    /**
     * InternLM3's deep-thinking system prompt (the model's documented "thinking mode": the text the InternLM3 README
     * passes as the system message; the model was trained with it, so it is reproduced exactly).
     */
    public static final String THINKING_SYSTEM_PROMPT = """
            You are an expert mathematician with extensive experience in mathematical competitions. You approach problems through systematic thinking and rigorous reasoning. When solving problems, follow these thought processes:
            ## Deep Understanding
            Take time to fully comprehend the problem before attempting a solution. Consider:
            - What is the real question being asked?
            - What are the given conditions and what do they tell us?
            - Are there any special restrictions or assumptions?
            - Which information is crucial and which is supplementary?
            ## Multi-angle Analysis
            Before solving, conduct thorough analysis:
            - What mathematical concepts and properties are involved?
            - Can you recall similar classic problems or solution methods?
            - Would diagrams or tables help visualize the problem?
            - Are there special cases that need separate consideration?
            ## Systematic Thinking
            Plan your solution path:
            - Propose multiple possible approaches
            - Analyze the feasibility and merits of each method
            - Choose the most appropriate method and explain why
            - Break complex problems into smaller, manageable steps
            ## Rigorous Proof
            During the solution process:
            - Provide solid justification for each step
            - Include detailed proofs for key conclusions
            - Pay attention to logical connections
            - Be vigilant about potential oversights
            ## Repeated Verification
            After completing your solution:
            - Verify your results satisfy all conditions
            - Check for overlooked special cases
            - Consider if the solution can be optimized or simplified
            - Review your reasoning process
            Remember:
            1. Take time to think thoroughly rather than rushing to an answer
            2. Rigorously prove each key conclusion
            3. Keep an open mind and try different approaches
            4. Summarize valuable problem-solving methods
            5. Maintain healthy skepticism and verify multiple times
            Your response should reflect deep mathematical understanding and precise logical thinking, making your solution path and reasoning clear to others.
            When you're ready, present your complete solution with:
            - Clear problem understanding
            - Detailed solution process
            - Key insights
            - Thorough verification
            Focus on clear, logical progression of ideas and thorough explanation of your mathematical reasoning. Provide answers in the same language as the user asking the question, repeat the final answer using a '\\boxed{}' without any units, you have [[8192]] tokens to complete the answer.
            """;

    public static final String IM_START = "<|im_start|>";
    public static final String IM_END = "<|im_end|>";
    public static final String ACTION_START = "<|action_start|>";
    public static final String ACTION_END = "<|action_end|>";
    public static final String PLUGIN = "<|plugin|>";
    public static final String INTERPRETER = "<|interpreter|>";

    /** The markers of InternLM's ChatML; a recognised template uses no other {@code <|…|>} markers. */
    private static final Set<String> OWN_MARKERS = Set.of(IM_START, IM_END, ACTION_START, ACTION_END, PLUGIN, INTERPRETER);
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Tokenizer tokenizer;
    private final String defaultSystemPrompt;
    private final boolean templateAddsBos;
    private final String origin;

    private ChatTemplate(Tokenizer tokenizer, String defaultSystemPrompt, boolean templateAddsBos, String origin) {
        this.tokenizer = tokenizer;
        this.defaultSystemPrompt = defaultSystemPrompt;
        this.templateAddsBos = templateAddsBos;
        this.origin = origin;
        for (String t : new String[] {IM_START, IM_END}) {
            if (tokenizer.tokenId(t) < 0) {
                throw new IllegalArgumentException("this model's vocabulary has no " + t + " token, so it cannot use InternLM's ChatML chat format"
                        + " (use generate with a plain prompt instead)");
            }
        }
    }

    /** InternLM's ChatML with the given default system prompt (null: none). */
    public ChatTemplate(Tokenizer tokenizer, String defaultSystemPrompt) {
        this(tokenizer, defaultSystemPrompt, false, "InternLM ChatML (built in)");
    }

    /** InternLM's ChatML with InternLM's default system prompt. */
    public ChatTemplate(Tokenizer tokenizer) {
        this(tokenizer, DEFAULT_SYSTEM_PROMPT);
    }

    /**
     * The chat format for a model: its GGUF/HF {@code chat_template} when that is InternLM's ChatML (with the
     * template's own default system prompt if it has one, else InternLM's), InternLM's ChatML when the model has no
     * template. A template in another format is refused with an {@link UnsupportedTemplateException} saying what
     * was found, unless {@code builtIn} asks to use InternLM's ChatML regardless.
     */
    public static ChatTemplate forModel(Tokenizer tokenizer, boolean builtIn) {
        Vocabulary v = tokenizer.vocabulary();
        String t = v.chatTemplate();
        if (builtIn || t == null || t.isBlank()) {
            return new ChatTemplate(tokenizer, DEFAULT_SYSTEM_PROMPT, false,
                    builtIn ? "InternLM ChatML (built in, chosen over the model's template)" : "InternLM ChatML (built in; the model has no chat template)");
        }
        Recognised r = recognise(t);
        return new ChatTemplate(tokenizer, r.systemPrompt() != null ? r.systemPrompt() : DEFAULT_SYSTEM_PROMPT, r.addsBos(),
                "the model's chat template (ChatML)");
    }

    /** The same format with another default system prompt (null: none; e.g. for reward scoring). */
    public ChatTemplate withDefaultSystemPrompt(String prompt) {
        return new ChatTemplate(tokenizer, prompt, templateAddsBos, origin);
    }

    public String defaultSystemPrompt() {
        return defaultSystemPrompt;
    }

    /** Where the format came from, for the user (e.g. "the model's chat template (ChatML)"). */
    public String origin() {
        return origin;
    }

    public Tokenizer tokenizer() {
        return tokenizer;
    }

    // ------------------------------------------------------------------ recognising a model's template

    /** A model template found to be InternLM's ChatML: whether it writes BOS, and its own default system prompt. */
    public record Recognised(boolean addsBos, String systemPrompt) {}

    /** A chat template that is not InternLM's ChatML. */
    public static final class UnsupportedTemplateException extends IllegalArgumentException {
        public UnsupportedTemplateException(String message) {
            super(message);
        }
    }

    private static final Pattern MARKER = Pattern.compile("<\\|[A-Za-z_]+\\|>|\\[/?INST]|<start_of_turn>|<end_of_turn>|<\\uFF5C|<\\|User\\|>|<eoa>|<eoh>");
    private static final Pattern ROLE_REF = Pattern.compile("message\\s*(\\[\\s*['\"]role['\"]\\s*]|\\.role\\b)");
    private static final Pattern CONTENT_REF = Pattern.compile("message\\s*(\\[\\s*['\"]content['\"]\\s*]|\\.content\\b)");
    private static final Pattern TEMPLATE_SYSTEM = Pattern.compile("<\\|im_start\\|>system(?:\\\\n|\\n)([^'\"{}%]+?)<\\|im_end\\|>");

    /**
     * Checks that a Jinja chat template renders InternLM's ChatML: turns delimited by {@code <|im_start|>} /
     * {@code <|im_end|>} with the message's role and content, no markers of other formats (Llama 3 headers,
     * {@code [INST]}, Gemma turns, InternLM v1's {@code <|User|>}/{@code <eoa>}), no other model's tool syntax
     * ({@code <tools>}, {@code <tool_call>}).
     */
    public static Recognised recognise(String template) {
        String what = "the model's chat template (tokenizer.chat_template, " + template.length() + " characters)";
        String expect = " — this engine renders InternLM's ChatML (<|im_start|>role\\n…<|im_end|>) only. "
                + "Use 'generate' with a prompt of your own, or ask for InternLM's ChatML anyway (--chat-template internlm).";
        if (!template.contains(IM_START) || !template.contains(IM_END)) {
            throw new UnsupportedTemplateException(what + " is not ChatML: it has no " + IM_START + "/" + IM_END + expect);
        }
        Set<String> foreign = new LinkedHashSet<>();
        Matcher m = MARKER.matcher(template);
        while (m.find()) {
            if (!OWN_MARKERS.contains(m.group())) {
                foreign.add(m.group());
            }
        }
        if (!foreign.isEmpty()) {
            throw new UnsupportedTemplateException(what + " uses markers of another format: " + String.join(" ", foreign) + expect);
        }
        if (template.contains("<tool_call>") || template.contains("<tools>")) {
            throw new UnsupportedTemplateException(what + " describes tools in another model's syntax (<tools>/<tool_call>), not InternLM's"
                    + " <|action_start|><|plugin|>" + expect);
        }
        if (!ROLE_REF.matcher(template).find() || !CONTENT_REF.matcher(template).find()) {
            throw new UnsupportedTemplateException(what + " does not write each message's role and content in the ChatML way" + expect);
        }
        String system = null;
        Matcher s = TEMPLATE_SYSTEM.matcher(template);
        if (s.find()) {
            system = s.group(1).replace("\\n", "\n").replace("\\'", "'").replace("\\\"", "\"");
        }
        return new Recognised(template.contains("bos_token"), system);
    }

    // ------------------------------------------------------------------ rendering

    /** The conversation as text (without BOS). */
    public String render(List<ChatMessage> messages, boolean addGenerationPrompt) {
        return render(messages, null, addGenerationPrompt);
    }

    /**
     * The conversation as text (without BOS).
     *
     * @param functions JSON array of function schemas ({@code {"name", "description", "parameters"}}) the model
     *                  may call, or null / empty for none
     */
    public String render(List<ChatMessage> messages, JsonNode functions, boolean addGenerationPrompt) {
        List<ChatMessage> all = new ArrayList<>(messages.size() + 2);
        for (ChatMessage m : messages) {
            all.add(m.role().equals("developer") ? new ChatMessage("system", m.content(), m.name(), m.toolCalls(), m.toolCallId()) : m);
        }
        if (defaultSystemPrompt != null && (all.isEmpty() || !all.get(0).role().equals("system"))) {
            all.add(0, ChatMessage.system(defaultSystemPrompt));
        }
        if (functions != null && !functions.isEmpty()) {
            if (!functions.isArray()) {
                throw new IllegalArgumentException("tools must be a JSON array of function schemas");
            }
            ChatMessage toolsTurn = new ChatMessage("system", PyJson.dumps(functions), "plugin");
            all.add(!all.isEmpty() && all.get(0).role().equals("system") ? 1 : 0, toolsTurn);
        }
        Map<String, ToolCall.Kind> callKinds = new HashMap<>();
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < all.size(); i++) {
            ChatMessage m = all.get(i);
            String role = switch (m.role()) {
                case "system", "user", "assistant", "environment" -> m.role();
                case "tool" -> "environment";
                default -> throw new IllegalArgumentException("unknown role '" + m.role() + "' (system, user, assistant, tool, environment)");
            };
            String name = m.name();
            if (m.role().equals("tool")) {
                ToolCall.Kind k = m.toolCallId() == null ? null : callKinds.get(m.toolCallId());
                name = k == ToolCall.Kind.INTERPRETER || "interpreter".equals(m.name()) ? INTERPRETER : PLUGIN;
            }
            sb.append(IM_START).append(role);
            if (name != null && !name.isEmpty()) {
                sb.append(" name=").append(roleName(name));
            }
            sb.append('\n').append(m.content());
            for (ToolCall c : m.toolCalls()) {
                if (!role.equals("assistant")) {
                    throw new IllegalArgumentException("only assistant messages carry tool calls (a " + m.role() + " message has some)");
                }
                sb.append(renderCall(c));
                if (c.id() != null) {
                    callKinds.put(c.id(), c.kind());
                }
            }
            boolean openEnd = addGenerationPrompt && i == all.size() - 1 && role.equals("assistant");
            if (!openEnd) {
                sb.append(IM_END).append('\n');
            }
        }
        if (addGenerationPrompt && (all.isEmpty() || !all.get(all.size() - 1).role().equals("assistant"))) {
            sb.append(IM_START).append("assistant\n");
        }
        return sb.toString();
    }

    private static String roleName(String name) {
        switch (name) {
            case "plugin", PLUGIN:
                return PLUGIN;
            case "interpreter", INTERPRETER:
                return INTERPRETER;
            default:
                if (name.contains("\n") || name.contains("<|") || name.contains("\r")) {
                    throw new IllegalArgumentException("message name '" + name.replace("\n", "\\n") + "' may not contain line breaks or special tokens");
                }
                return name;
        }
    }

    /** An assistant's call in InternLM's action syntax. */
    public static String renderCall(ToolCall c) {
        JsonNode args;
        try {
            args = JSON.readTree(c.arguments());
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("the arguments of tool call '" + c.name() + "' are not valid JSON: " + e.getOriginalMessage());
        }
        if (args == null || !args.isObject()) {
            throw new IllegalArgumentException("the arguments of tool call '" + c.name() + "' must be a JSON object");
        }
        if (c.kind() == ToolCall.Kind.INTERPRETER) {
            JsonNode code = args.get("code");
            if (code == null || !code.isTextual()) {
                throw new IllegalArgumentException("a " + ToolCall.INTERPRETER_FUNCTION + " call needs arguments {\"code\": \"…\"}");
            }
            String text = code.textValue();
            String block = text.stripLeading().startsWith("```") ? text : "```python\n" + text + (text.endsWith("\n") ? "" : "\n") + "```";
            return ACTION_START + INTERPRETER + "\n" + block + ACTION_END;
        }
        ObjectNode call = JsonNodeFactory.instance.objectNode();
        call.put("name", c.name());
        call.set("parameters", args);
        return ACTION_START + PLUGIN + "\n" + PyJson.dumps(call) + ACTION_END;
    }

    // ------------------------------------------------------------------ tokens

    /** Token ids of the conversation (see {@link #encode(List, JsonNode, boolean)}). */
    public int[] encode(List<ChatMessage> messages, boolean addGenerationPrompt) {
        return encode(messages, null, addGenerationPrompt);
    }

    /**
     * Token ids of the conversation: BOS once (when the model's vocabulary or its template adds one) followed by the
     * rendered text with special tokens parsed.
     */
    public int[] encode(List<ChatMessage> messages, JsonNode functions, boolean addGenerationPrompt) {
        return encodeText(render(messages, functions, addGenerationPrompt));
    }

    /** BOS (once, when the model or its template wants one) + the text's tokens with special tokens parsed. */
    public int[] encodeText(String text) {
        int[] body = tokenizer.encode(text, false, true);
        Vocabulary v = tokenizer.vocabulary();
        if (v.bos() < 0 || !(v.addBos() || templateAddsBos)) {
            return body;
        }
        int[] out = new int[body.length + 1];
        out[0] = v.bos();
        System.arraycopy(body, 0, out, 1, body.length);
        return out;
    }

    /** Ids of the tool-protocol tokens present in the vocabulary (to be kept as text while parsing tool calls). */
    public int[] actionTokens() {
        List<Integer> ids = new ArrayList<>();
        for (String t : new String[] {ACTION_START, ACTION_END, PLUGIN, INTERPRETER}) {
            int id = tokenizer.tokenId(t);
            if (id >= 0) {
                ids.add(id);
            }
        }
        return ids.stream().mapToInt(Integer::intValue).toArray();
    }

    /** The id of {@code <|action_end|>}, or -1. */
    public int actionEndToken() {
        return tokenizer.tokenId(ACTION_END);
    }
}
