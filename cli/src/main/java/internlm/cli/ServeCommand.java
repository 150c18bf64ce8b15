package internlm.cli;

import internlm.server.OpenAiServer;
import internlm.server.ServerConfig;
import internlm.engine.Engine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.util.concurrent.Callable;

@Command(name = "serve", mixinStandardHelpOptions = true,
        description = {"OpenAI-compatible HTTP server: POST /v1/chat/completions (streaming, tools, logprobs), /v1/completions, "
                + "/v1/rewards (reward models); GET /v1/models, /health.",
                "Sampling defaults are InternLM's (spec §10) unless a request sets them."})
final class ServeCommand implements Callable<Integer> {
    @Mixin
    ModelOptions model;

    @Option(names = "--host", paramLabel = "ADDR", defaultValue = "127.0.0.1", description = "Address to listen on (default: ${DEFAULT-VALUE}).")
    String host;

    @Option(names = "--port", paramLabel = "PORT", defaultValue = "8080", description = "TCP port (default: ${DEFAULT-VALUE}; 0 = any free port).")
    int port;

    @Option(names = {"--parallel", "-np"}, paramLabel = "N", defaultValue = "2",
            description = "Requests generated at once, each with its own KV cache of --ctx tokens (default: ${DEFAULT-VALUE}).")
    int parallel;

    @Option(names = "--queue", paramLabel = "N", defaultValue = "32",
            description = "Requests that may wait for a free slot; more are refused with 503 (default: ${DEFAULT-VALUE}).")
    int queue;

    @Option(names = {"--batch-tokens", "-b"}, paramLabel = "N", defaultValue = "512",
            description = "Rows per batched step of all running requests: every decode row first, then prompt chunks in what is left (default: ${DEFAULT-VALUE}).")
    int batchTokens;

    @Option(names = "--alias", paramLabel = "NAME", description = "Model name for clients (default: the model file's name without .gguf).")
    String alias;

    @Option(names = "--think", description = "InternLM3 deep-thinking mode for chat requests that do not set \"think\" themselves.")
    boolean think;

    @Option(names = "--chat-template", paramLabel = "auto|internlm", defaultValue = "auto",
            description = "auto: the model's chat template if it is InternLM's ChatML (refused otherwise); internlm: InternLM's ChatML regardless.")
    String chatTemplate;

    @Option(names = "--api-key", paramLabel = "KEY",
            description = "Require 'Authorization: Bearer KEY' on every path but /health (also: --api-key-file, or the INTERNLM_API_KEY environment variable).")
    String apiKey;

    @Option(names = "--api-key-file", paramLabel = "FILE", description = "Read the API key from the first line of this file.")
    java.nio.file.Path apiKeyFile;

    @Option(names = "--cors-origin", paramLabel = "ORIGIN",
            description = "Allow browser calls from this origin, e.g. https://app.example (repeatable; * allows any).")
    java.util.List<String> corsOrigins = new java.util.ArrayList<>();

    /** The key from --api-key, --api-key-file or INTERNLM_API_KEY (in that order), or null. */
    String apiKey() {
        if (apiKey != null && apiKeyFile != null) {
            throw new IllegalArgumentException("use either --api-key or --api-key-file, not both");
        }
        if (apiKey != null) {
            return apiKey;
        }
        if (apiKeyFile != null) {
            try {
                String k = java.nio.file.Files.readAllLines(apiKeyFile).stream().findFirst().orElse("").strip();
                if (k.isEmpty()) {
                    throw new IllegalArgumentException("the API key file " + apiKeyFile + " is empty");
                }
                return k;
            } catch (java.io.IOException e) {
                throw new IllegalArgumentException("cannot read the API key file " + apiKeyFile + ": " + e.getMessage());
            }
        }
        String env = System.getenv("INTERNLM_API_KEY");
        return env == null || env.isBlank() ? null : env.strip();
    }

    @Override
    public Integer call() throws Exception {
        String key = apiKey();
        boolean builtIn = ChatCommand.builtInTemplate(chatTemplate);
        Engine engine = model.load(parallel);
        OpenAiServer server;
        try {
            int ctx = model.contextFor(engine);
            String id = alias != null ? alias : model.modelId();
            ServerConfig cfg = new ServerConfig(host, port, parallel, queue, ctx, id, think, builtIn, 8 << 20, 60_000, key, corsOrigins, batchTokens);
            server = new OpenAiServer(engine, cfg, model.quiet ? null : line -> System.err.println(line));
        } catch (RuntimeException | Error e) {
            engine.close();
            throw e;
        }
        try {
            server.start();
        } catch (java.io.IOException e) {
            server.close();
            engine.close();
            throw new IllegalStateException("cannot listen on " + host + ":" + port + ": " + e.getMessage(), e);
        }
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                server.close();
            } catch (Exception ignored) {
                // shutting down anyway
            }
        }, "internlm-shutdown"));
        System.err.println("model: " + model.modelName() + " (" + engine.config().family().label + ", " + engine.backend().description() + ")"
                + (engine.isRewardModel() ? " — reward model: POST /v1/rewards" : ""));
        System.err.printf("serving '%s' on http://%s:%d/v1 (%d parallel, queue %d, %d-token context per slot, %d-token batches%s)%n",
                server.modelId(), host, server.port(), parallel, queue, model.contextFor(engine), batchTokens, key != null ? ", API key required" : "");
        server.join();
        return 0;
    }
}
