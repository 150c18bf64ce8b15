package internlm.server;

import com.fasterxml.jackson.databind.JsonNode;
import internlm.engine.Engine;
import internlm.engine.Fixtures;
import internlm.loader.Progress;
import org.junit.jupiter.api.Test;

import java.lang.management.ManagementFactory;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The server under load on a fixture model: 32 concurrent streaming clients of which 8 drop their connection after
 * a few tokens, then 200 malformed requests. Everything must be answered correctly, the dropped generations must
 * stop early, the server must stay alive, and threads and heap must come back to where they were.
 */
class ServerLoadTest {
    static final int CLIENTS = 32, DISCONNECTING = 8, TOKENS = 40, MALFORMED = 200;

    record Case(String method, String path, byte[] body, boolean rawHttp) {
        static Case post(String path, String body) {
            return new Case("POST", path, body.getBytes(StandardCharsets.UTF_8), false);
        }
    }

    static final String OK_MSG = "[{\"role\": \"user\", \"content\": \"hi\"}]";

    static List<Case> malformed() {
        String chat = "/v1/chat/completions";
        List<Case> c = new ArrayList<>();
        for (String b : new String[] {
                "{", "not json", "[]", "\"text\"", "42", "null", "{\"messages\": \"hi\"}", "{\"messages\": []}", "{}",
                "{\"messages\": [{\"role\": \"user\"}]}", "{\"messages\": [{\"content\": \"x\"}]}", "{\"messages\": [{\"role\": \"robot\", \"content\": \"x\"}]}",
                "{\"messages\": [{\"role\": \"user\", \"content\": 5}]}", "{\"messages\": [null]}", "{\"messages\": [[\"user\", \"hi\"]]}",
                "{\"model\": \"gpt-4\", \"messages\": " + OK_MSG + "}", "{\"model\": 7, \"messages\": " + OK_MSG + "}",
                "{\"messages\": " + OK_MSG + ", \"temperature\": \"hot\"}", "{\"messages\": " + OK_MSG + ", \"temperature\": -1}",
                "{\"messages\": " + OK_MSG + ", \"temperature\": 1e999999}", "{\"messages\": " + OK_MSG + ", \"top_p\": 2}",
                "{\"messages\": " + OK_MSG + ", \"top_p\": 0}", "{\"messages\": " + OK_MSG + ", \"top_k\": 1.5}",
                "{\"messages\": " + OK_MSG + ", \"max_tokens\": 0}", "{\"messages\": " + OK_MSG + ", \"max_tokens\": -5}",
                "{\"messages\": " + OK_MSG + ", \"max_tokens\": 1000000000000}", "{\"messages\": " + OK_MSG + ", \"max_tokens\": 99999999999999999999999}",
                "{\"messages\": " + OK_MSG + ", \"max_tokens\": \"10\"}", "{\"messages\": " + OK_MSG + ", \"n\": 2}",
                "{\"messages\": " + OK_MSG + ", \"stream\": \"yes\"}", "{\"messages\": " + OK_MSG + ", \"stop\": 5}",
                "{\"messages\": " + OK_MSG + ", \"stop\": [1, 2]}", "{\"messages\": " + OK_MSG + ", \"stop\": \"\"}",
                "{\"messages\": " + OK_MSG + ", \"tools\": \"x\"}", "{\"messages\": " + OK_MSG + ", \"tools\": [{\"type\": \"function\"}]}",
                "{\"messages\": " + OK_MSG + ", \"tools\": [{\"type\": \"retrieval\", \"function\": {\"name\": \"f\"}}]}",
                "{\"messages\": " + OK_MSG + ", \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"bad name!\"}}]}",
                "{\"messages\": " + OK_MSG + ", \"tool_choice\": \"required\"}", "{\"messages\": " + OK_MSG + ", \"tool_choice\": {\"type\": \"function\"}}",
                "{\"messages\": " + OK_MSG + ", \"logprobs\": \"yes\"}", "{\"messages\": " + OK_MSG + ", \"logprobs\": true, \"top_logprobs\": 50}",
                "{\"messages\": " + OK_MSG + ", \"top_logprobs\": 3}", "{\"messages\": " + OK_MSG + ", \"seed\": \"abc\"}",
                "{\"messages\": " + OK_MSG + ", \"response_format\": {\"type\": \"json_schema\"}}", "{\"messages\": " + OK_MSG + ", \"stream_options\": 1}",
                "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\", \"image_url\": {\"url\": \"http://x\"}}]}]}",
                "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"text\"}]}]}",
                "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\", \"name\": \"a\\nb\"}]}",
                "{\"messages\": [{\"role\": \"assistant\", \"content\": \"\", \"tool_calls\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"arguments\": \"{oops\"}}]}]}",
                "{\"messages\": [{\"role\": \"assistant\", \"content\": \"\", \"tool_calls\": \"f\"}]}",
                "{\"messages\": [{\"role\": \"tool\", \"content\": \"x\", \"tool_call_id\": 5}]}",
                "{\"messages\": " + OK_MSG + ", \"messages\": " + OK_MSG + "}",
                "{\"messages\": [{\"role\": \"user\", \"content\": \"" + "many words ".repeat(1500) + "\"}]}",
                "[".repeat(5000) + "]".repeat(5000),
                "{\"messages\": " + OK_MSG + "} trailing",
        }) {
            c.add(Case.post(chat, b));
        }
        c.add(new Case("POST", chat, new byte[] {'{', '"', 'm', '"', ':', (byte) 0xC3, (byte) 0x28, '}'}, false)); // invalid UTF-8
        c.add(new Case("POST", chat, new byte[0], false));
        c.add(new Case("POST", chat, ("{\"messages\": [{\"role\": \"user\", \"content\": \"" + "x".repeat(1_100_000) + "\"}]}").getBytes(StandardCharsets.UTF_8), false));
        c.add(Case.post("/v1/completions", "{\"prompt\": 5}"));
        c.add(Case.post("/v1/completions", "{\"prompt\": [999999]}"));
        c.add(Case.post("/v1/completions", "{\"prompt\": [\"a\", \"b\"]}"));
        c.add(Case.post("/v1/completions", "{}"));
        c.add(Case.post("/v1/completions", "{\"prompt\": \"hi\", \"echo\": true}"));
        c.add(Case.post("/v1/completions", "{\"prompt\": \"hi\", \"logprobs\": 99}"));
        c.add(Case.post("/v1/rewards", "{\"messages\": " + OK_MSG + "}"));
        c.add(Case.post("/v1/models", "{}"));
        c.add(Case.post("/v2/chat", "{}"));
        c.add(new Case("GET", chat, null, false));
        c.add(new Case("DELETE", "/health", null, false));
        c.add(new Case(null, null, "GARBAGE\r\n\r\n".getBytes(StandardCharsets.US_ASCII), true));
        c.add(new Case(null, null, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n".getBytes(StandardCharsets.US_ASCII), true));
        c.add(new Case(null, null, ("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Huge: " + "h".repeat(20_000) + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII), true));
        return c;
    }

    static long usedHeap() throws InterruptedException {
        for (int i = 0; i < 3; i++) {
            System.gc();
            Thread.sleep(100);
        }
        return ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
    }

    static int threads() {
        return ManagementFactory.getThreadMXBean().getThreadCount();
    }

    @Test
    void streamingClientsDisconnectsAndMalformedRequests() throws Exception {
        ExecutorService clients = Executors.newFixedThreadPool(CLIENTS + 8);
        ((ThreadPoolExecutor) clients).prestartAllCoreThreads();
        ExecutorService httpExec = Executors.newFixedThreadPool(4);
        ((ThreadPoolExecutor) httpExec).prestartAllCoreThreads();
        try (Engine engine = Engine.load(Fixtures.fixture("internlm2-tiny-q8_0.gguf"), Engine.Options.cpu(), Progress.NONE);
             OpenAiServer server = new OpenAiServer(engine, new ServerConfig("127.0.0.1", 0, 4, 64, 2048, "tiny", false, false, 1 << 20, 500), null)) {
            server.start();
            Http http = new Http(server.port(), httpExec);
            // warm up: every slot and the HTTP machinery once
            List<Future<?>> warm = new ArrayList<>();
            for (int i = 0; i < 8; i++) {
                warm.add(clients.submit(() -> http.stream("/v1/chat/completions", "{\"messages\": " + OK_MSG + ", \"max_tokens\": 4, \"stream\": true}")));
            }
            for (Future<?> f : warm) {
                f.get(120, TimeUnit.SECONDS);
            }
            Thread.sleep(1500); // let idle server threads go
            long heap0 = usedHeap();
            int threads0 = threads();

            long[] heapAfter = new long[2];
                for (int round = 0; round < 2; round++) {
                round(server, http, clients);
                // ------------------------------------------------------------ no leaks
                int t = threads();
                long until = System.nanoTime() + 15_000_000_000L;
                while (t > threads0 + 2 && System.nanoTime() < until) {
                    Thread.sleep(200);
                    t = threads();
                }
                heapAfter[round] = usedHeap();
                System.out.printf("round %d: threads %d -> %d; heap after GC %.1f -> %.1f MB%n", round + 1, threads0, t, heap0 / 1e6, heapAfter[round] / 1e6);
                assertTrue(t <= threads0 + 2, "threads back to their number before the load: " + threads0 + " -> " + t);
            }
            assertTrue(heapAfter[0] < heap0 + 24_000_000L, "heap after GC near its size before the load: " + heap0 + " -> " + heapAfter[0]);
            assertTrue(heapAfter[1] < heapAfter[0] + 8_000_000L, "a second round of the same load does not grow the heap: " + heapAfter[0] + " -> " + heapAfter[1]);
        } finally {
            clients.shutdownNow();
            httpExec.shutdownNow();
        }
    }

    /** One round: 32 streaming clients (8 dropping), then 200 malformed requests, then one good request. */
    private static void round(OpenAiServer server, Http http, ExecutorService clients) throws Exception {
        Map<String, Long> m0 = server.metrics();
        // ---------------------------------------------------------------- 32 streaming clients
        CountDownLatch go = new CountDownLatch(1);
        List<Future<long[]>> normal = new ArrayList<>();
        List<Future<Long>> dropping = new ArrayList<>();
        for (int i = 0; i < CLIENTS; i++) {
            int n = i;
            if (i % 4 == 3) {
                dropping.add(clients.submit(() -> {
                    go.await();
                    String body = "{\"messages\": [{\"role\": \"user\", \"content\": \"client " + n + "\"}], \"max_tokens\": 1500, \"ignore_eos\": true, \"stream\": true}";
                    Socket s = http.raw("POST", "/v1/chat/completions", body.getBytes(StandardCharsets.UTF_8));
                    assertEquals(3, Http.readEventsThenDisconnect(s, 3));
                    return System.nanoTime();
                }));
            } else {
                normal.add(clients.submit(() -> {
                    go.await();
                    long t0 = System.nanoTime();
                    Http.Stream s = http.stream("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"client " + n + "\"}], "
                            + "\"max_tokens\": " + TOKENS + ", \"ignore_eos\": true, \"temperature\": 0.8, \"seed\": " + n
                            + ", \"stream\": true, \"stream_options\": {\"include_usage\": true}}");
                    long t1 = System.nanoTime();
                    assertTrue(s.done());
                    JsonNode usage = s.chunks().get(s.chunks().size() - 1).get("usage");
                    assertEquals(TOKENS, usage.get("completion_tokens").asInt());
                    int contentChunks = 0;
                    for (JsonNode c : s.chunks()) {
                        if (!c.get("choices").isEmpty() && c.get("choices").get(0).get("delta").has("content")) {
                            contentChunks++;
                        }
                    }
                    assertTrue(contentChunks >= 2, "tokens arrived as separate chunks");
                    return new long[] {t1 - t0, usage.get("completion_tokens").asLong()};
                }));
            }
        }
        long start = System.nanoTime();
        go.countDown();
        // each dropped client's generation is cancelled when its next token cannot be written
        long lastDrop = 0;
        for (Future<Long> f : dropping) {
            lastDrop = Math.max(lastDrop, f.get(300, TimeUnit.SECONDS));
        }
        long cancelDeadline = System.nanoTime() + 10_000_000_000L;
        while (server.metrics().get("cancelled") - m0.get("cancelled") < DISCONNECTING && System.nanoTime() < cancelDeadline) {
            Thread.sleep(5);
        }
        double cancelMillis = (System.nanoTime() - lastDrop) / 1e6;
        List<Long> latencies = new ArrayList<>();
        long tokens = 0;
        for (Future<long[]> f : normal) {
            long[] r = f.get(300, TimeUnit.SECONDS);
            latencies.add(r[0]);
            tokens += r[1];
        }
        double phaseSeconds = (System.nanoTime() - start) / 1e9;
        // all slots free, nothing waiting
        long deadline = System.nanoTime() + 20_000_000_000L;
        JsonNode health;
        do {
            health = http.get("/health").json();
            if (health.get("slots").get("busy").asInt() == 0) {
                break;
            }
            Thread.sleep(50);
        } while (System.nanoTime() < deadline);
        Map<String, Long> m1 = server.metrics();
        assertEquals(DISCONNECTING, m1.get("cancelled") - m0.get("cancelled"), "every dropped client's generation was cancelled: " + m1);
        assertEquals(0, health.get("slots").get("busy").asInt(), health.toString());
        assertEquals(0, health.get("slots").get("waiting").asInt(), health.toString());
        long generated = m1.get("generated_tokens") - m0.get("generated_tokens");
        // the server writes ahead of a slow reader, so some tokens were already on their way when a client dropped;
        // uncancelled, the dropped requests would have generated 8 × 1500 tokens
        assertTrue(generated < (long) (CLIENTS - DISCONNECTING) * TOKENS + DISCONNECTING * 300L,
                "dropped clients' generations stopped early (" + generated + " tokens generated in all)");
        assertTrue(cancelMillis < 2000, "cancelled within 2 s of the last disconnect: " + cancelMillis + " ms");
        assertEquals(0, m1.get("failed") - m0.get("failed"));

        // ---------------------------------------------------------------- 200 malformed requests
        List<Case> cases = malformed();
        List<Future<String>> answers = new ArrayList<>();
        Map<Integer, Integer> statuses = Collections.synchronizedMap(new TreeMap<>());
        for (int i = 0; i < MALFORMED; i++) {
            Case c = cases.get(i % cases.size());
            answers.add(clients.submit(() -> {
                int status;
                String body;
                if (c.rawHttp()) {
                    String resp = Http.rawExchange(server.port(), c.body());
                    assertTrue(resp.startsWith("HTTP/1.1 4"), "malformed HTTP gets a 4xx: " + resp.lines().findFirst().orElse(""));
                    status = Integer.parseInt(resp.substring(9, 12));
                    body = resp.substring(resp.indexOf("\r\n\r\n") + 4);
                } else {
                    Http.Reply r = c.method().equals("POST") ? http.post(c.path(), c.body()) : http.send(c.method(), c.path(), null);
                    status = r.status();
                    body = r.body();
                }
                statuses.merge(status, 1, Integer::sum);
                assertTrue(status >= 400 && status < 500, "4xx for " + describe(c) + ": " + status + " " + body);
                JsonNode e = Http.JSON.readTree(body).get("error");
                assertNotNull(e, body);
                assertTrue(e.get("message").isTextual() && !e.get("message").asText().isBlank(), body);
                assertTrue(e.get("type").isTextual(), body);
                assertTrue(e.has("param") && e.has("code"), body);
                return body;
            }));
        }
        for (Future<String> f : answers) {
            f.get(120, TimeUnit.SECONDS);
        }
        Map<String, Long> m2 = server.metrics();
        assertEquals(0, m2.get("failed") - m0.get("failed"), "no request ended in a server error");

        // still alive and correct
        Http.Reply ok = http.post("/v1/chat/completions", "{\"messages\": " + OK_MSG + ", \"max_tokens\": 3}");
        assertEquals(200, ok.status(), ok.body());

        Collections.sort(latencies);
        System.out.printf("load: %d streaming clients (%d dropped after 3 events), %d tokens streamed to the others in %.2f s = %.0f tok/s aggregate; "
                        + "client time p50 %.2f s, max %.2f s; %d tokens generated in all; all 8 dropped generations cancelled %.0f ms after the last drop; "
                        + "malformed statuses %s%n",
                CLIENTS, DISCONNECTING, tokens, phaseSeconds, tokens / phaseSeconds, latencies.get(latencies.size() / 2) / 1e9,
                latencies.get(latencies.size() - 1) / 1e9, generated, cancelMillis, statuses);
    }

    static String describe(Case c) {
        if (c.rawHttp()) {
            return "raw " + new String(c.body(), 0, Math.min(40, c.body().length), StandardCharsets.US_ASCII);
        }
        String b = c.body() == null ? "" : new String(c.body(), 0, Math.min(120, c.body().length), StandardCharsets.UTF_8);
        return c.method() + " " + c.path() + " " + b;
    }
}
