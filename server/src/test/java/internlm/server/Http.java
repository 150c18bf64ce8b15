package internlm.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executor;

import static org.junit.jupiter.api.Assertions.*;

/** A test client: the JDK's HttpClient for ordinary calls, raw sockets for abrupt disconnects and broken HTTP. */
final class Http {
    static final ObjectMapper JSON = new ObjectMapper();
    final HttpClient client;
    final String base;
    final int port;

    Http(int port, Executor executor) {
        this.port = port;
        this.base = "http://127.0.0.1:" + port;
        HttpClient.Builder b = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(10));
        if (executor != null) {
            b.executor(executor);
        }
        this.client = b.build();
    }

    record Reply(int status, String body, HttpResponse<?> raw) {
        JsonNode json() {
            try {
                return JSON.readTree(body);
            } catch (IOException e) {
                throw new AssertionError("not JSON (" + status + "): " + body, e);
            }
        }
    }

    Reply get(String path) throws Exception {
        HttpResponse<String> r = client.send(HttpRequest.newBuilder(URI.create(base + path)).timeout(Duration.ofSeconds(60)).GET().build(),
                HttpResponse.BodyHandlers.ofString());
        return new Reply(r.statusCode(), r.body(), r);
    }

    Reply post(String path, String body) throws Exception {
        return post(path, body.getBytes(StandardCharsets.UTF_8));
    }

    Reply post(String path, byte[] body) throws Exception {
        HttpResponse<String> r = client.send(HttpRequest.newBuilder(URI.create(base + path)).timeout(Duration.ofSeconds(120))
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofByteArray(body)).build(), HttpResponse.BodyHandlers.ofString());
        return new Reply(r.statusCode(), r.body(), r);
    }

    Reply send(String method, String path, String body) throws Exception {
        HttpResponse<String> r = client.send(HttpRequest.newBuilder(URI.create(base + path)).timeout(Duration.ofSeconds(60))
                .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body)).build(),
                HttpResponse.BodyHandlers.ofString());
        return new Reply(r.statusCode(), r.body(), r);
    }

    /** A finished SSE stream, checked strictly the way OpenAI clients read it. */
    record Stream(int status, List<JsonNode> chunks, boolean done) {}

    Stream stream(String path, String body) throws Exception {
        HttpResponse<java.util.stream.Stream<String>> r = client.send(HttpRequest.newBuilder(URI.create(base + path)).timeout(Duration.ofSeconds(120))
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofLines());
        if (r.statusCode() != 200) {
            StringBuilder sb = new StringBuilder();
            r.body().forEach(sb::append);
            fail("stream answered " + r.statusCode() + ": " + sb);
        }
        assertTrue(r.headers().firstValue("content-type").orElse("").startsWith("text/event-stream"), r.headers().toString());
        List<String> lines = r.body().toList();
        return parseSse(lines);
    }

    /** Events are "data: ..." lines each followed by a blank line; ": ..." comments are allowed; [DONE] is last. */
    static Stream parseSse(List<String> lines) throws IOException {
        List<JsonNode> chunks = new ArrayList<>();
        boolean done = false;
        for (int i = 0; i < lines.size(); i++) {
            String l = lines.get(i);
            if (l.isEmpty()) {
                continue;
            }
            assertFalse(done, "nothing may follow [DONE]: " + l);
            if (l.startsWith(":")) {
                continue;
            }
            assertTrue(l.startsWith("data: "), "every event line is 'data: ...': " + l);
            assertTrue(i + 1 < lines.size() && lines.get(i + 1).isEmpty(), "each event ends with a blank line");
            String payload = l.substring(6);
            if (payload.equals("[DONE]")) {
                done = true;
            } else {
                chunks.add(JSON.readTree(payload));
            }
        }
        return new Stream(200, chunks, done);
    }

    /** Raw HTTP/1.1 request on a socket; returns the socket with the request sent (caller reads and closes). */
    Socket raw(String method, String path, byte[] body) throws IOException {
        Socket s = new Socket("127.0.0.1", port);
        s.setSoTimeout(60_000);
        OutputStream out = s.getOutputStream();
        String head = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: " + body.length + "\r\n\r\n";
        out.write(head.getBytes(StandardCharsets.US_ASCII));
        out.write(body);
        out.flush();
        return s;
    }

    /** Sends bytes as they are and reads the whole answer (the server closes or we stop at the body's end). */
    static String rawExchange(int port, byte[] bytes) throws IOException {
        try (Socket s = new Socket("127.0.0.1", port)) {
            s.setSoTimeout(20_000);
            s.getOutputStream().write(bytes);
            s.getOutputStream().flush();
            s.shutdownOutput();
            InputStream in = s.getInputStream();
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    /** Reads an SSE response on a raw socket until {@code events} data events arrived, then drops the connection. */
    static int readEventsThenDisconnect(Socket s, int events) throws IOException {
        BufferedReader r = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8));
        String status = r.readLine();
        assertNotNull(status);
        assertTrue(status.startsWith("HTTP/1.1 200"), status);
        int seen = 0;
        String line;
        while (seen < events && (line = r.readLine()) != null) {
            if (line.startsWith("data: ") || line.matches("[0-9a-fA-F]+data: .*")) {
                seen++;
            }
        }
        s.setSoLinger(true, 0); // reset, not a graceful close: like a client that crashed or lost the network
        s.close();
        return seen;
    }
}
