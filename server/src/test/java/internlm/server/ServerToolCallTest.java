package internlm.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import internlm.engine.Engine;
import internlm.engine.Fixtures;
import internlm.engine.testing.ScriptedBackend;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Tool calling through the server, with a scripted backend that makes the model answer like InternLM does: a tool
 * call in the action format when tools are offered, a final answer once the environment has replied, a malformed
 * call when asked. Also the queue limit (a gate in the backend holds generation).
 */
class ServerToolCallTest {
    static final String CALL = "<|action_start|><|plugin|>\n{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\", \"unit\": \"celsius\"}}<|action_end|>";
    static final String BROKEN = "<|action_start|><|plugin|>\n{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"<|action_end|>";
    static final String TOOLS = "[{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Current weather\", "
            + "\"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}, \"unit\": {\"type\": \"string\"}}, \"required\": [\"city\"]}}}]";

    static volatile String lastPrompt;
    static Engine engine;
    static ScriptedBackend backend;
    static OpenAiServer server, tight;
    static Http http, tightHttp;

    static String reply(String prompt) {
        lastPrompt = prompt;
        if (prompt.contains("<|im_start|>environment name=<|plugin|>\n")) {
            return "It is 22 degrees in Paris.";
        }
        if (prompt.contains("broken please")) {
            return "Checking." + BROKEN;
        }
        if (prompt.contains("system name=<|plugin|>")) {
            return "Let me check." + CALL + "this text is never generated";
        }
        return "I have no tools.";
    }

    @BeforeAll
    static void start() throws Exception {
        engine = ScriptedBackend.engine(Fixtures.fixture("internlm2-tiny-q8_0.gguf"), ScriptedBackend.chat(ServerToolCallTest::reply));
        backend = (ScriptedBackend) engine.backend();
        server = new OpenAiServer(engine, new ServerConfig("127.0.0.1", 0, 2, 8, 2048, "scripted", false, false, 1 << 20, 2000), null);
        server.start();
        http = new Http(server.port(), null);
        tight = new OpenAiServer(engine, new ServerConfig("127.0.0.1", 0, 1, 1, 2048, "scripted", false, false, 1 << 20, 2000), null);
        tight.start();
        tightHttp = new Http(tight.port(), null);
    }

    @AfterAll
    static void stop() throws Exception {
        backend.release();
        server.close();
        tight.close();
        engine.close();
    }

    static String userAsks(String question, String extra) {
        return "{\"messages\": [{\"role\": \"user\", \"content\": \"" + question + "\"}], \"tools\": " + TOOLS + (extra.isEmpty() ? "" : ", " + extra) + "}";
    }

    @Test
    void toolCallRoundTrip() throws Exception {
        JsonNode first = http.post("/v1/chat/completions", userAsks("Weather in Paris?", "")).json();
        JsonNode choice = first.get("choices").get(0);
        assertEquals("tool_calls", choice.get("finish_reason").asText());
        JsonNode msg = choice.get("message");
        assertEquals("Let me check.", msg.get("content").asText());
        JsonNode call = msg.get("tool_calls").get(0);
        assertEquals(1, msg.get("tool_calls").size());
        assertEquals("function", call.get("type").asText());
        assertTrue(call.get("id").asText().startsWith("call_"));
        assertEquals("get_weather", call.get("function").get("name").asText());
        assertEquals(Http.JSON.readTree("{\"city\": \"Paris\", \"unit\": \"celsius\"}"), Http.JSON.readTree(call.get("function").get("arguments").asText()));
        // the tools were in the prompt as InternLM's plugin system turn, right after the default system prompt
        assertTrue(lastPrompt.contains("<|im_end|>\n<|im_start|>system name=<|plugin|>\n[{\"name\": \"get_weather\", \"description\": \"Current weather\", "
                + "\"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}, \"unit\": {\"type\": \"string\"}}, \"required\": [\"city\"]}}]<|im_end|>\n"
                + "<|im_start|>user\nWeather in Paris?"), lastPrompt);

        // second turn: the assistant's call as returned, and the tool's result
        ArrayNode messages = Http.JSON.createArrayNode();
        messages.addObject().put("role", "user").put("content", "Weather in Paris?");
        ObjectNode assistant = messages.addObject();
        assistant.put("role", "assistant");
        assistant.set("content", msg.get("content"));
        assistant.set("tool_calls", msg.get("tool_calls"));
        messages.addObject().put("role", "tool").put("tool_call_id", call.get("id").asText()).put("content", "{\"temperature\": 22}");
        ObjectNode req = Http.JSON.createObjectNode();
        req.set("messages", messages);
        req.set("tools", Http.JSON.readTree(TOOLS));
        JsonNode second = http.post("/v1/chat/completions", req.toString()).json();
        assertEquals("It is 22 degrees in Paris.", second.get("choices").get(0).get("message").get("content").asText());
        assertEquals("stop", second.get("choices").get(0).get("finish_reason").asText());
        assertFalse(second.get("choices").get(0).get("message").has("tool_calls"));
        // the call was re-rendered in InternLM's action format and the result as an environment turn
        assertTrue(lastPrompt.endsWith("<|im_start|>assistant\nLet me check.<|action_start|><|plugin|>\n"
                + "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\", \"unit\": \"celsius\"}}<|action_end|><|im_end|>\n"
                + "<|im_start|>environment name=<|plugin|>\n{\"temperature\": 22}<|im_end|>\n<|im_start|>assistant\n"), lastPrompt);
    }

    @Test
    void streamedToolCall() throws Exception {
        Http.Stream s = http.stream("/v1/chat/completions", userAsks("Weather in Paris?", "\"stream\": true"));
        assertTrue(s.done());
        StringBuilder content = new StringBuilder();
        List<JsonNode> calls = new ArrayList<>();
        String finish = null;
        for (JsonNode c : s.chunks()) {
            JsonNode ch = c.get("choices").get(0);
            JsonNode d = ch.get("delta");
            if (d.has("content")) {
                assertFalse(d.get("content").asText().contains("<|"), "no action markup leaks into content: " + d);
                content.append(d.get("content").asText());
            }
            if (d.has("tool_calls")) {
                assertTrue(content.toString().equals("Let me check."), "the text before the call was streamed first");
                d.get("tool_calls").forEach(calls::add);
            }
            if (!ch.get("finish_reason").isNull()) {
                finish = ch.get("finish_reason").asText();
            }
        }
        assertEquals("Let me check.", content.toString());
        assertEquals(1, calls.size());
        assertEquals(0, calls.get(0).get("index").asInt());
        assertEquals("get_weather", calls.get(0).get("function").get("name").asText());
        assertEquals("{\"city\":\"Paris\",\"unit\":\"celsius\"}", calls.get(0).get("function").get("arguments").asText());
        assertEquals("tool_calls", finish);
    }

    @Test
    void malformedToolCallComesBackAsText() throws Exception {
        JsonNode j = http.post("/v1/chat/completions", userAsks("broken please", "")).json();
        JsonNode msg = j.get("choices").get(0).get("message");
        assertEquals("Checking." + BROKEN, msg.get("content").asText());
        assertFalse(msg.has("tool_calls"));
        assertEquals("stop", j.get("choices").get(0).get("finish_reason").asText());
        Http.Stream s = http.stream("/v1/chat/completions", userAsks("broken please", "\"stream\": true"));
        StringBuilder content = new StringBuilder();
        for (JsonNode c : s.chunks()) {
            JsonNode d = c.get("choices").get(0).get("delta");
            assertFalse(d.has("tool_calls"));
            if (d.has("content")) {
                content.append(d.get("content").asText());
            }
        }
        assertEquals("Checking." + BROKEN, content.toString());
    }

    @Test
    void toolChoiceNoneOffersNoTools() throws Exception {
        JsonNode j = http.post("/v1/chat/completions", userAsks("Weather in Paris?", "\"tool_choice\": \"none\"")).json();
        assertEquals("I have no tools.", j.get("choices").get(0).get("message").get("content").asText());
        assertFalse(lastPrompt.contains("name=<|plugin|>"));
        Http.Reply r = http.post("/v1/chat/completions", userAsks("x", "\"tool_choice\": {\"type\": \"function\", \"function\": {\"name\": \"undeclared\"}}"));
        assertEquals(400, r.status());
        assertEquals("tool_choice", r.json().get("error").get("param").asText());
    }

    @Test
    void fullQueueIsRefusedWith503AndServerRecovers() throws Exception {
        backend.hold();
        try {
            String body = "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": 4}";
            CompletableFuture<Http.Reply> a = CompletableFuture.supplyAsync(() -> call(body));
            awaitHealth(1, 0);
            CompletableFuture<Http.Reply> b = CompletableFuture.supplyAsync(() -> call(body));
            awaitHealth(1, 1);
            Http.Reply c = tightHttp.post("/v1/chat/completions", body);
            assertEquals(503, c.status(), c.body());
            assertEquals("server_busy", c.json().get("error").get("code").asText());
            assertEquals("1", c.raw().headers().firstValue("retry-after").orElse(""));
            backend.release();
            assertEquals(200, a.get(30, TimeUnit.SECONDS).status());
            assertEquals(200, b.get(30, TimeUnit.SECONDS).status());
            awaitHealth(0, 0);
            assertEquals(200, tightHttp.post("/v1/chat/completions", body).status());
        } finally {
            backend.release();
        }
    }

    private static Http.Reply call(String body) {
        try {
            return tightHttp.post("/v1/chat/completions", body);
        } catch (Exception e) {
            throw new RuntimeException(e);
        }
    }

    private static void awaitHealth(int busy, int waiting) throws Exception {
        long end = System.nanoTime() + 20_000_000_000L;
        JsonNode h = null;
        while (System.nanoTime() < end) {
            h = tightHttp.get("/health").json().get("slots");
            if (h.get("busy").asInt() == busy && h.get("waiting").asInt() == waiting) {
                return;
            }
            Thread.sleep(20);
        }
        fail("health never showed busy=" + busy + " waiting=" + waiting + ": " + h);
    }
}
