package internlm.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import internlm.engine.Engine;
import internlm.engine.Fixtures;
import internlm.engine.chat.ChatMessage;
import internlm.engine.chat.ChatTemplate;
import internlm.loader.Progress;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** The server on a real fixture model (random weights: the text is noise, the mechanics are real), over real HTTP. */
class ServerE2ETest {
    static Engine engine;
    static OpenAiServer server;
    static Http http;

    @BeforeAll
    static void start() throws Exception {
        engine = Engine.load(Fixtures.fixture("internlm2-tiny-q8_0.gguf"), Engine.Options.cpu(), Progress.NONE);
        server = new OpenAiServer(engine, new ServerConfig("127.0.0.1", 0, 2, 8, 1024, "tiny", false, false, 1 << 20, 2000), null);
        server.start();
        http = new Http(server.port(), null);
    }

    @AfterAll
    static void stop() throws Exception {
        server.close();
        engine.close();
    }

    static String chatBody(String extra) {
        return "{\"model\": \"tiny\", \"messages\": [{\"role\": \"user\", \"content\": \"Hello there\"}]" + (extra.isEmpty() ? "" : ", " + extra) + "}";
    }

    @Test
    void modelsAndHealth() throws Exception {
        Http.Reply m = http.get("/v1/models");
        assertEquals(200, m.status());
        JsonNode j = m.json();
        assertEquals("list", j.get("object").asText());
        assertEquals("tiny", j.get("data").get(0).get("id").asText());
        assertEquals("model", j.get("data").get(0).get("object").asText());
        assertEquals(1024, j.get("data").get(0).get("meta").get("context").asInt());
        assertEquals(200, http.get("/v1/models/tiny").status());
        assertEquals(404, http.get("/v1/models/other").status());
        Http.Reply h = http.get("/health");
        assertEquals(200, h.status());
        assertEquals("ok", h.json().get("status").asText());
        assertEquals(2, h.json().get("slots").get("total").asInt());
    }

    @Test
    void nonStreamingChat() throws Exception {
        Http.Reply r = http.post("/v1/chat/completions", chatBody("\"max_tokens\": 12, \"temperature\": 0"));
        assertEquals(200, r.status(), r.body());
        assertTrue(r.raw().headers().firstValue("content-type").orElse("").startsWith("application/json"));
        JsonNode j = r.json();
        assertTrue(j.get("id").asText().startsWith("chatcmpl-"));
        assertEquals("chat.completion", j.get("object").asText());
        assertEquals("tiny", j.get("model").asText());
        JsonNode choice = j.get("choices").get(0);
        assertEquals(0, choice.get("index").asInt());
        assertEquals("assistant", choice.get("message").get("role").asText());
        assertTrue(choice.get("message").get("content").isTextual());
        assertFalse(choice.get("message").has("tool_calls"));
        assertTrue(List.of("stop", "length").contains(choice.get("finish_reason").asText()));
        JsonNode u = j.get("usage");
        int expectedPrompt = ChatTemplate.forModel(engine.tokenizer(), false).encode(List.of(ChatMessage.user("Hello there")), true).length;
        assertEquals(expectedPrompt, u.get("prompt_tokens").asInt(), "the default system prompt and the generation prompt are counted");
        assertTrue(u.get("completion_tokens").asInt() >= 1 && u.get("completion_tokens").asInt() <= 12);
        assertEquals(u.get("prompt_tokens").asInt() + u.get("completion_tokens").asInt(), u.get("total_tokens").asInt());
    }

    /** A prompt that comes back finds its prefix in a slot: llama.cpp's cache_n and OpenAI's cached_tokens say so. */
    @Test
    void reusedPrefixIsReportedAsCachedTokens() throws Exception {
        String body = "{\"model\": \"tiny\", \"messages\": [{\"role\": \"user\", \"content\": \"Count the cached tokens\"}], \"max_tokens\": 3, \"temperature\": 0}";
        JsonNode first = http.post("/v1/chat/completions", body).json();
        JsonNode again = http.post("/v1/chat/completions", body).json();
        int prompt = again.get("usage").get("prompt_tokens").asInt();
        assertEquals(first.get("usage").get("prompt_tokens").asInt(), prompt);
        JsonNode t = again.get("timings");
        assertEquals(prompt - 1, t.get("cache_n").asInt(), "all but the last prompt token come from the slot's cache: " + t);
        assertEquals(1, t.get("prompt_n").asInt(), "only the last prompt token is evaluated again");
        assertEquals(prompt - 1, again.get("usage").get("prompt_tokens_details").get("cached_tokens").asInt());
        int firstCached = first.get("timings").get("cache_n").asInt();
        assertEquals(prompt - firstCached, first.get("timings").get("prompt_n").asInt());
    }

    @Test
    void streamingGivesExactlyTheNonStreamingAnswer() throws Exception {
        String extra = "\"max_tokens\": 20, \"temperature\": 0, \"ignore_eos\": true";
        JsonNode whole = http.post("/v1/chat/completions", chatBody(extra)).json();
        Http.Stream s = http.stream("/v1/chat/completions", chatBody(extra + ", \"stream\": true, \"stream_options\": {\"include_usage\": true}"));
        assertTrue(s.done(), "ends with data: [DONE]");
        List<JsonNode> chunks = s.chunks();
        assertEquals("assistant", chunks.get(0).get("choices").get(0).get("delta").get("role").asText(), "first chunk carries the role");
        StringBuilder content = new StringBuilder();
        String finish = null;
        JsonNode usage = null;
        String id = chunks.get(0).get("id").asText();
        for (JsonNode c : chunks) {
            assertEquals("chat.completion.chunk", c.get("object").asText());
            assertEquals(id, c.get("id").asText(), "one id for the whole stream");
            if (c.get("choices").isEmpty()) {
                usage = c.get("usage");
                continue;
            }
            JsonNode ch = c.get("choices").get(0);
            assertNull(finish, "nothing after the finish chunk but usage");
            if (ch.get("delta").has("content")) {
                content.append(ch.get("delta").get("content").asText());
            }
            if (!ch.get("finish_reason").isNull()) {
                finish = ch.get("finish_reason").asText();
            }
        }
        JsonNode wc = whole.get("choices").get(0);
        assertEquals(wc.get("message").get("content").asText(), content.toString());
        assertEquals("length", finish);
        assertEquals(wc.get("finish_reason").asText(), finish);
        assertNotNull(usage, "usage chunk requested with include_usage");
        assertEquals(whole.get("usage"), usage);
        assertEquals(20, usage.get("completion_tokens").asInt());
    }

    @Test
    void sameSeedSameTextAndSamplingParametersApply() throws Exception {
        String base = "\"max_tokens\": 16, \"ignore_eos\": true, \"seed\": 1234";
        String sampled = base + ", \"temperature\": 0.9";
        String a = content(sampled);
        assertEquals(a, content(sampled), "same seed, same text");
        // each parameter, changed alone, must change the text (so none is silently ignored)
        assertNotEquals(a, content(sampled.replace("1234", "4321")), "seed");
        assertNotEquals(a, content(base + ", \"temperature\": 2.0"), "temperature");
        String greedy = content(base + ", \"temperature\": 0");
        assertNotEquals(greedy, a, "sampling at 0.9 differs from greedy");
        // truncations that leave one candidate make sampling greedy: if the parameter were ignored, it would not be
        assertEquals(greedy, content(sampled + ", \"top_k\": 1"), "top_k");
        assertEquals(greedy, content(sampled + ", \"top_p\": 0.000001"), "top_p");
        assertEquals(greedy, content(sampled + ", \"min_p\": 1.0"), "min_p");
        // penalties move greedy decoding off its repetitions
        String g = base + ", \"temperature\": 0";
        assertNotEquals(greedy, content(g + ", \"frequency_penalty\": 2.0"), "frequency_penalty");
        assertNotEquals(greedy, content(g + ", \"presence_penalty\": 2.0"), "presence_penalty");
        assertNotEquals(greedy, content(g + ", \"repetition_penalty\": 2.0"), "repetition_penalty");
    }

    private static String content(String extra) throws Exception {
        return http.post("/v1/chat/completions", chatBody(extra)).json().get("choices").get(0).get("message").get("content").asText();
    }

    @Test
    void stopStringsEndTheAnswerBeforeThemStreamingOrNot() throws Exception {
        String greedy = "\"max_tokens\": 24, \"temperature\": 0, \"ignore_eos\": true";
        String text = http.post("/v1/chat/completions", chatBody(greedy)).json().get("choices").get(0).get("message").get("content").asText();
        assertTrue(text.length() >= 10, text);
        int k = -1;
        String stop = null;
        for (int at = 4; at + 3 <= text.length(); at++) {
            String cand = text.substring(at, at + 3);
            if (text.indexOf(cand) == at && !cand.contains("\uFFFD")) {
                k = at;
                stop = cand;
                break;
            }
        }
        assertNotNull(stop, "a stop string from the middle of the answer");
        String stopJson = Http.JSON.writeValueAsString(List.of(stop, "never-generated"));
        JsonNode r = http.post("/v1/chat/completions", chatBody(greedy + ", \"stop\": " + stopJson)).json().get("choices").get(0);
        assertEquals(text.substring(0, k), r.get("message").get("content").asText());
        assertEquals("stop", r.get("finish_reason").asText());
        Http.Stream s = http.stream("/v1/chat/completions", chatBody(greedy + ", \"stream\": true, \"stop\": " + Http.JSON.writeValueAsString(stop)));
        StringBuilder streamed = new StringBuilder();
        for (JsonNode c : s.chunks()) {
            JsonNode d = c.get("choices").get(0).get("delta");
            if (d.has("content")) {
                streamed.append(d.get("content").asText());
            }
        }
        assertEquals(text.substring(0, k), streamed.toString(), "no part of the stop string was streamed");
    }

    @Test
    void logprobsAreLogSoftmaxWithTopAlternatives() throws Exception {
        JsonNode j = http.post("/v1/chat/completions", chatBody("\"max_tokens\": 6, \"temperature\": 0, \"logprobs\": true, \"top_logprobs\": 3, \"ignore_eos\": true")).json();
        JsonNode content = j.get("choices").get(0).get("logprobs").get("content");
        // one entry per token of the content: control tokens the content does not show (<|im_end|>) have none
        assertTrue(content.size() >= 1 && content.size() <= 6, content.toString());
        assertEquals(j.get("choices").get(0).get("message").get("content").asText(), joinedBytes(content));
        for (JsonNode e : content) {
            assertTrue(e.get("logprob").asDouble() <= 0);
            assertTrue(e.get("bytes").isArray());
            JsonNode top = e.get("top_logprobs");
            assertEquals(3, top.size());
            // greedy: the chosen token is the most likely one
            assertEquals(top.get(0).get("logprob").asDouble(), e.get("logprob").asDouble(), 1e-9);
            assertEquals(top.get(0).get("token").asText(), e.get("token").asText());
            assertTrue(top.get(0).get("logprob").asDouble() >= top.get(1).get("logprob").asDouble());
            assertTrue(top.get(1).get("logprob").asDouble() >= top.get(2).get("logprob").asDouble());
            double mass = 0;
            for (JsonNode t : top) {
                mass += Math.exp(t.get("logprob").asDouble());
            }
            assertTrue(mass <= 1 + 1e-6, "probabilities of distinct tokens sum to at most 1");
        }
        JsonNode plain = http.post("/v1/chat/completions", chatBody("\"max_tokens\": 2")).json();
        assertTrue(plain.get("choices").get(0).get("logprobs").isNull());
    }

    @Test
    void completionsEndpoint() throws Exception {
        String body = "{\"prompt\": \"The capital of France is\", \"max_tokens\": 10, \"temperature\": 0, \"ignore_eos\": true, \"logprobs\": 2}";
        JsonNode j = http.post("/v1/completions", body).json();
        assertEquals("text_completion", j.get("object").asText());
        JsonNode c = j.get("choices").get(0);
        assertEquals("length", c.get("finish_reason").asText());
        assertEquals(10, j.get("usage").get("completion_tokens").asInt());
        assertEquals(engine.tokenizer().encode("The capital of France is", true, true).length, j.get("usage").get("prompt_tokens").asInt());
        JsonNode lp = c.get("logprobs");
        int entries = lp.get("tokens").size();
        assertTrue(entries >= 1 && entries <= 10);
        StringBuilder joined = new StringBuilder();
        lp.get("tokens").forEach(t -> joined.append(t.asText()));
        assertEquals(c.get("text").asText(), joined.toString(), "logprobs cover exactly the text");
        assertEquals(entries, lp.get("token_logprobs").size());
        assertEquals(2, lp.get("top_logprobs").get(0).size());
        assertEquals(0, lp.get("text_offset").get(0).asInt());
        Http.Stream s = http.stream("/v1/completions", body.replace("}", ", \"stream\": true}"));
        StringBuilder streamed = new StringBuilder();
        for (JsonNode ch : s.chunks()) {
            assertEquals("text_completion", ch.get("object").asText());
            streamed.append(ch.get("choices").get(0).get("text").asText());
        }
        assertTrue(s.done());
        assertEquals(c.get("text").asText(), streamed.toString());
        // token ids work as a prompt too
        JsonNode ids = http.post("/v1/completions", "{\"prompt\": [1, 300, 301], \"max_tokens\": 3}").json();
        assertEquals(3, ids.get("usage").get("prompt_tokens").asInt());
    }

    @Test
    void assistantPrefillIsContinued() throws Exception {
        String body = "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \"Well\"}], \"max_tokens\": 3}";
        JsonNode j = http.post("/v1/chat/completions", body).json();
        int expected = ChatTemplate.forModel(engine.tokenizer(), false).encode(List.of(ChatMessage.user("Hi"), ChatMessage.assistant("Well")), true).length;
        assertEquals(expected, j.get("usage").get("prompt_tokens").asInt());
    }

    @Test
    void thinkingModeUsesTheThinkingPrompt() throws Exception {
        // the thinking prompt is long: on the byte-level fixture vocabulary it does not fit this server's 1024-token
        // context, and the error says how many tokens the prompt with it has
        Http.Reply r = http.post("/v1/chat/completions", chatBody("\"think\": true, \"max_tokens\": 2"));
        int expected = ChatTemplate.forModel(engine.tokenizer(), false).withDefaultSystemPrompt(ChatTemplate.THINKING_SYSTEM_PROMPT)
                .encode(List.of(ChatMessage.user("Hello there")), true).length;
        assertTrue(expected > 1024);
        assertEquals(400, r.status());
        assertEquals("context_length_exceeded", r.json().get("error").get("code").asText());
        assertTrue(r.json().get("error").get("message").asText().startsWith("the prompt has " + expected + " tokens"), r.body());
    }

    @Test
    void errorsAreOpenAiErrorObjects() throws Exception {
        Http.Reply r = http.post("/v1/chat/completions", chatBody("\"max_tokens\": 5000"));
        assertEquals(400, r.status());
        JsonNode e = r.json().get("error");
        assertEquals("invalid_request_error", e.get("type").asText());
        assertEquals("max_tokens", e.get("param").asText());
        assertEquals("context_length_exceeded", e.get("code").asText());
        assertTrue(e.get("message").asText().contains("context holds 1024 tokens"), e.toString());
        r = http.post("/v1/chat/completions", "{\"model\": \"gpt-4o\", \"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}");
        assertEquals(404, r.status());
        assertEquals("model_not_found", r.json().get("error").get("code").asText());
        r = http.post("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"" + "word ".repeat(3000) + "\"}]}");
        assertEquals(400, r.status());
        assertEquals("context_length_exceeded", r.json().get("error").get("code").asText());
        r = http.post("/v1/rewards", chatBody(""));
        assertEquals(400, r.status());
        assertEquals("not_a_reward_model", r.json().get("error").get("code").asText());
        r = http.post("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"temperature\": \"hot\"}");
        assertEquals(400, r.status());
        ObjectNode err = (ObjectNode) r.json().get("error");
        assertEquals("temperature", err.get("param").asText());
        assertEquals("'temperature' must be a number, got a string", err.get("message").asText());
    }

    /** The UTF-8 text of the logprobs entries' bytes, in order. */
    static String joinedBytes(JsonNode entries) {
        java.io.ByteArrayOutputStream b = new java.io.ByteArrayOutputStream();
        for (JsonNode e : entries) {
            e.get("bytes").forEach(x -> b.write(x.asInt()));
        }
        return b.toString(java.nio.charset.StandardCharsets.UTF_8);
    }
}
