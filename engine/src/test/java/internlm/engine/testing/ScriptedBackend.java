package internlm.engine.testing;

import internlm.engine.Engine;
import internlm.engine.model.Backend;
import internlm.engine.model.Batch;
import internlm.engine.tokenizer.Tokenizer;
import internlm.loader.LoadedModel;
import internlm.loader.Progress;
import internlm.loader.gguf.GgufModelLoader;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;

/**
 * A backend for tests that makes the model say what a script says: its logits put +10 on the token the script
 * chooses for the sequence so far and −10 everywhere else, so greedy (and almost any) sampling follows the script.
 * Used with a fixture model's vocabulary, it drives everything above the backend (sessions, chat, tool calls, the
 * server) deterministically. Optionally every forward pass waits for a gate, or sleeps.
 */
public final class ScriptedBackend implements Backend {
    /** The next token for a sequence (the first {@code length} entries of {@code tokens}). */
    @FunctionalInterface
    public interface Script {
        int next(int[] tokens, int length);
    }

    private final int vocab;
    private final int dim;
    private final Script script;
    private volatile CountDownLatch gate;
    private volatile long delayMillis;
    public final AtomicInteger forwards = new AtomicInteger();

    public ScriptedBackend(int vocab, int dim, Script script) {
        this.vocab = vocab;
        this.dim = dim;
        this.script = script;
    }

    /** An engine over a fixture model's vocabulary and configuration, with this kind of backend. */
    public static Engine engine(Path gguf, Function<Tokenizer, Script> script) {
        LoadedModel m = GgufModelLoader.load(gguf, Progress.NONE);
        Tokenizer tok = new Tokenizer(m.vocab());
        return Engine.create(m, new ScriptedBackend(m.config().vocabSize(), m.config().dim(), script.apply(tok)));
    }

    /**
     * A chat script: the reply is the text {@code reply.apply(prompt)} followed by {@code <|im_end|>}, where prompt
     * is the decoded sequence up to and including the last {@code <|im_start|>assistant\n}.
     */
    public static Function<Tokenizer, Script> chat(Function<String, String> reply) {
        return tok -> {
            int[] marker = tok.encode("<|im_start|>assistant\n", false, true);
            int imEnd = tok.tokenId("<|im_end|>");
            return (tokens, length) -> {
                int start = lastIndexOf(tokens, length, marker);
                int from = start < 0 ? length : start + marker.length;
                String prompt = tok.decode(Arrays.copyOf(tokens, from), true);
                int[] r = tok.encode(reply.apply(prompt), false, true);
                int done = length - from;
                return done < r.length ? r[done] : imEnd;
            };
        };
    }

    private static int lastIndexOf(int[] a, int length, int[] pat) {
        for (int i = length - pat.length; i >= 0; i--) {
            boolean ok = true;
            for (int j = 0; j < pat.length && ok; j++) {
                ok = a[i + j] == pat[j];
            }
            if (ok) {
                return i;
            }
        }
        return -1;
    }

    /** From now on every forward pass waits until {@link #release()} (or 30 s). */
    public void hold() {
        gate = new CountDownLatch(1);
    }

    public void release() {
        CountDownLatch g = gate;
        gate = null;
        if (g != null) {
            g.countDown();
        }
    }

    public void delay(long millis) {
        delayMillis = millis;
    }

    static final class Seq implements Backend.Sequence {
        final int[] tokens;

        Seq(int capacity) {
            tokens = new int[capacity];
        }

        @Override
        public int capacity() {
            return tokens.length;
        }

        @Override
        public void close() {
        }
    }

    @Override
    public String name() {
        return "scripted";
    }

    @Override
    public String description() {
        return "scripted test backend";
    }

    @Override
    public int vocabularySize() {
        return vocab;
    }

    @Override
    public int hiddenSize() {
        return dim;
    }

    @Override
    public Backend.Sequence openSequence(int capacity) {
        return new Seq(capacity);
    }

    /** Number of batches run (one per forward call). */
    public final AtomicInteger batches = new AtomicInteger();
    /** The largest number of rows one batch held. */
    public final AtomicInteger widestBatch = new AtomicInteger();

    @Override
    public void forward(Batch batch) {
        CountDownLatch g = gate;
        try {
            if (g != null && !g.await(30, TimeUnit.SECONDS)) {
                throw new IllegalStateException("test gate was never opened");
            }
            if (delayMillis > 0) {
                Thread.sleep(delayMillis);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
        batch.validate(vocab, dim);
        batches.incrementAndGet();
        widestBatch.accumulateAndGet(batch.size(), Math::max);
        java.util.Set<Backend.Sequence> seen = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
        for (int i = 0; i < batch.size(); i++) {
            Seq s = (Seq) batch.sequence(i);
            s.tokens[batch.position(i)] = batch.token(i);
            if (seen.add(s)) {
                forwards.incrementAndGet();
            }
        }
        for (int i = 0; i < batch.size(); i++) {
            Seq s = (Seq) batch.sequence(i);
            int len = batch.position(i) + 1;
            switch (batch.output(i)) {
                case NONE -> { }
                case LOGITS, ARGMAX -> {
                    int next = script.next(s.tokens, len);
                    if (batch.output(i) == Batch.Output.LOGITS) {
                        float[] logits = batch.destination(i);
                        Arrays.fill(logits, 0, vocab, -10f);
                        logits[next] = 10f;
                    }
                    batch.setArgmax(i, next);
                }
                case HIDDEN -> {
                    // a deterministic "hidden state": h[i] = (i + 1) · (last token + 1) / dim
                    float[] hidden = batch.destination(i);
                    int last = batch.token(i);
                    for (int j = 0; j < dim; j++) {
                        hidden[j] = (j + 1f) * (last + 1f) / dim;
                    }
                }
            }
        }
    }

    @Override
    public void close() {
    }
}
