package internlm.engine.generate;

import internlm.engine.grammar.GrammarMatcher;
import internlm.engine.model.Batch;
import internlm.engine.sampling.RowSampling;
import internlm.engine.sampling.Sampler;
import internlm.engine.sampling.SamplerConfig;
import internlm.engine.tokenizer.StreamDecoder;
import internlm.engine.tokenizer.Tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * One generation request as a sequence of steps, so that many of them can share a forward pass: each step,
 * {@link #addRows} puts this generation's next rows into a batch (a chunk of its prompt, or its one new token), the
 * batch runs, and {@link #afterForward} samples the next token from this generation's output row, streams its text
 * to the sink and checks the stop conditions. {@link Session#generate} runs one generation alone with exactly these
 * steps; the server's scheduler runs several at once.
 *
 * <p>Not thread-safe, except {@link #cancel()}: the steps of one generation run on one thread at a time.
 */
public final class Generation {
    private final Session session;
    private final int[] prompt;
    /** Prompt tokens found in the session's cache when the generation started. */
    private final int cachedTokens;
    private final GenerationParams params;
    private final TokenSink sink;
    private final Sampler sampler;
    /** This sequence's place in its grammar (null: unconstrained); its mask is applied to this sequence's row only. */
    private final GrammarMatcher matcher;
    /** Plain greedy decoding needs no logits on the host: the backend returns the argmax (one int from a GPU). */
    private final boolean argmaxOnly;
    /**
     * The backend samples where the logits are (one int from a GPU) with this generation's sampler settings and the
     * uniform draws of its sampler: when it offers to and nothing needs the logits here (no grammar mask, no logprobs).
     */
    private final boolean sampleOnBackend;
    private final Tokenizer tok;
    private final StreamDecoder decoder;
    private final StopStrings stops;
    private final StringBuilder text = new StringBuilder();
    private final List<Integer> out = new ArrayList<>();
    private final List<GenerationResult.Step> steps = new ArrayList<>();
    private volatile boolean cancelRequested;
    private boolean done;
    private String finish = "length";
    private int outputRow = -1;
    private boolean inBatch;
    private long started = -1, firstToken = -1, ended = -1;
    private Throwable failure;

    Generation(Session session, int[] prompt, GenerationParams params, TokenSink sink) {
        this.session = session;
        this.prompt = prompt.clone();
        this.params = params;
        this.sink = sink;
        this.sampler = new Sampler(params.sampler());
        SamplerConfig sc = params.sampler();
        this.matcher = params.constraint() == null ? null : params.constraint().matcher(session.stopTokens());
        this.argmaxOnly = matcher == null && sc.greedy() && params.topLogits() == 0 && sc.repeatPenalty() == 1f
                && sc.frequencyPenalty() == 0f && sc.presencePenalty() == 0f;
        this.sampleOnBackend = !argmaxOnly && matcher == null && params.topLogits() == 0 && session.backend().samplesOnDevice();
        this.tok = session.tokenizer();
        this.decoder = tok.streamDecoder(params.renderSpecial());
        this.stops = new StopStrings(params.stopStrings());
        this.cachedTokens = session.setSequence(prompt);
    }

    public Session session() {
        return session;
    }

    /** True once the generation has ended (finished, cancelled or failed). */
    public boolean done() {
        return done;
    }

    /** Asks the generation to stop; it ends (finish reason "cancelled") at its next step. Any thread may call it. */
    public void cancel() {
        cancelRequested = true;
    }

    /** Rows this generation would like to run now: what is left of its prompt, or its one new token; 0 when done. */
    public int rowsWanted() {
        return done ? 0 : session.pending();
    }

    /** Whether the generation is still evaluating its prompt (no token generated yet). */
    public boolean inPrompt() {
        return !done && firstToken < 0;
    }

    /**
     * Adds up to {@code budget} of this generation's rows to the batch; returns how many. A cancelled generation ends
     * here and adds none.
     */
    public int addRows(Batch batch, int budget) {
        if (done || budget <= 0) {
            return 0;
        }
        if (cancelRequested) {
            end("cancelled");
            return 0;
        }
        if (started < 0) {
            started = System.nanoTime();
        }
        int before = batch.size();
        if (sampleOnBackend) {
            // the draw is made only for a step whose last row is the output row (one draw per sampled token, as on the host)
            RowSampling how = session.pending() > 0 && session.pending() <= budget
                    ? RowSampling.of(sampler.config(), sampler.config().greedy() ? 0 : sampler.nextUniform(), session.tokenArray(), session.length())
                    : null;
            outputRow = session.addPending(batch, budget, Batch.Output.SAMPLE, null, how);
        } else {
            outputRow = session.addPending(batch, budget, argmaxOnly ? Batch.Output.ARGMAX : Batch.Output.LOGITS, session.logits);
        }
        inBatch = batch.size() > before;
        return batch.size() - before;
    }

    /** The batch failed: what it held of this generation is forgotten and the generation ends with the error. */
    public void failed(Throwable t) {
        if (inBatch) {
            session.abort();
            inBatch = false;
        }
        failure = t;
        if (!done) {
            done = true;
            finish = "error";
            ended = System.nanoTime();
        }
    }

    /** The error that ended this generation, or null. */
    public Throwable failure() {
        return failure;
    }

    /** After the batch holding this generation's rows ran: takes the next token when the evaluation is complete. */
    public void afterForward(Batch batch) {
        if (!inBatch) {
            return;
        }
        inBatch = false;
        session.confirm();
        if (outputRow < 0) {
            return; // a prompt chunk; the rest comes in the next steps
        }
        if (firstToken < 0) {
            firstToken = System.nanoTime();
        }
        if (out.size() >= params.maxTokens()) {
            end("length");
            return;
        }
        float[] l = session.logits;
        int next;
        if (argmaxOnly) {
            next = batch.argmax(outputRow);
        } else if (sampleOnBackend) {
            next = batch.sampled(outputRow);
        } else {
            if (matcher != null) {
                long[] allowed = matcher.allowed();
                if (!any(allowed)) {
                    failure = new IllegalStateException("the output constraint (" + params.constraint()
                            + ") allows no token of this vocabulary here");
                    end("error");
                    return;
                }
                l = Sampler.mask(l, allowed);
            }
            List<GenerationResult.TopLogit> top = params.topLogits() > 0 ? topLogits(l, params.topLogits(), tok) : null;
            next = sampler.sample(l, session.tokenArray(), session.length());
            if (matcher != null) {
                matcher.accept(next);
            }
            if (top != null) {
                GenerationResult.Step step = new GenerationResult.Step(next, top, l[next], logSumExp(l));
                steps.add(step);
                sink.step(step);
            }
        }
        take(next);
    }

    /** Emits a sampled token and decides whether to go on. */
    private void take(int next) {
        out.add(next);
        // under a constraint an end token is only allowed once the output is complete, and then it ends it
        boolean eog = session.isStop(next) && (!params.ignoreEos() || matcher != null);
        String decoded;
        if (eog) {
            decoded = "";
        } else if (!params.renderSpecial() && params.rendersToken(next)) {
            // a control token kept as text: it ends any unfinished UTF-8 sequence before it
            decoded = decoder.flush() + new String(tok.pieceBytes(next, true), StandardCharsets.UTF_8);
        } else {
            decoded = decoder.accept(next);
        }
        String piece = eog ? "" : stops.push(decoded);
        text.append(piece);
        boolean more = sink.accept(next, piece);
        if (eog || stops.stopped() || (params.stopsAfter(next) && !params.ignoreEos())) {
            session.appendUnevaluated(next);
            end("stop");
        } else if (!more || cancelRequested) {
            session.appendUnevaluated(next);
            end("cancelled");
        } else if (out.size() == params.maxTokens() || session.length() + 1 >= session.capacity()) {
            session.appendUnevaluated(next);
            end("length");
        } else {
            session.push(next);
        }
    }

    private void end(String reason) {
        finish = reason;
        done = true;
        ended = System.nanoTime();
        if (!stops.stopped() && !reason.equals("cancelled")) {
            String tail = stops.push(decoder.flush()) + stops.flush();
            if (!tail.isEmpty()) {
                text.append(tail);
                sink.accept(-1, tail);
            }
        }
    }

    /** The outcome (once {@link #done()}). */
    public GenerationResult result() {
        if (!done) {
            throw new IllegalStateException("the generation has not ended");
        }
        long t0 = started < 0 ? ended : started, t1 = firstToken < 0 ? ended : firstToken;
        return new GenerationResult(prompt.clone(), cachedTokens, out.stream().mapToInt(Integer::intValue).toArray(), text.toString(),
                steps, finish, (t1 - t0) / 1e6, (ended - t1) / 1e6);
    }

    private static boolean any(long[] bits) {
        for (long w : bits) {
            if (w != 0) {
                return true;
            }
        }
        return false;
    }

    /** log Σ exp(l[i]), computed stably. */
    static double logSumExp(float[] l) {
        float max = Float.NEGATIVE_INFINITY;
        for (float v : l) {
            max = Math.max(max, v);
        }
        double sum = 0;
        for (float v : l) {
            sum += Math.exp(v - max);
        }
        return max + Math.log(sum);
    }

    private static List<GenerationResult.TopLogit> topLogits(float[] l, int k, Tokenizer tok) {
        int[] ids = Sampler.topIndices(l, k);
        List<GenerationResult.TopLogit> r = new ArrayList<>(ids.length);
        for (int id : ids) {
            if (l[id] != Float.NEGATIVE_INFINITY) { // tokens a constraint masked out are not candidates
                r.add(new GenerationResult.TopLogit(id, tok.piece(id), l[id]));
            }
        }
        return r;
    }
}
