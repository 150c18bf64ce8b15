package internlm.engine.generate;

import internlm.engine.model.Backend;
import internlm.engine.model.Batch;
import internlm.engine.model.Rope;
import internlm.engine.sampling.RowSampling;
import internlm.engine.tokenizer.Tokenizer;
import internlm.loader.ModelConfig;

import java.util.Arrays;

/**
 * One sequence: its tokens and the backend sequence (KV cache) holding them. A session keeps its cache between
 * calls, so a chat appends turns and only new tokens are evaluated — as long as what is cached is exactly what a fresh
 * evaluation would compute (see {@link #setSequence}). Generation runs through {@link Generation}, alone
 * ({@link #generate}) or next to other sessions in one batch (the server's scheduler).
 *
 * <p>RoPE base: an evaluation that brings the sequence to L tokens uses {@link Rope#base}(L) for every position it
 * evaluates (HF's semantics: a prompt uses the base of its length, each decoded token the base of the length it
 * reaches), whatever the chunking of the prompt into batches.
 */
public final class Session implements AutoCloseable {
    private final Backend backend;
    private final ModelConfig config;
    private final Tokenizer tokenizer;
    private final int[] stopTokens;
    private final Backend.Sequence sequence;
    private final int capacity;
    private final int[] tokens;
    /** RoPE base each evaluated position was rotated with. */
    private final double[] bases;
    private int length;     // tokens in the sequence
    private int evaluated;  // tokens whose keys/values are in the cache
    private double pendingBase;
    final float[] logits;
    private float[] hidden;

    /**
     * A session over {@code backend} holding up to {@code contextTokens} tokens; {@code stopTokens} end generation.
     *
     * @throws IllegalStateException when the backend has no free sequence slot
     */
    public Session(Backend backend, ModelConfig config, Tokenizer tokenizer, int[] stopTokens, int contextTokens) {
        if (contextTokens <= 0) {
            throw new IllegalArgumentException("context size must be positive, got " + contextTokens);
        }
        this.backend = backend;
        this.config = config;
        this.tokenizer = tokenizer;
        this.stopTokens = stopTokens.clone();
        this.capacity = contextTokens;
        this.sequence = backend.openSequence(contextTokens);
        this.tokens = new int[contextTokens];
        this.bases = new double[contextTokens];
        this.logits = new float[config.vocabSize()];
    }

    public int capacity() {
        return capacity;
    }

    public int length() {
        return length;
    }

    public int[] tokens() {
        return Arrays.copyOf(tokens, length);
    }

    /** The token array itself (the first {@link #length()} entries are the sequence), for the sampler's penalties. */
    int[] tokenArray() {
        return tokens;
    }

    Backend backend() {
        return backend;
    }

    Backend.Sequence sequence() {
        return sequence;
    }

    Tokenizer tokenizer() {
        return tokenizer;
    }

    int[] stopTokens() {
        return stopTokens.clone();
    }

    boolean isStop(int token) {
        for (int s : stopTokens) {
            if (s == token) {
                return true;
            }
        }
        return false;
    }

    /** The RoPE base for a sequence of {@code length} tokens (see {@link Rope#base}). */
    public static double ropeBase(ModelConfig c, int length) {
        return Rope.base(c, length);
    }

    /**
     * How many leading tokens of {@code ids} the cache already holds exactly as a fresh evaluation of {@code ids}
     * would compute them: same tokens, rotated with the same RoPE base (always, within the trained window; past it the
     * base depends on the length, and positions cached with another base are evaluated again).
     */
    public int reusablePrefix(int[] ids) {
        double base = Rope.base(config, ids.length);
        int limit = Math.min(evaluated, ids.length - 1); // always evaluate at least the last token to get its output
        int common = 0;
        while (common < limit && tokens[common] == ids[common] && bases[common] == base) {
            common++;
        }
        return common;
    }

    /**
     * Makes the sequence equal to {@code ids}, keeping the reusable prefix evaluated; the rest is pending. Returns the
     * length of that prefix (the tokens found in the cache).
     */
    int setSequence(int[] ids) {
        if (ids.length == 0) {
            throw new IllegalArgumentException("the prompt is empty");
        }
        if (ids.length > capacity) {
            throw new ContextOverflowException(ids.length, capacity, config.contextLength());
        }
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] < 0 || ids[i] >= config.vocabSize()) {
                throw new IllegalArgumentException("token id " + ids[i] + " is outside the vocabulary (0.." + (config.vocabSize() - 1) + ")");
            }
        }
        int common = reusablePrefix(ids);
        System.arraycopy(ids, common, tokens, common, ids.length - common);
        length = ids.length;
        evaluated = common;
        pendingBase = Rope.base(config, length);
        return common;
    }

    /** Appends a token to be evaluated next (a decode step). */
    void push(int token) {
        if (length >= capacity) {
            throw new ContextOverflowException(length + 1, capacity, config.contextLength());
        }
        tokens[length++] = token;
        pendingBase = Rope.base(config, length);
    }

    /** Tokens appended but not evaluated yet. */
    int pending() {
        return length - evaluated;
    }

    /**
     * Adds up to {@code max} pending rows to the batch, in order (one batch at a time may hold a session's rows);
     * the row of the last token asks for {@code out} (into {@code dest}), the others for nothing. Returns that last
     * row's index, or −1 when the chunk ended before it.
     */
    int addPending(Batch batch, int max, Batch.Output out, float[] dest) {
        return addPending(batch, max, out, dest, null);
    }

    /** As {@link #addPending(Batch, int, Batch.Output, float[])}; a {@link Batch.Output#SAMPLE} last row is sampled with {@code how}. */
    int addPending(Batch batch, int max, Batch.Output out, float[] dest, RowSampling how) {
        if (inFlight != 0) {
            throw new IllegalStateException("this session's previous rows were neither confirmed nor aborted");
        }
        int n = Math.min(max, pending());
        int lastRow = -1;
        for (int pos = evaluated; pos < evaluated + n; pos++) {
            boolean last = pos == length - 1;
            int row = last && out == Batch.Output.SAMPLE ? batch.addSample(sequence, pos, tokens[pos], pendingBase, how)
                    : batch.add(sequence, pos, tokens[pos], pendingBase, last ? out : Batch.Output.NONE, last ? dest : null);
            if (last) {
                lastRow = row;
            }
        }
        inFlight = n;
        return lastRow;
    }

    private int inFlight;

    /** The rows added by {@link #addPending} have run: they are evaluated now. */
    void confirm() {
        for (int p = evaluated; p < evaluated + inFlight; p++) {
            bases[p] = pendingBase;
        }
        evaluated += inFlight;
        inFlight = 0;
    }

    /** The batch with the rows added since the last confirmation failed: forget what was not confirmed. */
    void abort() {
        inFlight = 0;
        length = evaluated;
    }

    /** Appends a token without evaluating it (generation ended; a later call evaluates it if it is reused). */
    void appendUnevaluated(int token) {
        if (length < capacity) {
            tokens[length++] = token;
        }
    }

    // ------------------------------------------------------------------ one-sequence calls

    /** Evaluates everything pending in batches of this session alone, the last row asking for {@code out}. */
    private Batch evaluate(Batch.Output out, float[] dest) {
        Batch b = new Batch(Math.max(1, pending()));
        addPending(b, pending(), out, dest);
        try {
            backend.forward(b);
        } catch (RuntimeException | Error e) {
            abort();
            throw e;
        }
        confirm();
        return b;
    }

    /**
     * Makes the sequence equal to {@code ids} (reusing the longest reusable prefix) and evaluates it.
     * Returns the logits after the last token (a view, valid until the next call).
     */
    public float[] prefill(int[] ids) {
        setSequence(ids);
        evaluate(Batch.Output.LOGITS, logits);
        return logits;
    }

    /**
     * Like {@link #prefill}, but returns the last token's hidden state after the final RMSNorm ({@code dim}
     * floats, a view valid until the next call) instead of logits: what a reward head scores.
     */
    public float[] prefillHidden(int[] ids) {
        setSequence(ids);
        if (hidden == null) {
            hidden = new float[backend.hiddenSize()];
        }
        evaluate(Batch.Output.HIDDEN, hidden);
        return hidden;
    }

    /** As {@link #prefill} but returns only the id of the largest logit (no logits leave a GPU). */
    public int prefillArgmax(int[] ids) {
        setSequence(ids);
        Batch b = evaluate(Batch.Output.ARGMAX, null);
        return b.argmax(b.size() - 1);
    }

    /** Appends one token and evaluates it; returns the logits after it. */
    public float[] append(int token) {
        push(token);
        evaluate(Batch.Output.LOGITS, logits);
        return logits;
    }

    /** Appends one token, evaluates it and returns the id of the largest resulting logit. */
    public int appendArgmax(int token) {
        push(token);
        Batch b = evaluate(Batch.Output.ARGMAX, null);
        return b.argmax(b.size() - 1);
    }

    /** Forgets everything (the cache is overwritten as new tokens come). */
    public void reset() {
        length = 0;
        evaluated = 0;
        inFlight = 0;
    }

    /**
     * Starts a generation: the prompt becomes the sequence (reusing what the cache holds) and the returned
     * {@link Generation} produces the rows of each step. Run it alone with {@link #generate}, or next to others.
     */
    public Generation start(int[] prompt, GenerationParams params, TokenSink sink) {
        return new Generation(this, prompt, params, sink);
    }

    /**
     * Evaluates the prompt and generates up to {@code params.maxTokens()} tokens, streaming text to the sink.
     */
    public GenerationResult generate(int[] prompt, GenerationParams params, TokenSink sink) {
        Generation g = start(prompt, params, sink);
        Batch b = new Batch();
        while (!g.done()) {
            b.clear();
            g.addRows(b, Integer.MAX_VALUE);
            try {
                backend.forward(b);
            } catch (RuntimeException | Error e) {
                g.failed(e);
                throw e;
            }
            g.afterForward(b);
        }
        return g.result();
    }

    @Override
    public void close() {
        sequence.close();
    }
}
