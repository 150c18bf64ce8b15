package internlm.engine.model;

import internlm.engine.sampling.RowSampling;

import java.util.IdentityHashMap;
import java.util.Map;

/**
 * The unit of work of a backend: rows, each one token of one sequence at one position, for one forward pass. Rows of
 * several sequences mix freely — a prompt chunk of one sequence next to single decode tokens of others. Every row
 * writes its key and value into its sequence's cache and attends causally to its sequence's cache up to and including
 * its own position (so a chunk's rows see the rows before them in the same chunk). A row carries its own RoPE base
 * (the model's theta or a dynamic-NTK rescaled one) and says what it wants back: nothing, its logits, only the id of
 * its largest logit (a GPU then copies one int back), a token sampled from its logits where they are (with the
 * row's {@link RowSampling}: a GPU samples on the device and copies one int back), or its final hidden state (the LM
 * head's input, for reward heads).
 *
 * <p>Rules: the rows of one sequence appear in increasing, consecutive positions, and the positions before a sequence's
 * first row in the batch must have been evaluated by earlier batches. A batch is reusable: {@link #clear()} empties
 * it, keeping its arrays.
 */
public final class Batch {
    /** What a row asks for. */
    public enum Output { NONE, LOGITS, ARGMAX, HIDDEN, SAMPLE }

    private int size;
    private Backend.Sequence[] sequence;
    private int[] position;
    private int[] token;
    private double[] ropeBase;
    private Output[] output;
    private float[][] destination;
    private int[] argmax;
    private RowSampling[] sampling;
    private int[] sampled;

    public Batch() {
        this(16);
    }

    public Batch(int initialCapacity) {
        int n = Math.max(1, initialCapacity);
        sequence = new Backend.Sequence[n];
        position = new int[n];
        token = new int[n];
        ropeBase = new double[n];
        output = new Output[n];
        destination = new float[n][];
        argmax = new int[n];
        sampling = new RowSampling[n];
        sampled = new int[n];
    }

    /** Removes every row. */
    public void clear() {
        java.util.Arrays.fill(sequence, 0, size, null);
        java.util.Arrays.fill(destination, 0, size, null);
        java.util.Arrays.fill(sampling, 0, size, null);
        size = 0;
    }

    /** A row without output (a prompt token whose logits nobody needs). Returns its index. */
    public int add(Backend.Sequence seq, int pos, int tok, double base) {
        return add(seq, pos, tok, base, Output.NONE, null);
    }

    /**
     * Adds a row and returns its index. {@code dest} receives the logits ({@link Output#LOGITS}, vocabulary-sized) or
     * the hidden state ({@link Output#HIDDEN}, at least the model's dim); it is ignored for the other outputs.
     */
    public int add(Backend.Sequence seq, int pos, int tok, double base, Output out, float[] dest) {
        if (seq == null || out == null) {
            throw new IllegalArgumentException("a row needs a sequence and an output kind");
        }
        if ((out == Output.LOGITS || out == Output.HIDDEN) && dest == null) {
            throw new IllegalArgumentException("a row asking for " + out + " needs a buffer to write them to");
        }
        if (size == position.length) {
            grow();
        }
        int i = size++;
        sequence[i] = seq;
        position[i] = pos;
        token[i] = tok;
        ropeBase[i] = base;
        output[i] = out;
        destination[i] = out == Output.LOGITS || out == Output.HIDDEN ? dest : null;
        argmax[i] = -1;
        sampling[i] = null;
        sampled[i] = -1;
        return i;
    }

    /**
     * Adds a {@link Output#SAMPLE} row: the backend samples its token with {@code how} (where its logits are) and
     * reports it through {@link #sampled}. Returns its index.
     */
    public int addSample(Backend.Sequence seq, int pos, int tok, double base, RowSampling how) {
        if (how == null) {
            throw new IllegalArgumentException("a sampled row needs its sampling settings");
        }
        int i = add(seq, pos, tok, base, Output.SAMPLE, null);
        sampling[i] = how;
        return i;
    }

    private void grow() {
        int n = position.length * 2;
        sequence = java.util.Arrays.copyOf(sequence, n);
        position = java.util.Arrays.copyOf(position, n);
        token = java.util.Arrays.copyOf(token, n);
        ropeBase = java.util.Arrays.copyOf(ropeBase, n);
        output = java.util.Arrays.copyOf(output, n);
        destination = java.util.Arrays.copyOf(destination, n);
        argmax = java.util.Arrays.copyOf(argmax, n);
        sampling = java.util.Arrays.copyOf(sampling, n);
        sampled = java.util.Arrays.copyOf(sampled, n);
    }

    public int size() {
        return size;
    }

    public boolean isEmpty() {
        return size == 0;
    }

    public Backend.Sequence sequence(int row) {
        return sequence[check(row)];
    }

    public int position(int row) {
        return position[check(row)];
    }

    public int token(int row) {
        return token[check(row)];
    }

    public double ropeBase(int row) {
        return ropeBase[check(row)];
    }

    public Output output(int row) {
        return output[check(row)];
    }

    /** The buffer a LOGITS or HIDDEN row's result goes to (null for the other rows). */
    public float[] destination(int row) {
        return destination[check(row)];
    }

    /** The argmax of an ARGMAX or LOGITS row after the forward pass (−1 before; backends set it for ARGMAX rows). */
    public int argmax(int row) {
        return argmax[check(row)];
    }

    /** Set by the backend for ARGMAX rows. */
    public void setArgmax(int row, int id) {
        argmax[check(row)] = id;
    }

    /** How a SAMPLE row is sampled (null for the other rows). */
    public RowSampling sampling(int row) {
        return sampling[check(row)];
    }

    /** The token sampled for a SAMPLE row after the forward pass (−1 before). */
    public int sampled(int row) {
        return sampled[check(row)];
    }

    /** Set by the backend for SAMPLE rows. */
    public void setSampled(int row, int id) {
        sampled[check(row)] = id;
    }

    /** Rows that ask for any output. */
    public int outputRows() {
        int n = 0;
        for (int i = 0; i < size; i++) {
            n += output[i] == Output.NONE ? 0 : 1;
        }
        return n;
    }

    private int check(int row) {
        if (row < 0 || row >= size) {
            throw new IndexOutOfBoundsException("row " + row + " of a batch of " + size);
        }
        return row;
    }

    /**
     * Checks the rules (what a backend calls before running): tokens inside the vocabulary, positions inside their
     * sequence's capacity, each sequence's rows in consecutive increasing positions, output buffers large enough.
     *
     * @throws IllegalArgumentException naming the first row that breaks a rule
     */
    public void validate(int vocabulary, int hidden) {
        Map<Backend.Sequence, Integer> next = new IdentityHashMap<>();
        for (int i = 0; i < size; i++) {
            if (token[i] < 0 || token[i] >= vocabulary) {
                throw new IllegalArgumentException("token id " + token[i] + " is outside the vocabulary (0.." + (vocabulary - 1) + ")");
            }
            if (position[i] < 0 || position[i] >= sequence[i].capacity()) {
                throw new IllegalArgumentException("position " + position[i] + " is past the context of " + sequence[i].capacity() + " tokens");
            }
            if (!(ropeBase[i] > 0) || Double.isInfinite(ropeBase[i])) {
                throw new IllegalArgumentException("row " + i + " has RoPE base " + ropeBase[i]);
            }
            Integer expected = next.put(sequence[i], position[i] + 1);
            if (expected != null && expected != position[i]) {
                throw new IllegalArgumentException("row " + i + " is at position " + position[i] + " but its sequence's previous row in the batch was at "
                        + (expected - 1) + ": a sequence's rows must be consecutive positions in order");
            }
            if (output[i] == Output.LOGITS && destination[i].length < vocabulary) {
                throw new IllegalArgumentException("row " + i + " asks for logits into a buffer of " + destination[i].length + " floats, the vocabulary has " + vocabulary);
            }
            if (output[i] == Output.SAMPLE && sampling[i] == null) {
                throw new IllegalArgumentException("row " + i + " asks to be sampled but has no sampling settings (use addSample)");
            }
            if (output[i] == Output.HIDDEN && destination[i].length < hidden) {
                throw new IllegalArgumentException("row " + i + " asks for its hidden state into a buffer of " + destination[i].length + " floats, the model's dim is " + hidden);
            }
        }
    }
}
