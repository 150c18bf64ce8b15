package internlm.server;

/**
 * A request the server refuses, answered with an OpenAI-style error object
 * {@code {"error": {"message", "type", "param", "code"}}} and an HTTP status.
 */
final class ApiException extends RuntimeException {
    final int status;
    final String type;
    final String param;
    final String code;

    ApiException(int status, String type, String message, String param, String code) {
        super(message, null, false, false);
        this.status = status;
        this.type = type;
        this.param = param;
        this.code = code;
    }

    /** 400 invalid_request_error about one parameter. */
    static ApiException invalid(String param, String message) {
        return new ApiException(400, "invalid_request_error", message, param, null);
    }

    static ApiException invalid(String param, String message, String code) {
        return new ApiException(400, "invalid_request_error", message, param, code);
    }
}
