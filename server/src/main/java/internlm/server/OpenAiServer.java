package internlm.server;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import internlm.engine.Engine;
import internlm.engine.chat.ChatDefaults;
import internlm.engine.chat.ChatMessage;
import internlm.engine.chat.ChatTemplate;
import internlm.engine.chat.ToolCallParser;
import internlm.engine.generate.GenerationParams;
import internlm.engine.generate.GenerationResult;
import internlm.engine.generate.Scheduler;
import internlm.engine.grammar.GrammarException;
import internlm.engine.grammar.TokenConstraint;
import internlm.engine.reward.RewardScorer;
import internlm.engine.sampling.SamplerConfig;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.io.Content;
import org.eclipse.jetty.server.Handler;
import org.eclipse.jetty.server.HttpConfiguration;
import org.eclipse.jetty.server.HttpConnectionFactory;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.util.Blocker;
import org.eclipse.jetty.util.Callback;
import org.eclipse.jetty.util.thread.QueuedThreadPool;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;

/**
 * An OpenAI-compatible HTTP server for one model (Jetty): {@code POST /v1/chat/completions}, {@code POST
 * /v1/completions}, {@code POST /v1/rewards} (reward models), {@code GET /v1/models}, {@code GET /health}.
 * Streaming answers are server-sent events exactly as OpenAI clients parse them.
 *
 * <p>Concurrency: {@code parallel} sessions, each with its own KV cache, generate at once (the backend interleaves
 * them token by token); further requests wait in a bounded queue and are refused with 503 when it is full. A
 * streaming client that disconnects stops its generation at the next token and frees its session.
 *
 * <p>Bad input of any kind (malformed JSON, wrong types, unknown model or role, empty messages, a prompt or
 * max_tokens beyond the context, unknown paths) is answered with a 4xx and an OpenAI error object.
 */
public final class OpenAiServer implements AutoCloseable {
    private final Engine engine;
    private final ServerConfig cfg;
    private final ChatTemplate template;
    private final ChatTemplate thinkingTemplate;
    private final RewardScorer scorer;
    private final SlotPool pool;
    private final Scheduler scheduler;
    private final Server server;
    private final ServerConnector connector;
    private final Consumer<String> log;
    private final long created = System.currentTimeMillis() / 1000;
    /** What every answer's envelope names: the model id and OpenAI's system_fingerprint. */
    private final Output.Context answerContext;
    private final Access access;

    private final AtomicLong requests = new AtomicLong(), completed = new AtomicLong(), cancelled = new AtomicLong(),
            rejected = new AtomicLong(), invalid = new AtomicLong(), failed = new AtomicLong(), tokensOut = new AtomicLong();

    /** @param log receives one line per finished request (null: silent) */
    public OpenAiServer(Engine engine, ServerConfig cfg, Consumer<String> log) {
        this.engine = engine;
        this.cfg = cfg;
        this.log = log == null ? s -> { } : log;
        this.template = ChatTemplate.forModel(engine.tokenizer(), cfg.builtInTemplate());
        this.thinkingTemplate = template.withDefaultSystemPrompt(ChatTemplate.THINKING_SYSTEM_PROMPT);
        this.scorer = engine.isRewardModel() ? new RewardScorer(engine, template) : null;
        this.pool = new SlotPool(engine, cfg.parallel(), cfg.context(), cfg.queue());
        this.scheduler = new Scheduler(engine.backend(), cfg.batchTokens());
        // system_fingerprint: changes when the model, its backend or this server's code does
        String fingerprint = "fp_" + Integer.toHexString((cfg.modelId() + "|" + engine.backend().description() + "|"
                + engine.config().family().label + "|" + OpenAiServer.class.getPackage().getImplementationVersion()).hashCode());
        this.answerContext = new Output.Context(engine.tokenizer(), cfg.modelId(), fingerprint);
        this.access = new Access(cfg.apiKey(), cfg.corsOrigins());
        QueuedThreadPool threads = new QueuedThreadPool(Math.max(32, cfg.parallel() + cfg.queue() + 16), 4, cfg.threadIdleMillis());
        threads.setName("internlm-http");
        threads.setReservedThreads(0);      // no speculative pre-started threads: the pool is exactly what requests use
        threads.setMaxEvictCount(1024);     // after a burst, all idle threads leave after one idle period
        server = new Server(threads);
        HttpConfiguration http = new HttpConfiguration();
        http.setSendServerVersion(false);
        http.setSendXPoweredBy(false);
        connector = new ServerConnector(server, 1, 1, new HttpConnectionFactory(http));
        connector.setHost(cfg.host());
        connector.setPort(cfg.port());
        connector.setIdleTimeout(30_000);
        server.addConnector(connector);
        server.setHandler(new Api());
        server.setErrorHandler(new JsonErrors());
        server.setStopTimeout(2_000);
    }

    public void start() throws Exception {
        server.start();
    }

    /** The port the server listens on (useful with port 0). */
    public int port() {
        return connector.getLocalPort();
    }

    public void join() throws InterruptedException {
        server.join();
    }

    public String modelId() {
        return cfg.modelId();
    }

    /** Counters since start: requests, completed, cancelled, rejected (busy), invalid (4xx), failed (5xx), tokens. */
    public Map<String, Long> metrics() {
        Map<String, Long> m = new LinkedHashMap<>();
        m.put("requests", requests.get());
        m.put("completed", completed.get());
        m.put("cancelled", cancelled.get());
        m.put("rejected", rejected.get());
        m.put("invalid", invalid.get());
        m.put("failed", failed.get());
        m.put("generated_tokens", tokensOut.get());
        return m;
    }

    @Override
    public void close() throws Exception {
        try {
            server.stop();
        } finally {
            scheduler.close();
            pool.close();
        }
    }

    // ------------------------------------------------------------------ HTTP plumbing

    /** The client went away while we were writing to it (nothing more can be sent). */
    private static final class ClientGone extends Exception {
        ClientGone(Throwable cause) {
            super(cause);
        }
    }

    private final class Api extends Handler.Abstract {
        Api() {
            super(InvocationType.BLOCKING);
        }

        @Override
        public boolean handle(Request req, Response res, Callback cb) {
            requests.incrementAndGet();
            // a long generation without writes (non-streaming) must not be cut by the connection's idle timeout
            req.addIdleTimeoutListener(t -> false);
            try {
                if (access.preflight(req, res)) {
                    cb.succeeded();
                    return true;
                }
                access.authorize(req);
                route(req, res);
                cb.succeeded();
            } catch (ApiException e) {
                (e.status == 503 ? rejected : invalid).incrementAndGet();
                sendError(req, res, cb, e);
            } catch (ClientGone e) {
                cancelled.incrementAndGet();
                cb.failed(e.getCause());
            } catch (Throwable t) {
                failed.incrementAndGet();
                log.accept("error: " + req.getMethod() + " " + req.getHttpURI().getPath() + ": " + t);
                if (!res.isCommitted()) {
                    sendError(req, res, cb, new ApiException(500, "server_error", "internal error: " + t.getClass().getSimpleName()
                            + (t.getMessage() == null ? "" : ": " + t.getMessage()), null, null));
                } else {
                    cb.failed(t);
                }
            }
            return true;
        }
    }


    private void sendError(Request req, Response res, Callback cb, ApiException e) {
        if (res.isCommitted()) {
            cb.failed(e);
            return;
        }
        try {
            res.getHeaders().clear();
            access.corsHeaders(req, res);
            if (e.status == 503) {
                res.getHeaders().put(HttpHeader.RETRY_AFTER, "1");
            }
            if (e.status == 401) {
                res.getHeaders().put(HttpHeader.WWW_AUTHENTICATE, "Bearer");
            }
            writeJson(res, e.status, errorBody(e.status, e.getMessage(), e.type, e.param, e.code));
            cb.succeeded();
        } catch (IOException io) {
            cb.failed(io);
        }
    }

    static ObjectNode errorBody(int status, String message, String type, String param, String code) {
        ObjectNode err = JsonNodeFactory.instance.objectNode();
        err.put("message", message);
        err.put("type", type);
        err.put("param", param);
        if (code != null) {
            err.put("code", code);
        } else {
            err.put("code", status == 404 ? "not_found" : status == 405 ? "method_not_allowed" : null);
        }
        ObjectNode body = JsonNodeFactory.instance.objectNode();
        body.set("error", err);
        return body;
    }

    /** One space ahead of a JSON answer that takes long: a write that fails when the client has gone. */
    private static void heartbeat(Response res) throws IOException {
        if (!res.isCommitted()) {
            res.setStatus(200);
            res.getHeaders().put(HttpHeader.CONTENT_TYPE, "application/json");
        }
        write(res, false, new byte[] {' '});
    }

    static void writeJson(Response res, int status, JsonNode body) throws IOException {
        byte[] bytes;
        try {
            bytes = Requests.JSON.writeValueAsBytes(body);
        } catch (JsonProcessingException e) {
            throw new IOException(e);
        }
        // after heartbeats (see heartbeat) the status and headers have gone out already
        if (!res.isCommitted()) {
            res.setStatus(status);
            res.getHeaders().put(HttpHeader.CONTENT_TYPE, "application/json");
            res.getHeaders().put(HttpHeader.CONTENT_LENGTH, bytes.length);
        }
        write(res, true, bytes);
    }

    /** Writes bytes and waits until the client's socket took them (a write to a client that has gone throws). */
    private static void write(Response res, boolean last, byte[] bytes) throws IOException {
        try (Blocker.Callback b = Blocker.callback()) {
            res.write(last, ByteBuffer.wrap(bytes), b);
            b.block();
        }
    }

    /** Bodies up to this size are read to their end even when too large, so that the client gets the 413 answer. */
    private static final long DRAIN_LIMIT = 64L << 20;

    private byte[] body(Request req) throws IOException {
        long declared = req.getHeaders().getLongField(HttpHeader.CONTENT_LENGTH);
        ApiException tooLarge = new ApiException(413, "invalid_request_error", "the request body is larger than the " + cfg.maxBodyBytes()
                + " bytes accepted" + (declared > 0 ? " (" + declared + " bytes)" : ""), null, "request_too_large");
        if (declared > DRAIN_LIMIT) {
            throw tooLarge;
        }
        try (InputStream in = Content.Source.asInputStream(req)) {
            byte[] b;
            try {
                b = in.readNBytes(cfg.maxBodyBytes() + 1);
            } catch (IOException e) {
                boolean timeout = e.getCause() instanceof java.util.concurrent.TimeoutException || e instanceof java.io.InterruptedIOException;
                throw new ApiException(timeout ? 408 : 400, "invalid_request_error", timeout
                        ? "the request body did not arrive in time (" + connector.getIdleTimeout() / 1000 + " s without data)"
                        : "the request body could not be read: " + e.getMessage(), null, timeout ? "request_timeout" : "bad_body");
            }
            if (b.length > cfg.maxBodyBytes()) {
                // read the rest (bounded) so the connection is in a state to carry the answer
                long skipped = b.length;
                byte[] sink = new byte[64 << 10];
                int n;
                while (skipped < DRAIN_LIMIT && (n = in.read(sink)) > 0) {
                    skipped += n;
                }
                throw tooLarge;
            }
            return b;
        }
    }

    private void route(Request req, Response res) throws IOException, ClientGone {
        String path = req.getHttpURI().getPath();
        if (path.length() > 1 && path.endsWith("/")) {
            path = path.substring(0, path.length() - 1);
        }
        String method = req.getMethod();
        switch (path) {
            case "/health" -> {
                requireMethod(method, "GET");
                writeJson(res, 200, health());
            }
            case "/v1/models" -> {
                requireMethod(method, "GET");
                ObjectNode list = JsonNodeFactory.instance.objectNode();
                list.put("object", "list");
                list.putArray("data").add(modelObject());
                writeJson(res, 200, list);
            }
            case "/v1/chat/completions" -> {
                requireMethod(method, "POST");
                chat(Requests.object(body(req)), res);
            }
            case "/v1/completions" -> {
                requireMethod(method, "POST");
                completion(Requests.object(body(req)), res);
            }
            case "/v1/rewards" -> {
                requireMethod(method, "POST");
                reward(Requests.object(body(req)), res);
            }
            default -> {
                if (path.startsWith("/v1/models/")) {
                    requireMethod(method, "GET");
                    String id = path.substring("/v1/models/".length());
                    if (!id.equals(cfg.modelId())) {
                        throw new ApiException(404, "invalid_request_error", "The model '" + id + "' does not exist; this server serves '" + cfg.modelId() + "'", "model", "model_not_found");
                    }
                    writeJson(res, 200, modelObject());
                    return;
                }
                throw new ApiException(404, "invalid_request_error", "unknown path " + path
                        + " (POST /v1/chat/completions, /v1/completions, /v1/rewards; GET /v1/models, /health)", null, "not_found");
            }
        }
    }

    private static void requireMethod(String method, String expected) {
        if (!method.equals(expected)) {
            throw new ApiException(405, "invalid_request_error", "use " + expected + " for this path, not " + method, null, "method_not_allowed");
        }
    }

    private ObjectNode modelObject() {
        ObjectNode m = JsonNodeFactory.instance.objectNode();
        m.put("id", cfg.modelId());
        m.put("object", "model");
        m.put("created", created);
        m.put("owned_by", "internlm-tornado");
        ObjectNode meta = m.putObject("meta");
        meta.put("family", engine.config().family().label);
        meta.put("context", cfg.context());
        meta.put("vocab_size", engine.config().vocabSize());
        meta.put("reward_model", engine.isRewardModel());
        meta.put("chat_template", template.origin());
        meta.put("backend", engine.backend().description());
        return m;
    }

    private ObjectNode health() {
        ObjectNode h = JsonNodeFactory.instance.objectNode();
        h.put("status", "ok");
        h.put("model", cfg.modelId());
        ObjectNode slots = h.putObject("slots");
        slots.put("total", pool.slots());
        slots.put("busy", pool.busy());
        slots.put("waiting", pool.waiting());
        ObjectNode m = h.putObject("requests");
        metrics().forEach(m::put);
        return h;
    }

    private void checkModel(ObjectNode body) {
        String model = Requests.string(body, "model");
        if (model != null && !model.equals(cfg.modelId())) {
            throw new ApiException(404, "invalid_request_error", "The model '" + model + "' does not exist; this server serves '" + cfg.modelId() + "'",
                    "model", "model_not_found");
        }
    }

    private void refuseRewardModel() {
        if (engine.isRewardModel()) {
            throw ApiException.invalid("model", "'" + cfg.modelId() + "' is a reward model: it scores conversations (POST /v1/rewards) and does not generate text",
                    "reward_model");
        }
    }

    private static String newId(String prefix) {
        return prefix + Long.toHexString(ThreadLocalRandom.current().nextLong() & Long.MAX_VALUE)
                + Long.toHexString(ThreadLocalRandom.current().nextLong() & 0xffffffffL);
    }

    // ------------------------------------------------------------------ generation requests

    /** What to generate, checked against the context: prompt, parameters, streaming options. */

    private Job job(ObjectNode body, int[] prompt, int defaultMax, boolean tools, ChatTemplate t, boolean chatLogprobs, TokenConstraint forced) {
        if (prompt.length >= cfg.context()) {
            throw ApiException.invalid("messages", "the prompt has " + prompt.length + " tokens but the context holds " + cfg.context()
                    + " (prompt and reply together); shorten the conversation", "context_length_exceeded");
        }
        Long maxTokens = Requests.integer(body, "max_completion_tokens", 1, Long.MAX_VALUE);
        if (maxTokens == null) {
            maxTokens = Requests.integer(body, "max_tokens", 1, Long.MAX_VALUE);
        }
        int room = cfg.context() - prompt.length;
        if (maxTokens != null && maxTokens > room) {
            throw ApiException.invalid(body.has("max_completion_tokens") ? "max_completion_tokens" : "max_tokens",
                    "the context holds " + cfg.context() + " tokens, the prompt takes " + prompt.length + " and you asked for " + maxTokens
                            + " more; ask for at most " + room, "context_length_exceeded");
        }
        int max = maxTokens != null ? maxTokens.intValue() : Math.min(defaultMax, room);
        Requests.singleChoice(body);
        SamplerConfig sampler = Requests.sampler(body, ChatDefaults.sampler(engine.config().family(), 0));
        List<String> stops = Requests.stops(body);
        Boolean ignoreEos = Requests.bool(body, "ignore_eos");
        boolean stream = Boolean.TRUE.equals(Requests.bool(body, "stream"));
        boolean includeUsage = false;
        JsonNode so = Requests.field(body, "stream_options");
        if (so != null) {
            if (!so.isObject()) {
                throw ApiException.invalid("stream_options", "'stream_options' must be an object");
            }
            Boolean iu = Requests.bool((ObjectNode) so, "include_usage");
            includeUsage = Boolean.TRUE.equals(iu);
        }
        boolean logprobs;
        int top = 0;
        if (chatLogprobs) {
            logprobs = Boolean.TRUE.equals(Requests.bool(body, "logprobs"));
            Long tl = Requests.integer(body, "top_logprobs", 0, Requests.MAX_TOP_LOGPROBS);
            if (tl != null && !logprobs && tl > 0) {
                throw ApiException.invalid("top_logprobs", "'top_logprobs' needs \"logprobs\": true");
            }
            top = tl == null ? 0 : tl.intValue();
        } else {
            Long lp = Requests.integer(body, "logprobs", 0, Requests.MAX_TOP_LOGPROBS);
            logprobs = lp != null;
            top = lp == null ? 0 : lp.intValue();
        }
        TokenConstraint constraint;
        try {
            constraint = forced != null ? forced : Structured.responseFormat(body, engine.tokenizer());
        } catch (GrammarException e) {
            throw ApiException.invalid("response_format", e.getMessage());
        }
        GenerationParams params = new GenerationParams(max, sampler, Boolean.TRUE.equals(ignoreEos), stops, logprobs ? Math.max(1, top) : 0, false,
                tools ? t.actionTokens() : null, tools && t.actionEndToken() >= 0 ? new int[] {t.actionEndToken()} : null, constraint);
        return new Job(prompt, params, stream, includeUsage, logprobs, top);
    }

    private void chat(ObjectNode body, Response res) throws IOException, ClientGone {
        checkModel(body);
        refuseRewardModel();
        Boolean think = Requests.bool(body, "think");
        boolean thinking = think != null ? think : cfg.think();
        ChatTemplate t = thinking ? thinkingTemplate : template;
        Set<String> declared = new HashSet<>();
        ArrayNode functions = Requests.functions(body, declared);
        Structured.ToolChoice choice = Structured.toolChoice(body, declared);
        boolean offered = choice.offered();
        List<ChatMessage> messages = Requests.messages(body, declared);
        boolean interpreter = messages.stream().anyMatch(m -> m.role().equals("system") && "interpreter".equals(m.name()) || "<|interpreter|>".equals(m.name()));
        ArrayNode offeredFunctions = offered ? functions : null;
        boolean tools = offered && (offeredFunctions != null && !offeredFunctions.isEmpty() || interpreter);
        int[] prompt;
        try {
            prompt = t.encode(messages, offeredFunctions, true);
        } catch (IllegalArgumentException e) {
            throw ApiException.invalid("messages", e.getMessage());
        }
        TokenConstraint forced = null;
        if (choice.forced()) {
            if (t.actionEndToken() < 0) {
                throw ApiException.invalid("tool_choice", "this model's vocabulary has no InternLM action tokens, so a tool call cannot be forced");
            }
            forced = Structured.forcedCall(functions, choice, engine.tokenizer());
        }
        Job job = job(body, prompt, ChatDefaults.maxTokens(thinking), tools, t, true, forced);
        String id = newId("chatcmpl-");
        long now = System.currentTimeMillis() / 1000;
        ChatOutput out = new ChatOutput(tools ? new ToolCallParser() : null, job, id, now, answerContext);
        generate(job, out, res, "chat");
    }

    private void completion(ObjectNode body, Response res) throws IOException, ClientGone {
        checkModel(body);
        refuseRewardModel();
        JsonNode p = Requests.field(body, "prompt");
        int[] prompt;
        if (p == null) {
            throw ApiException.invalid("prompt", "'prompt' is required: a string (or an array of token ids)");
        } else if (p.isTextual()) {
            prompt = template.encodeText(p.textValue());
        } else if (p.isArray() && p.size() == 1 && p.get(0).isTextual()) {
            prompt = template.encodeText(p.get(0).textValue());
        } else if (p.isArray() && !p.isEmpty() && p.get(0).isNumber()) {
            prompt = new int[p.size()];
            for (int i = 0; i < p.size(); i++) {
                JsonNode v = p.get(i);
                if (!v.isIntegralNumber() || v.longValue() < 0 || v.longValue() >= engine.config().vocabSize()) {
                    throw ApiException.invalid("prompt", "prompt[" + i + "] must be a token id in 0.." + (engine.config().vocabSize() - 1));
                }
                prompt[i] = v.intValue();
            }
        } else {
            throw ApiException.invalid("prompt", "'prompt' must be a string, an array with one string, or an array of token ids; got " + Requests.kind(p)
                    + (p.isArray() && p.size() > 1 ? " of several prompts (send one per request)" : ""));
        }
        if (prompt.length == 0) {
            throw ApiException.invalid("prompt", "'prompt' is empty");
        }
        if (Boolean.TRUE.equals(Requests.bool(body, "echo"))) {
            throw ApiException.invalid("echo", "'echo' is not supported");
        }
        if (Requests.field(body, "suffix") != null) {
            throw ApiException.invalid("suffix", "'suffix' (insertion) is not supported by InternLM models");
        }
        Long bestOf = Requests.integer(body, "best_of", 1, 128);
        if (bestOf != null && bestOf != 1) {
            throw ApiException.invalid("best_of", "only best_of = 1 is supported");
        }
        Job job = job(body, prompt, 16, false, template, false, null);
        TextOutput out = new TextOutput(job, newId("cmpl-"), System.currentTimeMillis() / 1000, answerContext);
        generate(job, out, res, "completion");
    }

    private void reward(ObjectNode body, Response res) throws IOException {
        checkModel(body);
        if (scorer == null) {
            throw ApiException.invalid("model", "'" + cfg.modelId() + "' has no reward head (v_head.weight); POST /v1/rewards needs an InternLM2-Reward model",
                    "not_a_reward_model");
        }
        List<ChatMessage> messages = Requests.messages(body, Set.of());
        int[] ids;
        try {
            ids = scorer.encode(messages);
        } catch (IllegalArgumentException e) {
            throw ApiException.invalid("messages", e.getMessage());
        }
        if (ids.length > cfg.context()) {
            throw ApiException.invalid("messages", "the conversation has " + ids.length + " tokens but the context holds " + cfg.context(), "context_length_exceeded");
        }
        double score;
        long t0 = System.nanoTime();
        try (SlotPool.Ticket ticket = pool.enter(); SlotPool.Lease lease = ticket.await(ids, () -> { })) {
            score = scorer.score(lease.session(), ids);
        }
        ObjectNode r = JsonNodeFactory.instance.objectNode();
        r.put("id", newId("rwd-"));
        r.put("object", "reward");
        r.put("created", System.currentTimeMillis() / 1000);
        r.put("model", cfg.modelId());
        r.put("score", score);
        ObjectNode usage = r.putObject("usage");
        usage.put("prompt_tokens", ids.length);
        usage.put("total_tokens", ids.length);
        writeJson(res, 200, r);
        completed.incrementAndGet();
        log.accept(String.format("reward: %d tokens, score %.4f, %.0f ms", ids.length, score, (System.nanoTime() - t0) / 1e6));
    }

    /** Runs a generation request: queue, session, generation, answer (streamed or whole). */
    private void generate(Job job, Output out, Response res, String kind) throws IOException, ClientGone {
        long t0 = System.nanoTime();
        GenerationResult r;
        try (SlotPool.Ticket ticket = pool.enter()) {
            if (job.stream()) {
                out.sse = new Sse(res);
                try {
                    out.sse.open();
                    out.startStream();
                } catch (IOException e) {
                    throw new ClientGone(e);
                }
            }
            SlotPool.KeepAlive keepAlive = job.stream() ? () -> out.sse.comment("waiting for a free session") : () -> { };
            try (SlotPool.Lease lease = ticket.await(job.prompt(), keepAlive)) {
                Scheduler.Running running = scheduler.submit(lease.session(), job.prompt(), job.params());
                // a client that goes away is noticed by a failing write, and the generation ends at the next step:
                // streaming, a comment after each second without data; a whole answer, from 3 s on, a space each
                // second ahead of the JSON (which JSON allows; the 200 status is then sent with the first one)
                long started = System.nanoTime();
                Scheduler.Idle idle = job.stream()
                        ? () -> {
                            if (out.sse.idleNanos() > 900_000_000L) {
                                out.sse.comment("generating");
                            }
                        }
                        : () -> {
                            if (System.nanoTime() - started > 3_000_000_000L) {
                                heartbeat(res);
                            }
                        };
                r = running.deliver(out, idle);
            } catch (IOException e) {
                throw new ClientGone(e);
            } catch (RuntimeException e) {
                if (out.sse == null && res.isCommitted()) {
                    // a whole answer after heartbeats: the status went out already, the error comes as the body
                    failed.incrementAndGet();
                    log.accept("error during generation: " + e);
                    try {
                        writeJson(res, 500, errorBody(500, "generation failed: " + e.getMessage(), "server_error", null, null));
                    } catch (IOException io) {
                        throw new ClientGone(io);
                    }
                    return;
                }
                if (out.sse == null) {
                    throw e;
                }
                failed.incrementAndGet();
                log.accept("error during generation: " + e);
                try {
                    out.sse.data(errorBody(500, "generation failed: " + e.getMessage(), "server_error", null, null).toString());
                    out.sse.done();
                } catch (IOException io) {
                    throw new ClientGone(io);
                }
                return;
            }
        }
        tokensOut.addAndGet(r.generated().length);
        if (r.finishReason().equals("cancelled") || out.failure != null) {
            log.accept(String.format("%s: client disconnected after %d tokens; generation stopped", kind, r.generated().length));
            throw new ClientGone(out.failure != null ? out.failure : new IOException("client disconnected"));
        }
        try {
            out.finish();
            if (job.stream()) {
                out.endStream(r);
            } else {
                writeJson(res, 200, out.whole(r));
            }
        } catch (IOException e) {
            throw new ClientGone(e);
        }
        completed.incrementAndGet();
        log.accept(String.format("%s: %d prompt + %d generated tokens, %s, %.0f ms%s", kind, r.prompt().length, r.generated().length,
                r.finishReason(), (System.nanoTime() - t0) / 1e6, job.stream() ? ", streamed" : ""));
    }
}
