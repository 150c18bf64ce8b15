package internlm.server;

import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.util.Blocker;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.List;

/** Who may call: the API key (Bearer, constant-time comparison; /health stays open) and CORS for browser origins. */
final class Access {
    private final byte[] apiKey;
    private final List<String> corsOrigins;

    /** @param apiKey the key, or null for an open server */
    Access(String apiKey, List<String> corsOrigins) {
        this.apiKey = apiKey == null ? null : apiKey.getBytes(StandardCharsets.UTF_8);
        this.corsOrigins = List.copyOf(corsOrigins);
    }

    /**
     * CORS for browser clients: a request from an allowed origin gets Access-Control-Allow-Origin; a preflight
     * (OPTIONS with Access-Control-Request-Method) from one is answered here, without authentication. Returns
     * whether it answered the request.
     */
    boolean preflight(Request req, Response res) throws IOException {
        String origin = req.getHeaders().get(HttpHeader.ORIGIN);
        if (origin == null || corsOrigins.isEmpty()) {
            return false;
        }
        if (!corsHeaders(req, res)) {
            return false;
        }
        if (req.getMethod().equals("OPTIONS") && req.getHeaders().get(HttpHeader.ACCESS_CONTROL_REQUEST_METHOD) != null) {
            res.getHeaders().put(HttpHeader.ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, OPTIONS");
            res.getHeaders().put(HttpHeader.ACCESS_CONTROL_ALLOW_HEADERS, "Authorization, Content-Type");
            String asked = req.getHeaders().get(HttpHeader.ACCESS_CONTROL_REQUEST_HEADERS);
            if (asked != null) {
                res.getHeaders().put(HttpHeader.ACCESS_CONTROL_ALLOW_HEADERS, asked);
            }
            res.getHeaders().put(HttpHeader.ACCESS_CONTROL_MAX_AGE, "600");
            res.setStatus(204);
            try (Blocker.Callback b = Blocker.callback()) {
                res.write(true, ByteBuffer.allocate(0), b);
                b.block();
            }
            return true;
        }
        return false;
    }

    /** Adds the CORS headers when the request's origin is allowed; returns whether it is. */
    boolean corsHeaders(Request req, Response res) {
        String origin = req.getHeaders().get(HttpHeader.ORIGIN);
        if (origin == null || !(corsOrigins.contains("*") || corsOrigins.contains(origin))) {
            return false;
        }
        res.getHeaders().put(HttpHeader.ACCESS_CONTROL_ALLOW_ORIGIN, corsOrigins.contains("*") ? "*" : origin);
        res.getHeaders().put(HttpHeader.VARY, "Origin");
        return true;
    }

    /** With an API key configured: every path but /health needs {@code Authorization: Bearer <key>} (compared in constant time). */
    void authorize(Request req) {
        if (apiKey == null || req.getHttpURI().getPath().equals("/health")) {
            return;
        }
        String h = req.getHeaders().get(HttpHeader.AUTHORIZATION);
        byte[] given = h != null && h.regionMatches(true, 0, "Bearer ", 0, 7) ? h.substring(7).trim().getBytes(StandardCharsets.UTF_8) : new byte[0];
        if (!MessageDigest.isEqual(given, apiKey)) {
            throw new ApiException(401, "invalid_request_error", h == null
                    ? "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
                    : "Incorrect API key provided.", null, "invalid_api_key");
        }
    }
}
