package internlm.engine.chat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import internlm.engine.Fixtures;
import internlm.engine.tokenizer.Tokenizer;
import internlm.loader.LoadedModel;
import internlm.loader.Progress;
import internlm.loader.Vocabulary;
import internlm.loader.gguf.GgufModelLoader;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Rendering, byte for byte, against the examples of InternLM's chat-format document (chat/chat_format.md) and
 * LMDeploy's InternLM2 template test, plus the rules of spec §9 (default system prompt, BOS once, generation prompt,
 * names, tools) and the recognition of model templates.
 */
class ChatTemplateTest {
    static LoadedModel model;
    static Tokenizer tok;
    static ChatTemplate plain;   // no default system prompt: renders exactly the messages given
    static final ObjectMapper JSON = new ObjectMapper();

    @BeforeAll
    static void load() {
        model = GgufModelLoader.load(Fixtures.fixture("internlm2-tiny-q8_0.gguf"), Progress.NONE);
        tok = new Tokenizer(model.vocab());
        plain = new ChatTemplate(tok, null);
    }

    @AfterAll
    static void close() {
        model.close();
    }

    @Test
    void basicStructureOfTheChatFormatDocument() {
        List<ChatMessage> msgs = List.of(
                ChatMessage.system("You are InternLM2-Chat, a harmless AI assistant"),
                ChatMessage.user("Hello"),
                ChatMessage.assistant("Hello, I am InternLM2-Chat, how can I assist you?"));
        assertEquals("""
                <|im_start|>system
                You are InternLM2-Chat, a harmless AI assistant<|im_end|>
                <|im_start|>user
                Hello<|im_end|>
                <|im_start|>assistant
                Hello, I am InternLM2-Chat, how can I assist you?<|im_end|>
                """, plain.render(msgs, false));
    }

    @Test
    void functionCallOfTheChatFormatDocument() throws Exception {
        // chat_format.md "Function Call"; the tool schema line is written the way LMDeploy serialises it
        // (json.dumps, ensure_ascii=False) since the document shows a Python literal
        JsonNode tools = JSON.readTree("""
                [{"name": "get_current_weather", "description": "Get the current weather in a given location",
                  "parameters": {"type": "object", "properties": {"location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
                  "unit": {"type": "string"}}, "required": ["location"]}}]""");
        ToolCall call = ToolCall.plugin("call_1", "get_current_weather", "{\"location\":\"Shanghai\"}");
        List<ChatMessage> msgs = List.of(
                ChatMessage.system("You are InternLM2-Chat, a harmless AI assistant"),
                ChatMessage.user("I want to know today's weather in Shanghai"),
                ChatMessage.assistant("Sure, I will search for the weather of Shanghai.", List.of(call)),
                ChatMessage.tool("call_1", "{\"temperature\": 22}"),
                ChatMessage.assistant("The weather in Shanghai is 22 celsius"));
        String expected = """
                <|im_start|>system
                You are InternLM2-Chat, a harmless AI assistant<|im_end|>
                <|im_start|>system name=<|plugin|>
                [{"name": "get_current_weather", "description": "Get the current weather in a given location", "parameters": {"type": "object", "properties": {"location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"}, "unit": {"type": "string"}}, "required": ["location"]}}]<|im_end|>
                <|im_start|>user
                I want to know today's weather in Shanghai<|im_end|>
                <|im_start|>assistant
                Sure, I will search for the weather of Shanghai.<|action_start|><|plugin|>
                {"name": "get_current_weather", "parameters": {"location": "Shanghai"}}<|action_end|><|im_end|>
                <|im_start|>environment name=<|plugin|>
                {"temperature": 22}<|im_end|>
                <|im_start|>assistant
                The weather in Shanghai is 22 celsius<|im_end|>
                """;
        assertEquals(expected, plain.render(msgs, tools, false));
    }

    @Test
    void lmdeployToolCallVector() {
        // LMDeploy's test_internlm_tool_call: the tools arrive as a system message named plugin, the assistant's call
        // has its arguments as a JSON string; the tool result is rendered as environment name=<|plugin|> (the chat
        // format document's form; that LMDeploy version omitted the name)
        String tools = "[{\"description\": \"Compute the sum of two numbers\", \"name\": \"add\", \"parameters\": {\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"int\", \"description\": \"A number\"}, \"b\": {\"type\": \"int\", \"description\": \"A number\"}}, \"required\": [\"a\", \"b\"]}}, {\"description\": \"Calculate the product of two numbers\", \"name\": \"mul\", \"parameters\": {\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"int\", \"description\": \"A number\"}, \"b\": {\"type\": \"int\", \"description\": \"A number\"}}, \"required\": [\"a\", \"b\"]}}]";
        List<ChatMessage> msgs = List.of(
                new ChatMessage("system", tools, "plugin"),
                ChatMessage.user("Compute (3+5)*2"),
                ChatMessage.assistant("(3+5)*2 = 8*2 =", List.of(ToolCall.plugin("1", "mul", "{\"a\": 8, \"b\": 2}"))),
                ChatMessage.tool("1", "3+5=16"));
        ChatTemplate withDefault = new ChatTemplate(tok); // the first message is a system one: no default inserted
        assertEquals("<|im_start|>system name=<|plugin|>\n" + tools + "<|im_end|>\n<|im_start|>user\nCompute (3+5)*2<|im_end|>\n"
                + "<|im_start|>assistant\n(3+5)*2 = 8*2 =<|action_start|><|plugin|>\n{\"name\": \"mul\", \"parameters\": {\"a\": 8, \"b\": 2}}<|action_end|><|im_end|>\n"
                + "<|im_start|>environment name=<|plugin|>\n3+5=16<|im_end|>\n<|im_start|>assistant\n", withDefault.render(msgs, true));
    }

    @Test
    void codeInterpreterOfTheChatFormatDocument() {
        String code = "import plotly.express as px\nimport pandas as pd\n\n# Load the data into a pandas dataframe\ndf = pd.read_csv('data.csv')";
        List<ChatMessage> msgs = List.of(
                ChatMessage.system("You are InternLM2-Chat, a harmless AI assistant"),
                new ChatMessage("system", "You now have access to a Jupyter notebook environment supporting Python code execution.", "interpreter"),
                ChatMessage.user("Please help me process and visualize this dataset.\n"),
                new ChatMessage("user", "[{\"path\": \"data.csv\", size='10K'}]", "file"),
                ChatMessage.assistant("I have processed the data and visualized it for you.\n\n<|action_start|><|interpreter|>\n```python\n" + code + "\n```<|action_end|>\n"),
                new ChatMessage("environment", "![image](xxx.png)\n", "interpreter"),
                ChatMessage.user("Can you explain the code?"));
        String expected = """
                <|im_start|>system
                You are InternLM2-Chat, a harmless AI assistant<|im_end|>
                <|im_start|>system name=<|interpreter|>
                You now have access to a Jupyter notebook environment supporting Python code execution.<|im_end|>
                <|im_start|>user
                Please help me process and visualize this dataset.
                <|im_end|>
                <|im_start|>user name=file
                [{"path": "data.csv", size='10K'}]<|im_end|>
                <|im_start|>assistant
                I have processed the data and visualized it for you.

                <|action_start|><|interpreter|>
                ```python
                import plotly.express as px
                import pandas as pd

                # Load the data into a pandas dataframe
                df = pd.read_csv('data.csv')
                ```<|action_end|>
                <|im_end|>
                <|im_start|>environment name=<|interpreter|>
                ![image](xxx.png)
                <|im_end|>
                <|im_start|>user
                Can you explain the code?<|im_end|>
                <|im_start|>assistant
                """;
        assertEquals(expected, plain.render(msgs, true));
        // the same assistant turn given as a structured interpreter call renders the same action block
        ToolCall call = new ToolCall("c9", ToolCall.Kind.INTERPRETER, ToolCall.INTERPRETER_FUNCTION,
                JSON.createObjectNode().put("code", code).toString());
        String rendered = plain.render(List.of(ChatMessage.assistant("I have processed the data and visualized it for you.\n\n", List.of(call)),
                ChatMessage.tool("c9", "![image](xxx.png)\n")), false);
        assertEquals("<|im_start|>assistant\nI have processed the data and visualized it for you.\n\n<|action_start|><|interpreter|>\n```python\n" + code
                + "\n```<|action_end|><|im_end|>\n<|im_start|>environment name=<|interpreter|>\n![image](xxx.png)\n<|im_end|>\n", rendered);
    }

    @Test
    void defaultSystemPromptOnlyWhenTheFirstMessageIsNotSystem() {
        ChatTemplate t = new ChatTemplate(tok);
        assertEquals("<|im_start|>system\n" + ChatTemplate.DEFAULT_SYSTEM_PROMPT + "<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
                t.render(List.of(ChatMessage.user("Hi")), true));
        assertEquals("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
                t.render(List.of(ChatMessage.system("Be brief."), ChatMessage.user("Hi")), true));
        // "developer" (newer OpenAI clients) is the system role
        assertEquals("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n",
                t.render(List.of(new ChatMessage("developer", "Be brief."), ChatMessage.user("Hi")), false));
        assertTrue(ChatTemplate.DEFAULT_SYSTEM_PROMPT.startsWith("You are an AI assistant whose name is InternLM (书生·浦语).\n"));
        assertEquals(3, ChatTemplate.DEFAULT_SYSTEM_PROMPT.lines().count());
    }

    @Test
    void toolsGoRightAfterTheFirstSystemTurnEvenTheDefaultOne() throws Exception {
        JsonNode tools = JSON.readTree("[{\"name\": \"f\", \"parameters\": {}}]");
        assertEquals("<|im_start|>system\n" + ChatTemplate.DEFAULT_SYSTEM_PROMPT + "<|im_end|>\n<|im_start|>system name=<|plugin|>\n[{\"name\": \"f\", \"parameters\": {}}]<|im_end|>\n"
                + "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", new ChatTemplate(tok).render(List.of(ChatMessage.user("Hi")), tools, true));
        assertEquals("<|im_start|>system name=<|plugin|>\n[{\"name\": \"f\", \"parameters\": {}}]<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n",
                plain.render(List.of(ChatMessage.user("Hi")), tools, false));
        assertEquals(plain.render(List.of(ChatMessage.user("Hi")), false), plain.render(List.of(ChatMessage.user("Hi")), JSON.readTree("[]"), false));
    }

    @Test
    void finalAssistantMessageIsContinuedNotClosed() {
        assertEquals("<|im_start|>user\nWrite a haiku<|im_end|>\n<|im_start|>assistant\nAutumn",
                plain.render(List.of(ChatMessage.user("Write a haiku"), ChatMessage.assistant("Autumn")), true));
        assertEquals("<|im_start|>user\nWrite a haiku<|im_end|>\n<|im_start|>assistant\nAutumn<|im_end|>\n",
                plain.render(List.of(ChatMessage.user("Write a haiku"), ChatMessage.assistant("Autumn")), false));
    }

    @Test
    void bosExactlyOnceAndSpecialTokensParsed() {
        int bos = tok.vocabulary().bos();
        int imStart = tok.tokenId("<|im_start|>");
        int[] ids = new ChatTemplate(tok).encode(List.of(ChatMessage.user("Hi")), true);
        assertEquals(bos, ids[0]);
        assertEquals(imStart, ids[1]);
        assertEquals(1, java.util.Arrays.stream(ids).filter(i -> i == bos).count());
        // the fixture's own template writes {{ bos_token }} and the vocabulary adds BOS: still once
        ChatTemplate fromModel = ChatTemplate.forModel(tok, false);
        int[] ids2 = fromModel.encode(List.of(ChatMessage.user("Hi")), true);
        assertArrayEquals(ids, ids2);
        // the generation prompt is the last three tokens: <|im_start|> assistant \n
        int[] tail = tok.encode("<|im_start|>assistant\n", false, true);
        assertArrayEquals(tail, java.util.Arrays.copyOfRange(ids, ids.length - tail.length, ids.length));
    }

    @Test
    void thinkingModeUsesTheLongSystemPrompt() {
        ChatTemplate think = new ChatTemplate(tok).withDefaultSystemPrompt(ChatTemplate.THINKING_SYSTEM_PROMPT);
        String r = think.render(List.of(ChatMessage.user("1+1?")), true);
        assertTrue(r.startsWith("<|im_start|>system\nYou are an expert mathematician with extensive experience in mathematical competitions."), r);
        assertTrue(r.contains("repeat the final answer using a '\\boxed{}' without any units, you have [[8192]] tokens to complete the answer.\n<|im_end|>\n"), r);
        assertTrue(r.endsWith("<|im_start|>user\n1+1?<|im_end|>\n<|im_start|>assistant\n"));
        for (String phase : new String[] {"## Deep Understanding", "## Multi-angle Analysis", "## Systematic Thinking", "## Rigorous Proof", "## Repeated Verification"}) {
            assertTrue(ChatTemplate.THINKING_SYSTEM_PROMPT.contains(phase + "\n"), phase);
        }
        assertEquals(8192, ChatDefaults.maxTokens(true));
        assertEquals(1024, ChatDefaults.maxTokens(false));
    }

    @Test
    void badMessagesAreClearErrors() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> plain.render(List.of(new ChatMessage("robot", "x")), true));
        assertTrue(e.getMessage().contains("unknown role 'robot'"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> plain.render(List.of(new ChatMessage("user", "x", "a\nb")), true));
        assertTrue(e.getMessage().contains("line breaks"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> plain.render(List.of(ChatMessage.assistant("", List.of(ToolCall.plugin("1", "f", "{not json")))), true));
        assertTrue(e.getMessage().contains("not valid JSON"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> plain.render(List.of(ChatMessage.assistant("", List.of(ToolCall.plugin("1", "f", "[1, 2]")))), true));
        assertTrue(e.getMessage().contains("must be a JSON object"), e.getMessage());
    }

    @Test
    void recognisesChatMlTemplatesAndRefusesOthers() {
        String internlm = model.vocab().chatTemplate();
        ChatTemplate.Recognised r = ChatTemplate.recognise(internlm);
        assertTrue(r.addsBos());
        assertNull(r.systemPrompt());

        String chatmlWithSystem = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
                + "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
                + "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
                + "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
        ChatTemplate.Recognised r2 = ChatTemplate.recognise(chatmlWithSystem);
        assertFalse(r2.addsBos());
        assertEquals("You are a helpful assistant.", r2.systemPrompt());

        String llama3 = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + "
                + "'<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{{ content }}{% endfor %}";
        var e = assertThrows(ChatTemplate.UnsupportedTemplateException.class, () -> ChatTemplate.recognise(llama3));
        assertTrue(e.getMessage().contains("no <|im_start|>"), e.getMessage());
        String mixed = llama3 + "<|im_start|><|im_end|>";
        e = assertThrows(ChatTemplate.UnsupportedTemplateException.class, () -> ChatTemplate.recognise(mixed));
        assertTrue(e.getMessage().contains("<|start_header_id|>"), e.getMessage());
        assertTrue(e.getMessage().contains("--chat-template internlm"), e.getMessage());
        String qwenTools = internlm + "{% if tools %}<tools>{{ tools }}</tools>{% endif %}";
        e = assertThrows(ChatTemplate.UnsupportedTemplateException.class, () -> ChatTemplate.recognise(qwenTools));
        assertTrue(e.getMessage().contains("<tool_call>"), e.getMessage());
        String v1 = "{{ bos_token }}{% for message in messages %}{{ '<|User|>:' + message['content'] + '<eoh>\\n' }}{% endfor %}<|im_start|><|im_end|>";
        e = assertThrows(ChatTemplate.UnsupportedTemplateException.class, () -> ChatTemplate.recognise(v1));
        assertTrue(e.getMessage().contains("<|User|>"), e.getMessage());
    }

    @Test
    void aModelWithAForeignTemplateIsRefusedUnlessBuiltInIsAsked() {
        Vocabulary v = model.vocab();
        Vocabulary llamaTemplated = new Vocabulary(v.tokens(), v.scores(), v.types(), v.bos(), v.eos(), v.unk(), v.pad(), v.addBos(), v.addEos(),
                v.addSpacePrefix(), "{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>' + message['content'] + '<|eot_id|>' }}{% endfor %}");
        Tokenizer t = new Tokenizer(llamaTemplated);
        var e = assertThrows(ChatTemplate.UnsupportedTemplateException.class, () -> ChatTemplate.forModel(t, false));
        assertTrue(e.getMessage().startsWith("the model's chat template (tokenizer.chat_template"), e.getMessage());
        ChatTemplate forced = ChatTemplate.forModel(t, true);
        assertEquals(ChatTemplate.DEFAULT_SYSTEM_PROMPT, forced.defaultSystemPrompt());
        Vocabulary none = new Vocabulary(v.tokens(), v.scores(), v.types(), v.bos(), v.eos(), v.unk(), v.pad(), v.addBos(), v.addEos(), v.addSpacePrefix(), null);
        assertTrue(ChatTemplate.forModel(new Tokenizer(none), false).origin().contains("no chat template"));
    }
}
