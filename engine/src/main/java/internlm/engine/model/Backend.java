package internlm.engine.model;

/**
 * Runs the transformer. A backend holds the weights (prepared once); each sequence being decoded has its own
 * {@link State} (KV cache and scratch space), so several sessions can share one backend.
 */
public interface Backend extends AutoCloseable {

    /** Per-sequence state: the KV cache and work buffers. */
    interface State extends AutoCloseable {
        /** Positions this state can hold. */
        int capacity();

        @Override
        void close();
    }

    /** A short name, e.g. "cpu" or "tornado". */
    String name();

    /** What runs where, for the user (e.g. "CPU, 2 threads, Vector API 512-bit"). */
    String description();

    /** A new state able to hold {@code capacity} positions (tokens). */
    State newState(int capacity);

    /**
     * Runs {@code n} tokens at positions {@code pos .. pos+n-1} (their keys and values go into the state's cache,
     * attending to everything before them) and writes the logits of the last one into {@code logits} (when not null).
     *
     * @param ropeBase the RoPE base to use for these positions (the model's theta, or a rescaled one)
     */
    void forward(State state, int[] tokens, int n, int pos, double ropeBase, float[] logits);

    /**
     * Like {@link #forward}, but instead of logits writes the hidden state of the last token after the final
     * RMSNorm (the LM head's input, {@code dim} floats) into {@code hiddenOut}. Reward models (InternLM2-Reward)
     * apply their scalar head {@code v_head} to it.
     */
    void forwardHidden(State state, int[] tokens, int n, int pos, double ropeBase, float[] hiddenOut);

    /**
     * Runs one token and returns the id of its largest logit (greedy decoding). Backends that can compute the argmax
     * where the logits are (a GPU) override this to avoid copying the logits back.
     */
    default int forwardArgmax(State state, int token, int pos, double ropeBase) {
        float[] logits = new float[vocabularySize()];
        forward(state, new int[] {token}, 1, pos, ropeBase, logits);
        int best = 0;
        for (int i = 1; i < logits.length; i++) {
            if (logits[i] > logits[best]) {
                best = i;
            }
        }
        return best;
    }

    /** Number of logits a forward pass produces. */
    int vocabularySize();

    /** How many states (sequences) can be open at once. */
    default int maxSequences() {
        return Integer.MAX_VALUE;
    }

    /** Anything worth reporting after a run (e.g. a profile), or "". */
    default String report() {
        return "";
    }

    @Override
    void close();
}
