package internlm.engine.generate;

import internlm.engine.Engine;
import internlm.engine.model.Backend;
import internlm.engine.sampling.Sampler;
import internlm.engine.tokenizer.StreamDecoder;
import internlm.engine.tokenizer.Tokenizer;
import internlm.loader.ModelConfig;
import internlm.loader.ModelConfig.RopeScaling;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * One sequence being generated: its tokens, the backend state (KV cache) holding them, and the decode loop.
 * A session keeps its cache between calls, so a chat appends turns and only new tokens are evaluated.
 */
public final class Session implements AutoCloseable {
    private final Engine engine;
    private final Backend backend;
    private final Backend.State state;
    private final ModelConfig config;
    private final int capacity;
    private final int[] tokens;
    private int length;     // tokens in the sequence
    private int evaluated;  // tokens whose keys/values are in the cache
    private final float[] logits;
    private float[] hidden;

    public Session(Engine engine, int contextTokens) {
        if (contextTokens <= 0) {
            throw new IllegalArgumentException("context size must be positive, got " + contextTokens);
        }
        if (contextTokens > engine.maxContext()) {
            throw new IllegalArgumentException("context of " + contextTokens + " tokens exceeds the model's trained window of "
                    + engine.config().contextLength() + " tokens (and the model has no dynamic RoPE scaling to go further)");
        }
        this.engine = engine;
        this.backend = engine.backend();
        this.config = engine.config();
        this.capacity = contextTokens;
        this.state = backend.newState(contextTokens);
        this.tokens = new int[contextTokens];
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

    /**
     * The RoPE base for a sequence of {@code length} tokens: the model's theta, rescaled by dynamic NTK once the
     * sequence is longer than the trained window (HF semantics: base·(f·L/M − (f−1))^(d/(d−2)), applied to the
     * positions evaluated at that length; keys already cached keep the rotation they were stored with).
     */
    public static double ropeBase(ModelConfig c, int length) {
        RopeScaling s = c.ropeScaling();
        if (s.type() != RopeScaling.Type.DYNAMIC || length <= c.contextLength()) {
            return c.ropeTheta();
        }
        double d = c.headDim();
        double alpha = s.factor() * length / c.contextLength() - (s.factor() - 1);
        return c.ropeTheta() * Math.pow(alpha, d / (d - 2));
    }

    /**
     * Makes the sequence equal to {@code ids} (reusing the longest prefix already evaluated) and evaluates it.
     * Returns the logits after the last token (a view, valid until the next call).
     */
    public float[] prefill(int[] ids) {
        setSequence(ids);
        evaluatePending(false);
        return logits;
    }

    /**
     * Like {@link #prefill}, but returns the last token's hidden state after the final RMSNorm ({@code dim}
     * floats, a view valid until the next call) instead of logits: what a reward head scores.
     */
    public float[] prefillHidden(int[] ids) {
        setSequence(ids);
        if (hidden == null) {
            hidden = new float[config.dim()];
        }
        evaluatePending(true);
        return hidden;

    }

    /** As {@link #prefill} but returns only the id of the largest logit (no logits leave a GPU). */
    public int prefillArgmax(int[] ids) {
        setSequence(ids);
        return evaluatePendingArgmax();
    }

    private void setSequence(int[] ids) {
        if (ids.length == 0) {
            throw new IllegalArgumentException("the prompt is empty");
        }
        if (ids.length > capacity) {
            throw new ContextOverflowException(ids.length, capacity, config.contextLength());
        }
        int common = 0;
        int limit = Math.min(evaluated, ids.length - 1); // always evaluate at least the last token to get its output
        while (common < limit && tokens[common] == ids[common]) {
            common++;
        }
        System.arraycopy(ids, common, tokens, common, ids.length - common);
        length = ids.length;
        evaluated = common;
    }

    /** Appends one token and evaluates it; returns the logits after it. */
    public float[] append(int token) {
        if (length >= capacity) {
            throw new ContextOverflowException(length + 1, capacity, config.contextLength());
        }
        tokens[length++] = token;
        evaluatePending(false);
        return logits;
    }

    /** Appends one token, evaluates it and returns the id of the largest resulting logit. */
    public int appendArgmax(int token) {
        if (length >= capacity) {
            throw new ContextOverflowException(length + 1, capacity, config.contextLength());
        }
        tokens[length++] = token;
        return evaluatePendingArgmax();
    }

    private int evaluatePendingArgmax() {
        int n = length - evaluated;
        double base = ropeBase(config, length);
        if (n > 1) {
            int[] batch = Arrays.copyOfRange(tokens, evaluated, length - 1);
            backend.forward(state, batch, n - 1, evaluated, base, null);
        }
        int next = backend.forwardArgmax(state, tokens[length - 1], length - 1, base);
        evaluated = length;
        return next;
    }

    private void evaluatePending(boolean toHidden) {
        int n = length - evaluated;
        if (n <= 0) {
            return;
        }
        int[] batch = Arrays.copyOfRange(tokens, evaluated, length);
        try {
            if (toHidden) {
                backend.forwardHidden(state, batch, n, evaluated, ropeBase(config, length), hidden);
            } else {
                backend.forward(state, batch, n, evaluated, ropeBase(config, length), logits);
            }
        } catch (RuntimeException | Error e) {
            // the cache may hold part of the batch: forget what was not confirmed so the next call redoes it
            length = evaluated;
            throw e;
        }
        evaluated = length;
    }

    /** Forgets everything (the cache is overwritten as new tokens come). */
    public void reset() {
        length = 0;
        evaluated = 0;
    }

    /**
     * Evaluates the prompt and generates up to {@code params.maxTokens()} tokens, streaming text to the sink.
     */
    public GenerationResult generate(int[] prompt, GenerationParams params, TokenSink sink) {
        Tokenizer tok = engine.tokenizer();
        Sampler sampler = new Sampler(params.sampler());
        var sc = params.sampler();
        // plain greedy decoding needs no logits on the host: the backend returns the argmax (one int from a GPU)
        boolean argmaxOnly = sc.greedy() && params.topLogits() == 0 && sc.repeatPenalty() == 1f
                && sc.frequencyPenalty() == 0f && sc.presencePenalty() == 0f;
        long t0 = System.nanoTime();
        float[] l = null;
        int next = -1;
        if (argmaxOnly) {
            next = prefillArgmax(prompt);
        } else {
            l = prefill(prompt);
        }
        long t1 = System.nanoTime();
        List<Integer> out = new ArrayList<>();
        List<GenerationResult.Step> steps = new ArrayList<>();
        StreamDecoder decoder = tok.streamDecoder(params.renderSpecial());
        StopStrings stops = new StopStrings(params.stopStrings());
        StringBuilder text = new StringBuilder();
        String finish = "length";
        for (int i = 0; i < params.maxTokens(); i++) {
            if (!argmaxOnly) {
                List<GenerationResult.TopLogit> top = params.topLogits() > 0 ? topLogits(l, params.topLogits(), tok) : null;
                next = sampler.sample(l, tokens, length);
                if (top != null) {
                    GenerationResult.Step step = new GenerationResult.Step(next, top, l[next], logSumExp(l));
                    steps.add(step);
                    sink.step(step);
                }
            }
            out.add(next);
            boolean eog = engine.isStop(next) && !params.ignoreEos();
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
                finish = "stop";
                appendUnevaluated(next);
                break;
            }
            if (!more) {
                finish = "cancelled";
                appendUnevaluated(next);
                break;
            }
            if (i + 1 == params.maxTokens() || length + 1 >= capacity) {
                appendUnevaluated(next);
                finish = "length";
                break;
            }
            if (argmaxOnly) {
                next = appendArgmax(next);
            } else {
                l = append(next);
            }
        }
        if (!stops.stopped() && !finish.equals("cancelled")) {
            String tail = stops.push(decoder.flush()) + stops.flush();
            if (!tail.isEmpty()) {
                text.append(tail);
                sink.accept(-1, tail);
            }
        }
        long t2 = System.nanoTime();
        return new GenerationResult(prompt.clone(), out.stream().mapToInt(Integer::intValue).toArray(), text.toString(),
                steps, finish, (t1 - t0) / 1e6, (t2 - t1) / 1e6);
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

    /** Adds a sampled token to the sequence without evaluating it (generation ended). */
    private void appendUnevaluated(int token) {
        if (length < capacity) {
            tokens[length++] = token;
        }
    }

    private static List<GenerationResult.TopLogit> topLogits(float[] l, int k, Tokenizer tok) {
        int[] ids = Sampler.topIndices(l, k);
        List<GenerationResult.TopLogit> r = new ArrayList<>(ids.length);
        for (int id : ids) {
            r.add(new GenerationResult.TopLogit(id, tok.piece(id), l[id]));
        }
        return r;
    }

    @Override
    public void close() {
        state.close();
    }
}
