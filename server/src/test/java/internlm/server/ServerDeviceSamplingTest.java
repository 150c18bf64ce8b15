package internlm.server;

import com.fasterxml.jackson.databind.JsonNode;
import internlm.engine.Engine;
import internlm.engine.Fixtures;
import internlm.engine.SamplingBackend;
import internlm.loader.LoadedModel;
import internlm.loader.Progress;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The server's requests on a backend that samples where the logits are (as the TornadoVM backend does): the same
 * answers as on the CPU backend for the same seed and settings, the sampled tokens coming back as ids (SAMPLE rows),
 * and logprobs or a JSON mask still getting the logits on the host.
 */
class ServerDeviceSamplingTest {
    static final String[] REQUESTS = {
        "\"temperature\": 0.8, \"top_p\": 0.8, \"seed\": 5",
        "\"temperature\": 1.0, \"top_p\": 0.8, \"top_k\": 40, \"repetition_penalty\": 1.005, \"seed\": 6",
        "\"temperature\": 1.2, \"min_p\": 0.02, \"frequency_penalty\": 0.5, \"presence_penalty\": 0.3, \"seed\": 7",
        "\"temperature\": 0, \"repetition_penalty\": 1.3, \"repeat_last_n\": 8",
    };

    static String body(String extra) {
        return "{\"model\": \"tiny\", \"messages\": [{\"role\": \"user\", \"content\": \"Tell me a story\"}], \"max_tokens\": 24, \"ignore_eos\": true, " + extra + "}";
    }

    @Test
    void answersAreTheCpuBackendsAndOnlyIdsComeBack() throws Exception {
        Path f = Fixtures.fixture("internlm2-tiny-q8_0.gguf");
        LoadedModel m = Engine.loadModel(f, Progress.NONE);
        SamplingBackend backend = new SamplingBackend(Engine.createBackend(m, Engine.Options.cpu(), Progress.NONE));
        ServerConfig cfg = new ServerConfig("127.0.0.1", 0, 2, 8, 1024, "tiny", false, false, 1 << 20, 2000);
        try (Engine cpu = Engine.load(f, Engine.Options.cpu(), Progress.NONE); Engine dev = Engine.create(m, backend);
             OpenAiServer a = new OpenAiServer(cpu, cfg, null); OpenAiServer b = new OpenAiServer(dev, cfg, null)) {
            a.start();
            b.start();
            Http ha = new Http(a.port(), null), hb = new Http(b.port(), null);
            for (String r : REQUESTS) {
                int before = backend.sampleRows.get();
                JsonNode ja = ha.post("/v1/chat/completions", body(r)).json(), jb = hb.post("/v1/chat/completions", body(r)).json();
                assertEquals(ja.get("choices").get(0).get("message").get("content").asText(), jb.get("choices").get(0).get("message").get("content").asText(), r);
                assertEquals(24, backend.sampleRows.get() - before, "every token sampled by the backend: " + r);
            }
            // logprobs and a JSON mask need the logits on the host: no SAMPLE rows, the same answers
            int samples = backend.sampleRows.get(), logits = backend.logitRows.get();
            for (String r : new String[] {REQUESTS[0] + ", \"logprobs\": true, \"top_logprobs\": 2", REQUESTS[0] + ", \"response_format\": {\"type\": \"json_object\"}"}) {
                JsonNode ja = ha.post("/v1/chat/completions", body(r)).json(), jb = hb.post("/v1/chat/completions", body(r)).json();
                assertEquals(ja.get("choices").get(0).get("message").get("content").asText(), jb.get("choices").get(0).get("message").get("content").asText(), r);
            }
            assertEquals(samples, backend.sampleRows.get());
            assertTrue(backend.logitRows.get() > logits);
        }
    }
}
