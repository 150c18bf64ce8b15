package internlm.engine.chat;

import internlm.engine.tokenizer.Tokenizer;

import java.util.ArrayList;
import java.util.List;

/**
 * InternLM's ChatML format (InternLM2/2.5/3): each turn is {@code <|im_start|>role[ name=NAME]\ncontent<|im_end|>\n},
 * the prompt starts with BOS once and, for generation, ends with {@code <|im_start|>assistant\n}. When the
 * conversation does not start with a system message, InternLM's default identity prompt is inserted (as LMDeploy
 * and HF {@code chat()} do).
 */
public final class ChatTemplate {
    /** InternLM's default system prompt (HF chat() meta_instruction / LMDeploy). */
    public static final String DEFAULT_SYSTEM_PROMPT = """
            You are an AI assistant whose name is InternLM (书生·浦语).
            - InternLM (书生·浦语) is a conversational language AI that is developed by Shanghai AI Laboratory (上海人工智能实验室). It is designed to be helpful, honest, and harmless.
            - InternLM (书生·浦语) can understand and communicate fluently in the language chosen by the user such as English and 中文.""";

    public static final String IM_START = "<|im_start|>";
    public static final String IM_END = "<|im_end|>";

    private final Tokenizer tokenizer;
    private final String defaultSystemPrompt;

    public ChatTemplate(Tokenizer tokenizer, String defaultSystemPrompt) {
        this.tokenizer = tokenizer;
        this.defaultSystemPrompt = defaultSystemPrompt;
        if (tokenizer.tokenId(IM_START) < 0 || tokenizer.tokenId(IM_END) < 0) {
            throw new IllegalArgumentException("this model's vocabulary has no " + IM_START + " / " + IM_END
                    + " tokens, so it cannot use the ChatML chat format (use generate with a plain prompt instead)");
        }
    }

    public ChatTemplate(Tokenizer tokenizer) {
        this(tokenizer, DEFAULT_SYSTEM_PROMPT);
    }

    /** The conversation as text (without BOS). */
    public String render(List<ChatMessage> messages, boolean addGenerationPrompt) {
        List<ChatMessage> all = new ArrayList<>(messages);
        if (defaultSystemPrompt != null && (all.isEmpty() || !all.get(0).role().equals("system"))) {
            all.add(0, ChatMessage.system(defaultSystemPrompt));
        }
        StringBuilder sb = new StringBuilder();
        for (ChatMessage m : all) {
            sb.append(IM_START).append(m.role());
            if (m.name() != null && !m.name().isEmpty()) {
                sb.append(" name=").append(m.name());
            }
            sb.append('\n').append(m.content()).append(IM_END).append('\n');
        }
        if (addGenerationPrompt) {
            sb.append(IM_START).append("assistant\n");
        }
        return sb.toString();
    }

    /**
     * Token ids of the conversation: BOS (when the model adds one) followed by the rendered text with special
     * tokens parsed.
     */
    public int[] encode(List<ChatMessage> messages, boolean addGenerationPrompt) {
        return tokenizer.encode(render(messages, addGenerationPrompt), true, true);
    }
}
