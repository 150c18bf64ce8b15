package internlm.engine.model;

/**
 * Runs the transformer. A backend holds the weights (prepared once) and the KV caches of the sequences open on it
 * ({@link #openSequence}); one {@link #forward(Batch)} call runs rows of any of them together — prompt chunks and
 * decode tokens mixed — so each weight is read once per batch, not once per token.
 */
public interface Backend extends AutoCloseable {

    /** A sequence's place in the backend: its KV cache (a slot). Closing it gives the slot back. */
    interface Sequence extends AutoCloseable {
        /** Positions this sequence can hold. */
        int capacity();

        @Override
        void close();
    }

    /** A short name, e.g. "cpu" or "tornado". */
    String name();

    /** What runs where, for the user (e.g. "CPU, 2 threads, Vector API 512-bit"). */
    String description();

    /** Number of logits a forward pass produces per row. */
    int vocabularySize();

    /** Width of the hidden state ({@link Batch.Output#HIDDEN} rows). */
    int hiddenSize();

    /**
     * Opens a sequence able to hold {@code capacity} positions (tokens).
     *
     * @throws IllegalStateException when all {@link #maxSequences()} slots are taken
     * @throws IllegalArgumentException when the capacity exceeds what a slot holds
     */
    Sequence openSequence(int capacity);

    /** How many sequences can be open at once. */
    default int maxSequences() {
        return Integer.MAX_VALUE;
    }

    /** Runs every row of the batch (see {@link Batch} for the rules) and fills the outputs the rows ask for. */
    void forward(Batch batch);

    /**
     * Whether this backend samples {@link Batch.Output#SAMPLE} rows where the logits are, so that asking for them
     * beats copying the logits back (a GPU: one int per sampled token). A backend that says no may still accept SAMPLE
     * rows, sampling them on the host; generation then asks for the logits instead.
     */
    default boolean samplesOnDevice() {
        return false;
    }

    /** Anything worth reporting after a run (e.g. a profile), or "". */
    default String report() {
        return "";
    }

    /**
     * Convenience for one sequence: runs {@code n} tokens at positions {@code pos .. pos+n-1} with one RoPE base and
     * writes the logits of the last one into {@code logits} (when not null).
     */
    default void forward(Sequence seq, int[] tokens, int n, int pos, double ropeBase, float[] logits) {
        run(seq, tokens, n, pos, ropeBase, logits == null ? Batch.Output.NONE : Batch.Output.LOGITS, logits);
    }

    /** As {@link #forward(Sequence, int[], int, int, double, float[])} but writes the last token's final hidden state. */
    default void forwardHidden(Sequence seq, int[] tokens, int n, int pos, double ropeBase, float[] hiddenOut) {
        run(seq, tokens, n, pos, ropeBase, Batch.Output.HIDDEN, hiddenOut);
    }

    /** Runs one token and returns the id of its largest logit. */
    default int forwardArgmax(Sequence seq, int token, int pos, double ropeBase) {
        Batch b = new Batch(1);
        b.add(seq, pos, token, ropeBase, Batch.Output.ARGMAX, null);
        forward(b);
        return b.argmax(0);
    }

    private void run(Sequence seq, int[] tokens, int n, int pos, double ropeBase, Batch.Output last, float[] dest) {
        if (n <= 0) {
            return;
        }
        Batch b = new Batch(n);
        for (int i = 0; i < n; i++) {
            b.add(seq, pos + i, tokens[i], ropeBase, i == n - 1 ? last : Batch.Output.NONE, i == n - 1 ? dest : null);
        }
        forward(b);
    }

    @Override
    void close();
}
