package internlm.server;

import internlm.engine.generate.Scheduler;

import java.util.List;

/**
 * How the server runs.
 *
 * @param host            address to listen on
 * @param port            TCP port (0: any free port)
 * @param parallel        requests generated at once, each in its own session (KV cache)
 * @param queue           requests that may wait for a free session; more are refused with 503
 * @param context         tokens each session holds (prompt + generated)
 * @param modelId         the name clients use in "model"
 * @param think           deep-thinking mode for chat requests that do not say otherwise
 * @param builtInTemplate use InternLM's ChatML even when the model file has another chat template
 * @param maxBodyBytes    largest request body accepted
 * @param threadIdleMillis how long an idle HTTP worker thread lives before it is released
 * @param apiKey          the key clients must send as {@code Authorization: Bearer …} on every path but /health, or
 *                        null for an open server
 * @param corsOrigins     browser origins allowed to call the API ({@code *}: any), empty for none
 * @param batchTokens     rows per batched step of all running requests (decode rows first, then prompt chunks)
 */
public record ServerConfig(String host, int port, int parallel, int queue, int context, String modelId, boolean think,
                           boolean builtInTemplate, int maxBodyBytes, int threadIdleMillis, String apiKey, List<String> corsOrigins,
                           int batchTokens) {
    public ServerConfig(String host, int port, int parallel, int queue, int context, String modelId, boolean think,
                        boolean builtInTemplate, int maxBodyBytes, int threadIdleMillis) {
        this(host, port, parallel, queue, context, modelId, think, builtInTemplate, maxBodyBytes, threadIdleMillis, null, List.of(),
                Scheduler.DEFAULT_BATCH_TOKENS);
    }

    public ServerConfig {
        if (batchTokens < 1 || batchTokens > 65_536) {
            throw new IllegalArgumentException("--batch-tokens must be between 1 and 65536, got " + batchTokens);
        }
        if (apiKey != null && apiKey.isBlank()) {
            throw new IllegalArgumentException("the API key is empty");
        }
        corsOrigins = corsOrigins == null ? List.of() : List.copyOf(corsOrigins);
        if (parallel < 1 || parallel > 256) {
            throw new IllegalArgumentException("--parallel must be between 1 and 256, got " + parallel);
        }
        if (queue < 0 || queue > 100_000) {
            throw new IllegalArgumentException("--queue must be between 0 and 100000, got " + queue);
        }
        if (port < 0 || port > 65535) {
            throw new IllegalArgumentException("--port must be between 0 and 65535, got " + port);
        }
        if (context < 16) {
            throw new IllegalArgumentException("the context must hold at least 16 tokens, got " + context);
        }
    }

    public static ServerConfig defaults(String modelId, int context) {
        return new ServerConfig("127.0.0.1", 8080, 2, 32, context, modelId, false, false, 8 << 20, 60_000);
    }

    public ServerConfig withPort(int p) {
        return new ServerConfig(host, p, parallel, queue, context, modelId, think, builtInTemplate, maxBodyBytes, threadIdleMillis, apiKey, corsOrigins, batchTokens);
    }

    public ServerConfig withSlots(int par, int q) {
        return new ServerConfig(host, port, par, q, context, modelId, think, builtInTemplate, maxBodyBytes, threadIdleMillis, apiKey, corsOrigins, batchTokens);
    }

    public ServerConfig withThreadIdleMillis(int ms) {
        return new ServerConfig(host, port, parallel, queue, context, modelId, think, builtInTemplate, maxBodyBytes, ms, apiKey, corsOrigins, batchTokens);
    }

    public ServerConfig withApiKey(String key) {
        return new ServerConfig(host, port, parallel, queue, context, modelId, think, builtInTemplate, maxBodyBytes, threadIdleMillis, key, corsOrigins, batchTokens);
    }

    public ServerConfig withCorsOrigins(List<String> origins) {
        return new ServerConfig(host, port, parallel, queue, context, modelId, think, builtInTemplate, maxBodyBytes, threadIdleMillis, apiKey, origins, batchTokens);
    }

    /** Without the key (for printing). */
    @Override
    public String toString() {
        return "ServerConfig[" + host + ":" + port + ", parallel " + parallel + ", queue " + queue + ", context " + context + ", model " + modelId
                + (apiKey != null ? ", API key set" : "") + (corsOrigins.isEmpty() ? "" : ", CORS " + corsOrigins) + "]";
    }

    public ServerConfig withBatchTokens(int n) {
        return new ServerConfig(host, port, parallel, queue, context, modelId, think, builtInTemplate, maxBodyBytes, threadIdleMillis, apiKey, corsOrigins, n);
    }
}
