package internlm.server;

import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.util.Blocker;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * A server-sent-event stream as OpenAI clients read it: {@code data: {json}\n\n} per chunk, {@code data: [DONE]\n\n}
 * at the end. Every write goes out at once and blocks until the client's socket took it, so a client that went
 * away makes the next write throw — which is how a disconnect stops generation.
 */
final class Sse {
    private final Response response;
    private boolean open;
    private long lastWrite = System.nanoTime();

    Sse(Response response) {
        this.response = response;
    }

    void open() throws IOException {
        response.setStatus(200);
        response.getHeaders().put(HttpHeader.CONTENT_TYPE, "text/event-stream; charset=utf-8");
        response.getHeaders().put(HttpHeader.CACHE_CONTROL, "no-cache");
        response.getHeaders().put("X-Accel-Buffering", "no");
        open = true;
    }

    boolean isOpen() {
        return open;
    }

    void data(String json) throws IOException {
        write("data: " + json + "\n\n", false);
    }

    /** A comment line: ignored by clients, but a write that fails when the client is gone. */
    void comment(String text) throws IOException {
        write(": " + text + "\n\n", false);
    }

    void done() throws IOException {
        write("data: [DONE]\n\n", true);
    }

    /** Nanoseconds since the last write (or since this stream was made). */
    long idleNanos() {
        return System.nanoTime() - lastWrite;
    }

    private void write(String s, boolean last) throws IOException {
        lastWrite = System.nanoTime();
        try (Blocker.Callback cb = Blocker.callback()) {
            response.write(last, ByteBuffer.wrap(s.getBytes(StandardCharsets.UTF_8)), cb);
            cb.block();
        }
    }
}
