package internlm.engine.cpu;

import internlm.loader.TensorData;
import internlm.loader.gguf.GgmlType;

import java.util.Arrays;

/**
 * A 2-D weight matrix [rows × cols] for the CPU backend, kept in its stored type (no expansion to float). Each storage
 * kind is a subclass that knows its own kernels: {@link QuantWeight} (Q8_0/Q4_0 repacked into Java arrays),
 * {@link HalfWeight} (F16/BF16 bits copied to the heap), {@link MappedWeight} (F32, and F16/BF16 read straight from
 * the mapped file). This class holds what they share: the products, written once over two primitives of the kind.
 *
 * <h2>Summation order: the same whatever the batch</h2>
 * Every output element y[r] = Σ_c W[r, c]·x[c] is summed in one order fixed by the matrix alone: per column chunk of
 * {@link #TILE} columns, one accumulator per vector lane takes fma(w[c], x[c], acc) for c in steps of the vector
 * width, the lanes are added with {@link VectorKernels#sum}'s fixed tree, the chunk's columns past its last whole
 * vector are added one by one, and the chunks' partial sums are added to 0 in chunk order. The weight w[c] is the
 * dequantized value, which is exact in float for every stored type. A one-token product converts weights in registers
 * ({@link #dot4}); a batched one dequantizes four rows' chunk into a scratch buffer once and passes every token over it
 * ({@link VectorKernels#tile4x4}); both give the same bits — so a sequence's logits do not depend on the batch around
 * it, the chunking of its prompt or which prefix was reused (tested in BatchInvarianceTest).
 *
 * <p>Column chunks also keep the slice of x in L1 while the weights stream past it. Measured on one Zen 4 core,
 * Q8_0, 8192-column rows: 8.9 GB/s row-major, 19 GB/s in 2048-column tiles — as fast as 2048-column rows.
 */
public abstract sealed class Weight permits QuantWeight, HalfWeight, MappedWeight {
    /** Columns per chunk of every product (and per tile of the repacked kinds); a multiple of 32. */
    public static final int TILE = 2048;

    public final String name;
    public final GgmlType type;
    public final int rows;
    public final int cols;
    /** Column chunks of a row. */
    protected final int chunks;

    protected Weight(TensorData t) {
        this.name = t.name();
        this.type = t.type();
        this.cols = (int) t.rowLength();
        this.rows = (int) t.rows();
        this.chunks = (cols + TILE - 1) / TILE;
    }

    /**
     * The weight for a tensor: Q8_0/Q4_0 are repacked, F16/BF16 copied to the heap when {@code halfOnHeap} (and they
     * fit one array), everything else read from the tensor's memory. Repacked kinds need {@link #pack} for every row.
     */
    public static Weight of(TensorData t, boolean halfOnHeap) {
        if (t.rowLength() > Integer.MAX_VALUE || t.rows() > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("tensor " + t.name() + " " + t.shapeString() + " is too large for a single matrix");
        }
        return switch (t.type()) {
            case Q8_0 -> new QuantWeight.Q8(t);
            case Q4_0 -> new QuantWeight.Q4(t);
            case F16, BF16 -> halfOnHeap && t.rowLength() * t.rows() <= Integer.MAX_VALUE - 64 ? new HalfWeight(t) : new MappedWeight(t);
            case F32 -> new MappedWeight(t);
            default -> throw new IllegalArgumentException("tensor " + t.name() + " has type " + t.type() + ", which the CPU backend does not run directly");
        };
    }

    /** True when {@link #pack} must be called for every row before use. */
    public boolean needsPacking() {
        return false;
    }

    /** Copies rows [from, to) of the tensor into this weight's own layout (repacked kinds only). */
    public void pack(TensorData t, int from, int to) {
    }

    /** Bytes read per full pass over the matrix. */
    public abstract long bytes();

    /** Columns of chunk k. */
    protected final int chunkWidth(int k) {
        return Math.min(TILE, cols - k * TILE);
    }

    /**
     * out[i] = Σ over the columns of chunk k of W[4·quad + i, c] · x[xOff + c] in the order described above ({@code x}
     * already offset to the chunk's first column), for the four rows of a quad (rows past the last are any value).
     */
    protected abstract void dot4(int k, int quad, float[] x, int xOff, float[] out);

    /** Batches narrower than this run {@link #tile4} straight from the stored weights (when {@link #fusesSmallBatches}). */
    static final int FUSED_BATCH = 16;

    /**
     * Whether {@link #tile4} reads the stored weights directly (converting each weight vector once for four tokens);
     * otherwise every batch dequantizes a quad's chunk into memory first.
     */
    protected boolean fusesSmallBatches() {
        return false;
    }

    /**
     * out[4i + t] = the sum of {@link #dot4} for row 4·quad + i and token t (activations at x[x_t ..], already offset
     * to the chunk), in the same order, read from the stored weights. Only called on kinds whose
     * {@link #fusesSmallBatches} is true, which override it.
     */
    protected void tile4(int k, int quad, float[] x, int x0, int x1, int x2, int x3, float[] out) {
        throw new UnsupportedOperationException(getClass().getSimpleName() + " does not multiply tiles from its stored weights");
    }

    /** Writes the columns of chunk k of row r as floats into out[outOff ..]. */
    protected abstract void dequantizeChunk(int k, int r, float[] out, int outOff);

    /** Σ_c W[row, c] · x[xOff + c]. */
    public final float dot(int row, float[] x, int xOff) {
        float[] p = new float[4];
        float sum = 0;
        for (int k = 0; k < chunks; k++) {
            dot4(k, row / 4, x, xOff + k * TILE, p);
            sum += p[row % 4];
        }
        return sum;
    }

    /** Writes row {@code row} as floats into out[outOff..outOff+cols). */
    public final void dequantizeRow(int row, float[] out, int outOff) {
        for (int k = 0; k < chunks; k++) {
            dequantizeChunk(k, row, out, outOff + k * TILE);
        }
    }

    /** Floats of scratch a batched {@link #matmul} needs (at most {@link #MAX_SCRATCH}). */
    public final int scratchSize() {
        return 4 * Math.min(cols, TILE);
    }

    /** The largest {@link #scratchSize()} of any weight. */
    public static final int MAX_SCRATCH = 4 * TILE;

    /** Whether {@link #matmul} of {@code batch} tokens uses its scratch buffer (null may be passed otherwise). */
    public final boolean needsScratch(int batch) {
        return batch > 1 && !fused(batch);
    }

    private boolean fused(int batch) {
        return batch < FUSED_BATCH && fusesSmallBatches();
    }

    /**
     * Y[b, r] = Σ_c W[r, c] · X[b, c] for rows r in [from, to) and b &lt; batch. X rows are {@code xStride} apart,
     * Y rows {@code yStride} apart. Rows go by quads (4g .. 4g+3; a range that does not start or end on a quad
     * boundary computes the whole quad and writes its own rows). One token: weights converted in registers, chunk by
     * chunk over all quads (the chunk of x stays in L1). Several: a quad's chunk dequantized once into {@code scratch}
     * (at least {@link #scratchSize()} floats; only when {@link #needsScratch}) and multiplied with four tokens at a
     * time. Both sum in the same order.
     */
    public final void matmul(float[] x, int xStride, int batch, float[] y, int yStride, int yOff, int from, int to, float[] scratch) {
        if (from >= to) {
            return;
        }
        float[] p = new float[16];
        int g0 = from / 4, g1 = (to + 3) / 4;
        if (batch == 1) {
            for (int r = from; r < to; r++) {
                y[yOff + r] = 0f;
            }
            for (int k = 0; k < chunks; k++) {
                for (int g = g0; g < g1; g++) {
                    dot4(k, g, x, k * TILE, p);
                    for (int i = Math.max(0, from - 4 * g), e = Math.min(4, to - 4 * g); i < e; i++) {
                        y[yOff + 4 * g + i] += p[i];
                    }
                }
            }
            return;
        }
        int quads = batch / 4 * 4;
        float[] acc = new float[4 * batch];
        // a few sequences decoding together: tiles straight from the stored weights; more rows (prompts): a quad's
        // chunk dequantized once into scratch and passed over every token
        boolean fused = fused(batch);
        for (int g = g0; g < g1; g++) {
            Arrays.fill(acc, 0f);
            for (int k = 0; k < chunks; k++) {
                int n = chunkWidth(k), c0 = k * TILE;
                if (!fused) {
                    for (int i = 0; i < 4; i++) {
                        dequantizeChunk(k, Math.min(4 * g + i, rows - 1), scratch, i * n);
                    }
                }
                for (int b = 0; b < quads; b += 4) {
                    int x0 = b * xStride + c0, x1 = x0 + xStride, x2 = x1 + xStride, x3 = x2 + xStride;
                    if (fused) {
                        tile4(k, g, x, x0, x1, x2, x3, p);
                    } else {
                        VectorKernels.tile4x4(scratch, 0, n, n, x, x0, x1, x2, x3, p);
                    }
                    for (int i = 0; i < 4; i++) {
                        for (int j = 0; j < 4; j++) {
                            acc[i * batch + b + j] += p[4 * i + j];
                        }
                    }
                }
                for (int b = quads; b < batch; b++) {
                    if (fused) {
                        dot4(k, g, x, b * xStride + c0, p);
                    } else {
                        VectorKernels.tile4x1(scratch, 0, n, n, x, b * xStride + c0, p);
                    }
                    for (int i = 0; i < 4; i++) {
                        acc[i * batch + b] += p[i];
                    }
                }
            }
            for (int i = Math.max(0, from - 4 * g), e = Math.min(4, to - 4 * g); i < e; i++) {
                for (int b = 0; b < batch; b++) {
                    y[b * yStride + yOff + 4 * g + i] = acc[i * batch + b];
                }
            }
        }
    }
}
