package internlm.server;

import dev.langchain4j.model.chat.Capability;
import dev.langchain4j.model.openai.OpenAiChatModel;
import dev.langchain4j.service.AiServices;
import internlm.engine.Engine;
import internlm.engine.Fixtures;
import internlm.loader.Progress;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.Set;

import static org.junit.jupiter.api.Assertions.*;

/**
 * LangChain4j's OpenAI module as a user would use it against this server: an AiServices interface returning a Java
 * record, which LangChain4j requests as a strict JSON schema (response_format json_schema) and parses back; and the
 * same without the API key, refused. The model has random weights, so the record's values are whatever the grammar
 * let it pick; what is checked is that they arrive as a well-formed record.
 */
class LangChain4jClientTest {
    static final String KEY = "sk-lc4j-test";
    static Engine engine;
    static OpenAiServer server;

    enum Level { LOW, MEDIUM, HIGH }

    /** long: a JSON-schema "integer" has no bound, the grammar allows 15 digits */
    record Reading(long value, boolean valid, Level level) {}

    interface Sensor {
        Reading read(String text);
    }

    @BeforeAll
    static void start() throws Exception {
        engine = Engine.load(Fixtures.fixture("internlm2-tiny-q8_0.gguf"), Engine.Options.cpu(), Progress.NONE);
        server = new OpenAiServer(engine, new ServerConfig("127.0.0.1", 0, 2, 8, 1024, "tiny", false, false, 1 << 20, 2000).withApiKey(KEY), null);
        server.start();
    }

    @AfterAll
    static void stop() throws Exception {
        server.close();
        engine.close();
    }

    private static OpenAiChatModel model(String key) {
        return OpenAiChatModel.builder()
                .baseUrl("http://127.0.0.1:" + server.port() + "/v1")
                .apiKey(key)
                .modelName("tiny")
                .supportedCapabilities(Set.of(Capability.RESPONSE_FORMAT_JSON_SCHEMA))
                .strictJsonSchema(true)
                .temperature(1.0)
                .maxTokens(200)
                .maxRetries(0)
                .build();
    }

    @Test
    void aiServiceReturnsARecordFromAJsonSchemaRequest() {
        Sensor sensor = AiServices.create(Sensor.class, model(KEY));
        for (int i = 0; i < 3; i++) {
            Reading r = sensor.read("The sensor shows 42, it is valid, level high. Reading " + i);
            assertNotNull(r);
            assertNotNull(r.level(), "the enum field is filled: " + r);
        }
    }

    @Test
    void withoutTheKeyTheClientIsRefused() {
        Sensor sensor = AiServices.create(Sensor.class, model("sk-wrong"));
        RuntimeException e = assertThrows(RuntimeException.class, () -> sensor.read("x"));
        String all = e + " " + (e.getCause() == null ? "" : e.getCause().toString());
        assertTrue(all.contains("401") || all.toLowerCase().contains("api key") || e.getClass().getSimpleName().contains("Authentication"), all);
    }
}
