package internlm.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.networknt.schema.InputFormat;
import com.networknt.schema.Schema;
import com.networknt.schema.SchemaRegistry;
import com.networknt.schema.SpecificationVersion;
import internlm.engine.Engine;
import internlm.engine.Fixtures;
import internlm.loader.Progress;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Structured output over HTTP on a real fixture model (random weights, so without the constraint its text is noise):
 * response_format json_schema / json_object, forced and named tool calls, API key and CORS.
 */
class ServerStructuredTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final SchemaRegistry VALIDATORS = SchemaRegistry.withDefaultDialect(SpecificationVersion.DRAFT_2020_12);
    static final String KEY = "sk-test-0123456789";
    static final String PERSON = """
            {"type": "object", "additionalProperties": false, "required": ["name", "age", "role", "tags"],
             "properties": {"name": {"type": "string", "maxLength": 12}, "age": {"type": "integer"},
                            "role": {"enum": ["admin", "user", null]}, "tags": {"type": "array", "items": {"type": "boolean"}, "maxItems": 3},
                            "ok": {"type": "boolean"}}}""";
    static final String TOOLS = """
            [{"type": "function", "function": {"name": "get_weather", "description": "weather for a city",
               "parameters": {"type": "object", "properties": {"city": {"enum": ["Paris", "Oslo"]}, "celsius": {"type": "boolean"}},
                              "required": ["city", "celsius"], "additionalProperties": false}}},
             {"type": "function", "function": {"name": "add", "parameters": {"type": "object",
               "properties": {"a": {"type": "integer"}, "b": {"type": "number"}}, "required": ["a", "b"], "additionalProperties": false}}}]""";
    static Engine engine;
    static OpenAiServer server, locked;
    static Http http;

    @BeforeAll
    static void start() throws Exception {
        engine = Engine.load(Fixtures.fixture("internlm2-tiny-q8_0.gguf"), Engine.Options.cpu(), Progress.NONE);
        server = new OpenAiServer(engine, new ServerConfig("127.0.0.1", 0, 2, 8, 1024, "tiny", false, false, 1 << 20, 2000), null);
        server.start();
        http = new Http(server.port(), null);
        locked = new OpenAiServer(engine, new ServerConfig("127.0.0.1", 0, 1, 4, 512, "tiny", false, false, 1 << 20, 2000)
                .withApiKey(KEY).withCorsOrigins(List.of("https://app.example")), null);
        locked.start();
    }

    @AfterAll
    static void stop() throws Exception {
        locked.close();
        server.close();
        engine.close();
    }

    static String chat(String extra) {
        return "{\"model\": \"tiny\", \"messages\": [{\"role\": \"user\", \"content\": \"Describe a person as JSON\"}], " + extra + "}";
    }

    @Test
    void jsonSchemaOutputsValidate() throws Exception {
        Schema schema = VALIDATORS.getSchema(PERSON, InputFormat.JSON);
        for (int seed = 0; seed < 6; seed++) {
            String rf = "\"response_format\": {\"type\": \"json_schema\", \"json_schema\": {\"name\": \"person\", \"strict\": true, \"schema\": " + PERSON + "}}";
            JsonNode j = http.post("/v1/chat/completions", chat(rf + ", \"temperature\": 1.0, \"seed\": " + seed + ", \"max_tokens\": 400")).json();
            JsonNode choice = j.get("choices").get(0);
            assertEquals("stop", choice.get("finish_reason").asText(), j.toString());
            String content = choice.get("message").get("content").asText();
            assertEquals(List.of(), schema.validate(content, InputFormat.JSON), content);
            assertTrue(j.get("system_fingerprint").asText().startsWith("fp_"));
        }
    }

    @Test
    void streamedJsonSchemaOutputValidatesAndChunksHaveTheirShape() throws Exception {
        String rf = "\"response_format\": {\"type\": \"json_schema\", \"json_schema\": {\"name\": \"person\", \"strict\": true, \"schema\": " + PERSON + "}}";
        Http.Stream s = http.stream("/v1/chat/completions", chat(rf + ", \"stream\": true, \"stream_options\": {\"include_usage\": true}, \"max_tokens\": 400, \"seed\": 9"));
        StringBuilder content = new StringBuilder();
        List<JsonNode> chunks = s.chunks();
        for (int i = 0; i < chunks.size(); i++) {
            JsonNode c = chunks.get(i);
            assertTrue(c.get("system_fingerprint").isTextual());
            if (i < chunks.size() - 1) {
                assertTrue(c.has("usage") && c.get("usage").isNull(), "chunks before the last have \"usage\": null: " + c);
                JsonNode d = c.get("choices").get(0).get("delta");
                if (d.has("content")) {
                    content.append(d.get("content").asText());
                }
            } else {
                assertEquals(0, c.get("choices").size());
                assertTrue(c.get("usage").get("completion_tokens").asInt() > 0);
            }
        }
        assertEquals(List.of(), VALIDATORS.getSchema(PERSON, InputFormat.JSON).validate(content.toString(), InputFormat.JSON), content.toString());
    }

    @Test
    void jsonObjectGivesAnObject() throws Exception {
        // short strings only come by chance from a random model; a bound on the tokens keeps the test quick, so accept
        // either a complete object or a cut one that is a prefix of JSON (the stop reason says which)
        JsonNode j = http.post("/v1/chat/completions", chat("\"response_format\": {\"type\": \"json_object\"}, \"max_tokens\": 300, \"seed\": 4")).json();
        JsonNode choice = j.get("choices").get(0);
        String content = choice.get("message").get("content").asText();
        assertTrue(content.startsWith("{"), content);
        if (choice.get("finish_reason").asText().equals("stop")) {
            assertTrue(JSON.readTree(content).isObject(), content);
        }
    }

    @Test
    void unsupportedStrictSchemaIsRefused() throws Exception {
        Http.Reply r = http.post("/v1/chat/completions", chat("\"response_format\": {\"type\": \"json_schema\", \"json_schema\": {\"name\": \"x\", \"strict\": true, "
                + "\"schema\": {\"type\": \"string\", \"pattern\": \"^a$\"}}}"));
        assertEquals(400, r.status());
        assertTrue(r.json().get("error").get("message").asText().contains("pattern"), r.body());
        assertEquals(400, http.post("/v1/chat/completions", chat("\"response_format\": {\"type\": \"yaml\"}")).status());
        // without strict, a schema outside the subset still gets JSON (an object), as a best effort
        JsonNode loose = http.post("/v1/chat/completions", chat("\"response_format\": {\"type\": \"json_schema\", \"json_schema\": {\"name\": \"x\", "
                + "\"schema\": {\"type\": \"object\", \"patternProperties\": {\"^a\": {}}}}}, \"max_tokens\": 30")).json();
        assertTrue(loose.get("choices").get(0).get("message").get("content").asText().startsWith("{"), loose.toString());
    }

    @Test
    void requiredToolChoiceGivesAValidCall() throws Exception {
        JsonNode tools = JSON.readTree(TOOLS);
        for (int seed = 0; seed < 4; seed++) {
            JsonNode j = http.post("/v1/chat/completions", chat("\"tools\": " + TOOLS + ", \"tool_choice\": \"required\", \"temperature\": 1, \"seed\": " + seed)).json();
            JsonNode choice = j.get("choices").get(0);
            assertEquals("tool_calls", choice.get("finish_reason").asText(), j.toString());
            JsonNode msg = choice.get("message");
            assertTrue(msg.get("content").isNull(), j.toString());
            assertEquals(1, msg.get("tool_calls").size());
            JsonNode call = msg.get("tool_calls").get(0);
            String name = call.get("function").get("name").asText();
            assertTrue(Set.of("get_weather", "add").contains(name), name);
            JsonNode params = null;
            for (JsonNode t : tools) {
                if (t.get("function").get("name").asText().equals(name)) {
                    params = t.get("function").get("parameters");
                }
            }
            String args = call.get("function").get("arguments").asText();
            assertEquals(List.of(), VALIDATORS.getSchema(params.toString(), InputFormat.JSON).validate(args, InputFormat.JSON), args);
        }
    }

    @Test
    void namedToolChoiceCallsThatFunction() throws Exception {
        String choice = "{\"type\": \"function\", \"function\": {\"name\": \"add\"}}";
        Http.Stream s = http.stream("/v1/chat/completions", chat("\"tools\": " + TOOLS + ", \"tool_choice\": " + choice + ", \"stream\": true, \"seed\": 3"));
        JsonNode call = null;
        String finish = null;
        for (JsonNode c : s.chunks()) {
            JsonNode ch = c.get("choices").get(0);
            if (ch.get("delta").has("tool_calls")) {
                call = ch.get("delta").get("tool_calls").get(0);
            }
            if (!ch.get("finish_reason").isNull()) {
                finish = ch.get("finish_reason").asText();
            }
        }
        assertNotNull(call);
        assertEquals("tool_calls", finish);
        assertEquals("add", call.get("function").get("name").asText());
        JsonNode args = JSON.readTree(call.get("function").get("arguments").asText());
        assertTrue(args.get("a").isIntegralNumber() && args.get("b").isNumber(), args.toString());
        assertEquals(400, http.post("/v1/chat/completions", chat("\"tool_choice\": \"required\"")).status(), "required needs tools");
    }

    @Test
    void apiKeyIsRequiredExceptForHealth() throws Exception {
        HttpClient c = HttpClient.newHttpClient();
        String base = "http://127.0.0.1:" + locked.port();
        HttpResponse<String> none = c.send(HttpRequest.newBuilder(URI.create(base + "/v1/models")).build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(401, none.statusCode());
        JsonNode err = JSON.readTree(none.body()).get("error");
        assertEquals("invalid_api_key", err.get("code").asText());
        assertEquals("invalid_request_error", err.get("type").asText());
        assertTrue(err.has("param") && err.get("message").isTextual());
        HttpResponse<String> wrong = c.send(HttpRequest.newBuilder(URI.create(base + "/v1/chat/completions")).header("Authorization", "Bearer sk-test-0123456788")
                .POST(HttpRequest.BodyPublishers.ofString(chat("\"max_tokens\": 2"))).build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(401, wrong.statusCode());
        assertEquals("Bearer", wrong.headers().firstValue("www-authenticate").orElse(""));
        HttpResponse<String> right = c.send(HttpRequest.newBuilder(URI.create(base + "/v1/chat/completions")).header("Authorization", "Bearer " + KEY)
                .POST(HttpRequest.BodyPublishers.ofString(chat("\"max_tokens\": 2"))).build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(200, right.statusCode(), right.body());
        assertEquals(200, c.send(HttpRequest.newBuilder(URI.create(base + "/health")).build(), HttpResponse.BodyHandlers.ofString()).statusCode());
    }

    @Test
    void corsForAllowedOriginsOnly() throws Exception {
        HttpClient c = HttpClient.newHttpClient();
        String base = "http://127.0.0.1:" + locked.port();
        HttpResponse<String> pre = c.send(HttpRequest.newBuilder(URI.create(base + "/v1/chat/completions"))
                .method("OPTIONS", HttpRequest.BodyPublishers.noBody()).header("Origin", "https://app.example")
                .header("Access-Control-Request-Method", "POST").header("Access-Control-Request-Headers", "authorization, content-type").build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(204, pre.statusCode(), "preflight needs no key");
        assertEquals("https://app.example", pre.headers().firstValue("access-control-allow-origin").orElse(""));
        assertTrue(pre.headers().firstValue("access-control-allow-headers").orElse("").contains("authorization"));
        HttpResponse<String> denied = c.send(HttpRequest.newBuilder(URI.create(base + "/v1/models")).header("Origin", "https://app.example").build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(401, denied.statusCode());
        assertEquals("https://app.example", denied.headers().firstValue("access-control-allow-origin").orElse(""), "a browser can read the 401");
        HttpResponse<String> other = c.send(HttpRequest.newBuilder(URI.create(base + "/v1/models")).header("Origin", "https://evil.example")
                .header("Authorization", "Bearer " + KEY).build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(200, other.statusCode());
        assertTrue(other.headers().firstValue("access-control-allow-origin").isEmpty());
    }
}
