package internlm.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import internlm.engine.Engine;
import internlm.engine.Fixtures;
import internlm.engine.testing.ScriptedBackend;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Continuous batching through the server: concurrent requests advance in shared forward passes, and a non-streaming
 * request whose client goes away is cancelled (it used to run to its end).
 */
class ServerBatchingTest {
    static Engine engine;
    static ScriptedBackend backend;
    static OpenAiServer server;
    static Http http;
    static final ObjectMapper JSON = new ObjectMapper();

    @BeforeAll
    static void start() throws Exception {
        engine = ScriptedBackend.engine(Fixtures.fixture("internlm2-tiny-q8_0.gguf"),
                ScriptedBackend.chat(p -> "a long answer that goes on and on ".repeat(40)));
        backend = (ScriptedBackend) engine.backend();
        server = new OpenAiServer(engine, new ServerConfig("127.0.0.1", 0, 4, 8, 2048, "scripted", false, false, 1 << 20, 2000)
                .withBatchTokens(64), null);
        server.start();
        http = new Http(server.port(), null);
    }

    @AfterAll
    static void stop() throws Exception {
        server.close();
        engine.close();
    }

    @Test
    void concurrentRequestsShareForwardPasses() throws Exception {
        backend.delay(3);
        ExecutorService ex = Executors.newFixedThreadPool(4);
        try {
            int before = backend.batches.get();
            List<Future<Http.Reply>> fs = new ArrayList<>();
            for (int i = 0; i < 4; i++) {
                String body = "{\"messages\": [{\"role\": \"user\", \"content\": \"question " + i + "\"}], \"max_tokens\": 60}";
                fs.add(ex.submit(() -> http.post("/v1/chat/completions", body)));
            }
            String first = null;
            for (Future<Http.Reply> f : fs) {
                Http.Reply r = f.get(60, TimeUnit.SECONDS);
                assertEquals(200, r.status(), r.body());
                JsonNode j = JSON.readTree(r.body());
                assertEquals(60, j.get("usage").get("completion_tokens").asInt());
                // llama.cpp's timings: the tokens after the first, over the time after the first
                assertEquals(59, j.get("timings").get("predicted_n").asInt());
                assertTrue(j.get("timings").get("predicted_ms").asDouble() > 0);
                String text = j.get("choices").get(0).get("message").get("content").asText();
                if (first == null) {
                    first = text;
                }
                assertEquals(first, text, "the same answer for each, as alone");
            }
            int batches = backend.batches.get() - before;
            assertTrue(backend.widestBatch.get() >= 3, "decode rows of several requests in one pass: widest " + backend.widestBatch.get());
            assertTrue(batches < 4 * 61, "fewer forward passes than tokens: " + batches);
        } finally {
            backend.delay(0);
            ex.shutdownNow();
        }
    }

    @Test
    void nonStreamingRequestIsCancelledWhenItsClientDisconnects() throws Exception {
        backend.delay(5);
        try {
            long cancelledBefore = server.metrics().get("cancelled");
            String body = "{\"messages\": [{\"role\": \"user\", \"content\": \"go\"}], \"max_tokens\": 1500, \"ignore_eos\": true}";
            int f0 = backend.forwards.get();
            Socket s = http.raw("POST", "/v1/chat/completions", body.getBytes(StandardCharsets.UTF_8));
            Thread.sleep(500);
            assertTrue(backend.forwards.get() > f0 + 10, "generating");
            s.setSoLinger(true, 0);
            s.close();
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (server.metrics().get("cancelled") == cancelledBefore && System.nanoTime() < deadline) {
                Thread.sleep(50);
            }
            assertEquals(cancelledBefore + 1, server.metrics().get("cancelled"), "the generation was cancelled");
            int f1 = backend.forwards.get();
            Thread.sleep(300);
            assertTrue(backend.forwards.get() - f1 <= 1, "no more forward passes for it");
            assertTrue(f1 - f0 < 1400, "stopped long before max_tokens: " + (f1 - f0) + " passes");
            // a client that stays gets its answer after the heartbeat spaces: still one valid JSON object
            Http.Reply r = http.post("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"go\"}], \"max_tokens\": 900, \"ignore_eos\": true}");
            assertEquals(200, r.status());
            assertTrue(r.body().startsWith(" "), "heartbeats were sent");
            assertEquals(900, JSON.readTree(r.body()).get("usage").get("completion_tokens").asInt());
        } finally {
            backend.delay(0);
        }
    }
}
