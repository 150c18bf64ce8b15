package internlm.server;

import org.eclipse.jetty.http.HttpFields;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.server.handler.ErrorHandler;
import org.eclipse.jetty.util.Callback;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/** Jetty's own errors (malformed HTTP, unknown paths reached outside our handler) as OpenAI error objects too. */
final class JsonErrors extends ErrorHandler {
    @Override
    public boolean handle(Request request, Response response, Callback callback) {
        int status = response.getStatus() >= 400 ? response.getStatus() : 500;
        Object msg = request.getAttribute(ERROR_MESSAGE);
        try {
            OpenAiServer.writeJson(response, status, OpenAiServer.errorBody(status, msg == null ? "HTTP error " + status : msg.toString(),
                    status >= 500 ? "server_error" : "invalid_request_error", null, null));
            callback.succeeded();
        } catch (IOException e) {
            callback.failed(e);
        }
        return true;
    }

    @Override
    public ByteBuffer badMessageError(int status, String reason, HttpFields.Mutable fields) {
        fields.put(HttpHeader.CONTENT_TYPE, "application/json");
        String json = OpenAiServer.errorBody(status, "malformed HTTP request" + (reason == null ? "" : ": " + reason), "invalid_request_error", null, null).toString();
        return ByteBuffer.wrap(json.getBytes(StandardCharsets.UTF_8));
    }
}
