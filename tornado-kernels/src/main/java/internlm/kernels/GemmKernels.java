package internlm.kernels;

import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.HalfFloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;
import uk.ac.manchester.tornado.api.types.arrays.ShortArray;

/**
 * Matrix products for a batch of rows (Y = X·Wᵀ, X [n × cols], Y [n × rows]), one kernel per weight type and use
 * (plain or residual, fused Q/K/V, fused SwiGLU gate/up). The row count n is read from {@link BatchLayout meta}, so
 * one compiled kernel serves every batch size.
 *
 * <p>With n &gt; 1 (or in {@link BatchLayout#MODE_INVARIANT} mode) a work-group computes a tile of
 * {@link #TILE_ROWS} output rows for all n batch rows: for each slice of {@link #TILE_DEPTH} columns it dequantizes the
 * weight tile once into local memory, then runs over the batch in chunks of {@link #TILE_BATCH} rows, staging each
 * activation chunk in local memory; the accumulators (TILE_ROWS × n) stay in local memory for the whole row. So every
 * weight byte is read from global memory once per batch. Each output is a sum over the columns in increasing order,
 * whatever n and whichever other rows share the batch: results are batch invariant.
 *
 * <p>With n = 1 the kernels run the one-row-per-work-group product of {@link MatVecKernels} (lanes stride over the
 * row, tree reduction): the fastest decode, summed in another order (results differ by float rounding from the
 * batched path; MODE_INVARIANT trades that speed for invariance). The grid is one work-group per output row either
 * way (groups past the last tile exit at once).
 */
public final class GemmKernels {
    private GemmKernels() {}

    /** Output rows per work-group in the batched path. */
    public static final int TILE_ROWS = 8;
    /** Columns per weight/activation tile. */
    public static final int TILE_DEPTH = 32;
    /** Batch rows per activation tile. */
    public static final int TILE_BATCH = 16;
    /** Row stride of the activation tile in local memory (padded against bank conflicts). */
    static final int XS_STRIDE = TILE_DEPTH + 1;
    /** Most batch rows one launch accumulates (the accumulators of a tile, TILE_ROWS × MAX_BATCH, stay in local memory). */
    public static final int MAX_BATCH = BatchLayout.MAX_ROWS;
    // local arrays handed to helper methods are sized for the index scaling described at KernelSupport.REDUCE_LOCAL
    static final int WT_LOCAL = 4 * TILE_ROWS * TILE_DEPTH + 16;
    static final int XS_LOCAL = 4 * TILE_BATCH * XS_STRIDE + 16;
    static final int ACC_LOCAL = 4 * TILE_ROWS * MAX_BATCH + 16;

    /** Whether the one-row product path applies. */
    static boolean oneRow(IntArray meta, int n) {
        return n == 1 && meta.get(BatchLayout.MODE) != BatchLayout.MODE_INVARIANT;
    }

    // ------------------------------------------------------------------ type-independent tile steps

    static void clear(KernelContext ctx, float[] acc) {
        for (int e = ctx.localIdx; e < TILE_ROWS * MAX_BATCH; e += ctx.localGroupSizeX) {
            acc[e] = 0f;
        }
    }

    /**
     * acc[r][b] += Σ_k wt[r][k] · x[b][k0 + k] for every batch row b &lt; n; wt holds the dequantized weight tile
     * (zeros past the matrix). Starts and ends with the work-group in step.
     */
    static void accumulate(KernelContext ctx, float[] wt, float[] xs, float[] acc, FloatArray x, int n, int k0, int cols) {
        int lid = ctx.localIdx, wg = ctx.localGroupSizeX;
        int kn = cols - k0 < TILE_DEPTH ? cols - k0 : TILE_DEPTH;
        for (int c0 = 0; c0 < n; c0 += TILE_BATCH) {
            int nb = n - c0 < TILE_BATCH ? n - c0 : TILE_BATCH;
            for (int e = lid; e < TILE_BATCH * TILE_DEPTH; e += wg) {
                int b = e / TILE_DEPTH;
                int k = e - b * TILE_DEPTH;
                xs[b * XS_STRIDE + k] = b < nb && k < kn ? x.get((c0 + b) * cols + k0 + k) : 0f;
            }
            ctx.localBarrier();
            for (int j = lid; j < TILE_ROWS * TILE_BATCH; j += wg) {
                int r = j / TILE_BATCH;
                int b = j - r * TILE_BATCH;
                if (b < nb) {
                    int a = r * MAX_BATCH + c0 + b;
                    float s = acc[a];
                    int wo = r * TILE_DEPTH, xo = b * XS_STRIDE;
                    for (int k = 0; k < TILE_DEPTH; k++) {
                        s += wt[wo + k] * xs[xo + k];
                    }
                    acc[a] = s;
                }
            }
            ctx.localBarrier();
        }
    }

    /** As {@link #accumulate} for two weight tiles sharing the activations (gate and up). */
    static void accumulate2(KernelContext ctx, float[] wt, float[] wt2, float[] xs, float[] acc, float[] acc2, FloatArray x, int n, int k0, int cols) {
        int lid = ctx.localIdx, wg = ctx.localGroupSizeX;
        int kn = cols - k0 < TILE_DEPTH ? cols - k0 : TILE_DEPTH;
        for (int c0 = 0; c0 < n; c0 += TILE_BATCH) {
            int nb = n - c0 < TILE_BATCH ? n - c0 : TILE_BATCH;
            for (int e = lid; e < TILE_BATCH * TILE_DEPTH; e += wg) {
                int b = e / TILE_DEPTH;
                int k = e - b * TILE_DEPTH;
                xs[b * XS_STRIDE + k] = b < nb && k < kn ? x.get((c0 + b) * cols + k0 + k) : 0f;
            }
            ctx.localBarrier();
            for (int j = lid; j < TILE_ROWS * TILE_BATCH; j += wg) {
                int r = j / TILE_BATCH;
                int b = j - r * TILE_BATCH;
                if (b < nb) {
                    int a = r * MAX_BATCH + c0 + b;
                    float s = acc[a], s2 = acc2[a];
                    int wo = r * TILE_DEPTH, xo = b * XS_STRIDE;
                    for (int k = 0; k < TILE_DEPTH; k++) {
                        float xv = xs[xo + k];
                        s += wt[wo + k] * xv;
                        s2 += wt2[wo + k] * xv;
                    }
                    acc[a] = s;
                    acc2[a] = s2;
                }
            }
            ctx.localBarrier();
        }
    }

    /** y[b][row0 + r] = acc[r][b] (or += with residual) for the tile's rows inside the matrix. */
    static void store(KernelContext ctx, float[] acc, FloatArray y, int n, int row0, int rows, int residual) {
        for (int e = ctx.localIdx; e < TILE_ROWS * n; e += ctx.localGroupSizeX) {
            int r = e / n;
            int b = e - r * n;
            int row = row0 + r;
            if (row < rows) {
                float t = acc[r * MAX_BATCH + b];
                int o = b * rows + row;
                y.set(o, residual != 0 ? y.get(o) + t : t);
            }
        }
    }

    static void storeSwiglu(KernelContext ctx, float[] accG, float[] accU, FloatArray h, int n, int row0, int rows) {
        for (int e = ctx.localIdx; e < TILE_ROWS * n; e += ctx.localGroupSizeX) {
            int r = e / n;
            int b = e - r * n;
            int row = row0 + r;
            if (row < rows) {
                int a = r * MAX_BATCH + b;
                h.set(b * rows + row, MatVecKernels.silu(accG[a]) * accU[a]);
            }
        }
    }

    static void storeOne(FloatArray y, int row, float t, int residual) {
        y.set(row, residual != 0 ? y.get(row) + t : t);
    }

    // ------------------------------------------------------------------ weight tiles, per type: wt[r][k] = W[row0+r][k0+k]

    static void tileF32(KernelContext ctx, float[] wt, FloatArray w, int row0, int rows, int k0, int cols) {
        for (int e = ctx.localIdx; e < TILE_ROWS * TILE_DEPTH; e += ctx.localGroupSizeX) {
            int r = e / TILE_DEPTH;
            int k = k0 + e - r * TILE_DEPTH;
            wt[e] = row0 + r < rows && k < cols ? w.get((row0 + r) * cols + k) : 0f;
        }
        ctx.localBarrier();
    }

    static void tileF16(KernelContext ctx, float[] wt, HalfFloatArray w, int row0, int rows, int k0, int cols) {
        for (int e = ctx.localIdx; e < TILE_ROWS * TILE_DEPTH; e += ctx.localGroupSizeX) {
            int r = e / TILE_DEPTH;
            int k = k0 + e - r * TILE_DEPTH;
            wt[e] = row0 + r < rows && k < cols ? w.get((row0 + r) * cols + k).getFloat32() : 0f;
        }
        ctx.localBarrier();
    }

    static void tileF16Bits(KernelContext ctx, float[] wt, ShortArray w, FloatArray pow2, int row0, int rows, int k0, int cols) {
        for (int e = ctx.localIdx; e < TILE_ROWS * TILE_DEPTH; e += ctx.localGroupSizeX) {
            int r = e / TILE_DEPTH;
            int k = k0 + e - r * TILE_DEPTH;
            wt[e] = row0 + r < rows && k < cols ? KernelSupport.halfToFloat(w.get((row0 + r) * cols + k), pow2) : 0f;
        }
        ctx.localBarrier();
    }

    static void tileQ8(KernelContext ctx, float[] wt, IntArray q, FloatArray s, int row0, int rows, int k0, int cols) {
        for (int e = ctx.localIdx; e < TILE_ROWS * TILE_DEPTH; e += ctx.localGroupSizeX) {
            int r = e / TILE_DEPTH;
            int k = k0 + e - r * TILE_DEPTH;
            float v = 0f;
            if (row0 + r < rows && k < cols) {
                int i = (row0 + r) * cols + k;
                int word = q.get(i >> 2);
                v = ((word << (24 - ((i & 3) << 3))) >> 24) * s.get(i >> 5);
            }
            wt[e] = v;
        }
        ctx.localBarrier();
    }

    static void tileQ4(KernelContext ctx, float[] wt, IntArray q, FloatArray s, int row0, int rows, int k0, int cols) {
        for (int e = ctx.localIdx; e < TILE_ROWS * TILE_DEPTH; e += ctx.localGroupSizeX) {
            int r = e / TILE_DEPTH;
            int k = k0 + e - r * TILE_DEPTH;
            float v = 0f;
            if (row0 + r < rows && k < cols) {
                int i = (row0 + r) * cols + k;
                int block = i >> 5, j = i & 31;
                int byteIndex = j & 15;
                int word = q.get((block << 2) + (byteIndex >> 2));
                int b = (word >> ((byteIndex & 3) << 3)) & 255;
                int nib = j < 16 ? (b & 15) : (b >> 4);
                v = (nib - 8) * s.get(block);
            }
            wt[e] = v;
        }
        ctx.localBarrier();
    }

    // ------------------------------------------------------------------ one tile of output rows, per type

    static void blockF32(KernelContext ctx, float[] wt, float[] xs, float[] acc, FloatArray w, FloatArray x, FloatArray y,
                         int n, int row0, int rows, int cols, int residual) {
        clear(ctx, acc);
        for (int k0 = 0; k0 < cols; k0 += TILE_DEPTH) {
            tileF32(ctx, wt, w, row0, rows, k0, cols);
            accumulate(ctx, wt, xs, acc, x, n, k0, cols);
        }
        store(ctx, acc, y, n, row0, rows, residual);
    }

    static void blockF16(KernelContext ctx, float[] wt, float[] xs, float[] acc, HalfFloatArray w, FloatArray x, FloatArray y,
                         int n, int row0, int rows, int cols, int residual) {
        clear(ctx, acc);
        for (int k0 = 0; k0 < cols; k0 += TILE_DEPTH) {
            tileF16(ctx, wt, w, row0, rows, k0, cols);
            accumulate(ctx, wt, xs, acc, x, n, k0, cols);
        }
        store(ctx, acc, y, n, row0, rows, residual);
    }

    static void blockF16Bits(KernelContext ctx, float[] wt, float[] xs, float[] acc, ShortArray w, FloatArray pow2, FloatArray x, FloatArray y,
                             int n, int row0, int rows, int cols, int residual) {
        clear(ctx, acc);
        for (int k0 = 0; k0 < cols; k0 += TILE_DEPTH) {
            tileF16Bits(ctx, wt, w, pow2, row0, rows, k0, cols);
            accumulate(ctx, wt, xs, acc, x, n, k0, cols);
        }
        store(ctx, acc, y, n, row0, rows, residual);
    }

    static void blockQ8(KernelContext ctx, float[] wt, float[] xs, float[] acc, IntArray q, FloatArray s, FloatArray x, FloatArray y,
                        int n, int row0, int rows, int cols, int residual) {
        clear(ctx, acc);
        for (int k0 = 0; k0 < cols; k0 += TILE_DEPTH) {
            tileQ8(ctx, wt, q, s, row0, rows, k0, cols);
            accumulate(ctx, wt, xs, acc, x, n, k0, cols);
        }
        store(ctx, acc, y, n, row0, rows, residual);
    }

    static void blockQ4(KernelContext ctx, float[] wt, float[] xs, float[] acc, IntArray q, FloatArray s, FloatArray x, FloatArray y,
                        int n, int row0, int rows, int cols, int residual) {
        clear(ctx, acc);
        for (int k0 = 0; k0 < cols; k0 += TILE_DEPTH) {
            tileQ4(ctx, wt, q, s, row0, rows, k0, cols);
            accumulate(ctx, wt, xs, acc, x, n, k0, cols);
        }
        store(ctx, acc, y, n, row0, rows, residual);
    }

    /** Work-groups the batched path uses for a matrix of {@code rows} rows. */
    public static int tiles(int rows) {
        return (rows + TILE_ROWS - 1) / TILE_ROWS;
    }

    // ------------------------------------------------------------------ Y = X·Wᵀ (residual != 0: Y += X·Wᵀ); n = meta[count]

    public static void gemmF32(KernelContext ctx, FloatArray w, FloatArray x, FloatArray y, IntArray meta, int count, int rows, int cols, int residual) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        float[] wt = ctx.allocateFloatLocalArray(WT_LOCAL);
        float[] xs = ctx.allocateFloatLocalArray(XS_LOCAL);
        float[] acc = ctx.allocateFloatLocalArray(ACC_LOCAL);
        int n = meta.get(count), g = ctx.groupIdx;
        if (oneRow(meta, n)) {
            float t = KernelSupport.reduceSum(ctx, red, g < rows ? MatVecKernels.partialF32(w, x, g, cols, ctx.localIdx, ctx.localGroupSizeX) : 0f);
            if (ctx.localIdx == 0 && g < rows) {
                storeOne(y, g, t, residual);
            }
        } else if (g * TILE_ROWS < rows) {
            blockF32(ctx, wt, xs, acc, w, x, y, n, g * TILE_ROWS, rows, cols, residual);
        }
    }

    public static void gemmF16(KernelContext ctx, HalfFloatArray w, FloatArray x, FloatArray y, IntArray meta, int count, int rows, int cols, int residual) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        float[] wt = ctx.allocateFloatLocalArray(WT_LOCAL);
        float[] xs = ctx.allocateFloatLocalArray(XS_LOCAL);
        float[] acc = ctx.allocateFloatLocalArray(ACC_LOCAL);
        int n = meta.get(count), g = ctx.groupIdx;
        if (oneRow(meta, n)) {
            float t = KernelSupport.reduceSum(ctx, red, g < rows ? MatVecKernels.partialF16(w, x, g, cols, ctx.localIdx, ctx.localGroupSizeX) : 0f);
            if (ctx.localIdx == 0 && g < rows) {
                storeOne(y, g, t, residual);
            }
        } else if (g * TILE_ROWS < rows) {
            blockF16(ctx, wt, xs, acc, w, x, y, n, g * TILE_ROWS, rows, cols, residual);
        }
    }

    public static void gemmF16Bits(KernelContext ctx, ShortArray w, FloatArray pow2, FloatArray x, FloatArray y, IntArray meta, int count, int rows, int cols, int residual) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        float[] wt = ctx.allocateFloatLocalArray(WT_LOCAL);
        float[] xs = ctx.allocateFloatLocalArray(XS_LOCAL);
        float[] acc = ctx.allocateFloatLocalArray(ACC_LOCAL);
        int n = meta.get(count), g = ctx.groupIdx;
        if (oneRow(meta, n)) {
            float t = KernelSupport.reduceSum(ctx, red, g < rows ? MatVecKernels.partialF16Bits(w, pow2, x, g, cols, ctx.localIdx, ctx.localGroupSizeX) : 0f);
            if (ctx.localIdx == 0 && g < rows) {
                storeOne(y, g, t, residual);
            }
        } else if (g * TILE_ROWS < rows) {
            blockF16Bits(ctx, wt, xs, acc, w, pow2, x, y, n, g * TILE_ROWS, rows, cols, residual);
        }
    }

    public static void gemmQ8(KernelContext ctx, IntArray q, FloatArray s, FloatArray x, FloatArray y, IntArray meta, int count, int rows, int cols, int residual) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        float[] wt = ctx.allocateFloatLocalArray(WT_LOCAL);
        float[] xs = ctx.allocateFloatLocalArray(XS_LOCAL);
        float[] acc = ctx.allocateFloatLocalArray(ACC_LOCAL);
        int n = meta.get(count), g = ctx.groupIdx;
        if (oneRow(meta, n)) {
            float t = KernelSupport.reduceSum(ctx, red, g < rows ? MatVecKernels.partialQ8(q, s, x, g, cols, ctx.localIdx, ctx.localGroupSizeX) : 0f);
            if (ctx.localIdx == 0 && g < rows) {
                storeOne(y, g, t, residual);
            }
        } else if (g * TILE_ROWS < rows) {
            blockQ8(ctx, wt, xs, acc, q, s, x, y, n, g * TILE_ROWS, rows, cols, residual);
        }
    }

    public static void gemmQ4(KernelContext ctx, IntArray q, FloatArray s, FloatArray x, FloatArray y, IntArray meta, int count, int rows, int cols, int residual) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        float[] wt = ctx.allocateFloatLocalArray(WT_LOCAL);
        float[] xs = ctx.allocateFloatLocalArray(XS_LOCAL);
        float[] acc = ctx.allocateFloatLocalArray(ACC_LOCAL);
        int n = meta.get(count), g = ctx.groupIdx;
        if (oneRow(meta, n)) {
            float t = KernelSupport.reduceSum(ctx, red, g < rows ? MatVecKernels.partialQ4(q, s, x, g, cols, ctx.localIdx, ctx.localGroupSizeX) : 0f);
            if (ctx.localIdx == 0 && g < rows) {
                storeOne(y, g, t, residual);
            }
        } else if (g * TILE_ROWS < rows) {
            blockQ4(ctx, wt, xs, acc, q, s, x, y, n, g * TILE_ROWS, rows, cols, residual);
        }
    }

    // ------------------------------------------------------------------ fused Q/K/V (n = meta[ROWS])
    // one-row path: groups [0, qRows) → q, then k, then v (as MatVecKernels.qkv*); batched path: tiles of q, then k, then v

    public static void qkvF32(KernelContext ctx, FloatArray wq, FloatArray wk, FloatArray wv, FloatArray x,
                              FloatArray q, FloatArray k, FloatArray v, IntArray meta, int qRows, int kvRows, int cols) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        float[] wt = ctx.allocateFloatLocalArray(WT_LOCAL);
        float[] xs = ctx.allocateFloatLocalArray(XS_LOCAL);
        float[] acc = ctx.allocateFloatLocalArray(ACC_LOCAL);
        int n = meta.get(BatchLayout.ROWS), g = ctx.groupIdx, lid = ctx.localIdx, wg = ctx.localGroupSizeX;
        int tq = tiles(qRows), tk = tiles(kvRows);
        if (oneRow(meta, n)) {
            float p = 0f;
            if (g < qRows) {
                p = MatVecKernels.partialF32(wq, x, g, cols, lid, wg);
            } else if (g < qRows + kvRows) {
                p = MatVecKernels.partialF32(wk, x, g - qRows, cols, lid, wg);
            } else if (g < qRows + 2 * kvRows) {
                p = MatVecKernels.partialF32(wv, x, g - qRows - kvRows, cols, lid, wg);
            }
            float t = KernelSupport.reduceSum(ctx, red, p);
            if (lid == 0) {
                storeQkv(q, k, v, g, t, qRows, kvRows);
            }
        } else if (g < tq) {
            blockF32(ctx, wt, xs, acc, wq, x, q, n, g * TILE_ROWS, qRows, cols, 0);
        } else if (g < tq + tk) {
            blockF32(ctx, wt, xs, acc, wk, x, k, n, (g - tq) * TILE_ROWS, kvRows, cols, 0);
        } else if (g < tq + 2 * tk) {
            blockF32(ctx, wt, xs, acc, wv, x, v, n, (g - tq - tk) * TILE_ROWS, kvRows, cols, 0);
        }
    }

    public static void qkvF16(KernelContext ctx, HalfFloatArray wq, HalfFloatArray wk, HalfFloatArray wv, FloatArray x,
                              FloatArray q, FloatArray k, FloatArray v, IntArray meta, int qRows, int kvRows, int cols) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        float[] wt = ctx.allocateFloatLocalArray(WT_LOCAL);
        float[] xs = ctx.allocateFloatLocalArray(XS_LOCAL);
        float[] acc = ctx.allocateFloatLocalArray(ACC_LOCAL);
        int n = meta.get(BatchLayout.ROWS), g = ctx.groupIdx, lid = ctx.localIdx, wg = ctx.localGroupSizeX;
        int tq = tiles(qRows), tk = tiles(kvRows);
        if (oneRow(meta, n)) {
            float p = 0f;
            if (g < qRows) {
                p = MatVecKernels.partialF16(wq, x, g, cols, lid, wg);
            } else if (g < qRows + kvRows) {
                p = MatVecKernels.partialF16(wk, x, g - qRows, cols, lid, wg);
            } else if (g < qRows + 2 * kvRows) {
                p = MatVecKernels.partialF16(wv, x, g - qRows - kvRows, cols, lid, wg);
            }
            float t = KernelSupport.reduceSum(ctx, red, p);
            if (lid == 0) {
                storeQkv(q, k, v, g, t, qRows, kvRows);
            }
        } else if (g < tq) {
            blockF16(ctx, wt, xs, acc, wq, x, q, n, g * TILE_ROWS, qRows, cols, 0);
        } else if (g < tq + tk) {
            blockF16(ctx, wt, xs, acc, wk, x, k, n, (g - tq) * TILE_ROWS, kvRows, cols, 0);
        } else if (g < tq + 2 * tk) {
            blockF16(ctx, wt, xs, acc, wv, x, v, n, (g - tq - tk) * TILE_ROWS, kvRows, cols, 0);
        }
    }

    public static void qkvF16Bits(KernelContext ctx, ShortArray wq, ShortArray wk, ShortArray wv, FloatArray pow2, FloatArray x,
                                  FloatArray q, FloatArray k, FloatArray v, IntArray meta, int qRows, int kvRows, int cols) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        float[] wt = ctx.allocateFloatLocalArray(WT_LOCAL);
        float[] xs = ctx.allocateFloatLocalArray(XS_LOCAL);
        float[] acc = ctx.allocateFloatLocalArray(ACC_LOCAL);
        int n = meta.get(BatchLayout.ROWS), g = ctx.groupIdx, lid = ctx.localIdx, wg = ctx.localGroupSizeX;
        int tq = tiles(qRows), tk = tiles(kvRows);
        if (oneRow(meta, n)) {
            float p = 0f;
            if (g < qRows) {
                p = MatVecKernels.partialF16Bits(wq, pow2, x, g, cols, lid, wg);
            } else if (g < qRows + kvRows) {
                p = MatVecKernels.partialF16Bits(wk, pow2, x, g - qRows, cols, lid, wg);
            } else if (g < qRows + 2 * kvRows) {
                p = MatVecKernels.partialF16Bits(wv, pow2, x, g - qRows - kvRows, cols, lid, wg);
            }
            float t = KernelSupport.reduceSum(ctx, red, p);
            if (lid == 0) {
                storeQkv(q, k, v, g, t, qRows, kvRows);
            }
        } else if (g < tq) {
            blockF16Bits(ctx, wt, xs, acc, wq, pow2, x, q, n, g * TILE_ROWS, qRows, cols, 0);
        } else if (g < tq + tk) {
            blockF16Bits(ctx, wt, xs, acc, wk, pow2, x, k, n, (g - tq) * TILE_ROWS, kvRows, cols, 0);
        } else if (g < tq + 2 * tk) {
            blockF16Bits(ctx, wt, xs, acc, wv, pow2, x, v, n, (g - tq - tk) * TILE_ROWS, kvRows, cols, 0);
        }
    }

    public static void qkvQ8(KernelContext ctx, IntArray wq, FloatArray sq, IntArray wk, FloatArray sk, IntArray wv, FloatArray sv,
                             FloatArray x, FloatArray q, FloatArray k, FloatArray v, IntArray meta, int qRows, int kvRows, int cols) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        float[] wt = ctx.allocateFloatLocalArray(WT_LOCAL);
        float[] xs = ctx.allocateFloatLocalArray(XS_LOCAL);
        float[] acc = ctx.allocateFloatLocalArray(ACC_LOCAL);
        int n = meta.get(BatchLayout.ROWS), g = ctx.groupIdx, lid = ctx.localIdx, wg = ctx.localGroupSizeX;
        int tq = tiles(qRows), tk = tiles(kvRows);
        if (oneRow(meta, n)) {
            float p = 0f;
            if (g < qRows) {
                p = MatVecKernels.partialQ8(wq, sq, x, g, cols, lid, wg);
            } else if (g < qRows + kvRows) {
                p = MatVecKernels.partialQ8(wk, sk, x, g - qRows, cols, lid, wg);
            } else if (g < qRows + 2 * kvRows) {
                p = MatVecKernels.partialQ8(wv, sv, x, g - qRows - kvRows, cols, lid, wg);
            }
            float t = KernelSupport.reduceSum(ctx, red, p);
            if (lid == 0) {
                storeQkv(q, k, v, g, t, qRows, kvRows);
            }
        } else if (g < tq) {
            blockQ8(ctx, wt, xs, acc, wq, sq, x, q, n, g * TILE_ROWS, qRows, cols, 0);
        } else if (g < tq + tk) {
            blockQ8(ctx, wt, xs, acc, wk, sk, x, k, n, (g - tq) * TILE_ROWS, kvRows, cols, 0);
        } else if (g < tq + 2 * tk) {
            blockQ8(ctx, wt, xs, acc, wv, sv, x, v, n, (g - tq - tk) * TILE_ROWS, kvRows, cols, 0);
        }
    }

    public static void qkvQ4(KernelContext ctx, IntArray wq, FloatArray sq, IntArray wk, FloatArray sk, IntArray wv, FloatArray sv,
                             FloatArray x, FloatArray q, FloatArray k, FloatArray v, IntArray meta, int qRows, int kvRows, int cols) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        float[] wt = ctx.allocateFloatLocalArray(WT_LOCAL);
        float[] xs = ctx.allocateFloatLocalArray(XS_LOCAL);
        float[] acc = ctx.allocateFloatLocalArray(ACC_LOCAL);
        int n = meta.get(BatchLayout.ROWS), g = ctx.groupIdx, lid = ctx.localIdx, wg = ctx.localGroupSizeX;
        int tq = tiles(qRows), tk = tiles(kvRows);
        if (oneRow(meta, n)) {
            float p = 0f;
            if (g < qRows) {
                p = MatVecKernels.partialQ4(wq, sq, x, g, cols, lid, wg);
            } else if (g < qRows + kvRows) {
                p = MatVecKernels.partialQ4(wk, sk, x, g - qRows, cols, lid, wg);
            } else if (g < qRows + 2 * kvRows) {
                p = MatVecKernels.partialQ4(wv, sv, x, g - qRows - kvRows, cols, lid, wg);
            }
            float t = KernelSupport.reduceSum(ctx, red, p);
            if (lid == 0) {
                storeQkv(q, k, v, g, t, qRows, kvRows);
            }
        } else if (g < tq) {
            blockQ4(ctx, wt, xs, acc, wq, sq, x, q, n, g * TILE_ROWS, qRows, cols, 0);
        } else if (g < tq + tk) {
            blockQ4(ctx, wt, xs, acc, wk, sk, x, k, n, (g - tq) * TILE_ROWS, kvRows, cols, 0);
        } else if (g < tq + 2 * tk) {
            blockQ4(ctx, wt, xs, acc, wv, sv, x, v, n, (g - tq - tk) * TILE_ROWS, kvRows, cols, 0);
        }
    }

    static void storeQkv(FloatArray q, FloatArray k, FloatArray v, int g, float t, int qRows, int kvRows) {
        if (g < qRows) {
            q.set(g, t);
        } else if (g < qRows + kvRows) {
            k.set(g - qRows, t);
        } else if (g < qRows + 2 * kvRows) {
            v.set(g - qRows - kvRows, t);
        }
    }

    // ------------------------------------------------------------------ fused SwiGLU: H = silu(X·Wgᵀ) ⊙ (X·Wuᵀ), n = meta[ROWS]

    public static void swigluF32(KernelContext ctx, FloatArray wg, FloatArray wu, FloatArray x, FloatArray h, IntArray meta, int rows, int cols) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        float[] wt = ctx.allocateFloatLocalArray(WT_LOCAL);
        float[] wt2 = ctx.allocateFloatLocalArray(WT_LOCAL);
        float[] xs = ctx.allocateFloatLocalArray(XS_LOCAL);
        float[] acc = ctx.allocateFloatLocalArray(ACC_LOCAL);
        float[] acc2 = ctx.allocateFloatLocalArray(ACC_LOCAL);
        int n = meta.get(BatchLayout.ROWS), g = ctx.groupIdx, lid = ctx.localIdx, ls = ctx.localGroupSizeX;
        if (oneRow(meta, n)) {
            float a = KernelSupport.reduceSum(ctx, red, g < rows ? MatVecKernels.partialF32(wg, x, g, cols, lid, ls) : 0f);
            float b = KernelSupport.reduceSum(ctx, red, g < rows ? MatVecKernels.partialF32(wu, x, g, cols, lid, ls) : 0f);
            if (lid == 0 && g < rows) {
                h.set(g, MatVecKernels.silu(a) * b);
            }
        } else if (g * TILE_ROWS < rows) {
            int row0 = g * TILE_ROWS;
            clear(ctx, acc);
            clear(ctx, acc2);
            for (int k0 = 0; k0 < cols; k0 += TILE_DEPTH) {
                tileF32(ctx, wt, wg, row0, rows, k0, cols);
                tileF32(ctx, wt2, wu, row0, rows, k0, cols);
                accumulate2(ctx, wt, wt2, xs, acc, acc2, x, n, k0, cols);
            }
            storeSwiglu(ctx, acc, acc2, h, n, row0, rows);
        }
    }

    public static void swigluF16(KernelContext ctx, HalfFloatArray wg, HalfFloatArray wu, FloatArray x, FloatArray h, IntArray meta, int rows, int cols) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        float[] wt = ctx.allocateFloatLocalArray(WT_LOCAL);
        float[] wt2 = ctx.allocateFloatLocalArray(WT_LOCAL);
        float[] xs = ctx.allocateFloatLocalArray(XS_LOCAL);
        float[] acc = ctx.allocateFloatLocalArray(ACC_LOCAL);
        float[] acc2 = ctx.allocateFloatLocalArray(ACC_LOCAL);
        int n = meta.get(BatchLayout.ROWS), g = ctx.groupIdx, lid = ctx.localIdx, ls = ctx.localGroupSizeX;
        if (oneRow(meta, n)) {
            float a = KernelSupport.reduceSum(ctx, red, g < rows ? MatVecKernels.partialF16(wg, x, g, cols, lid, ls) : 0f);
            float b = KernelSupport.reduceSum(ctx, red, g < rows ? MatVecKernels.partialF16(wu, x, g, cols, lid, ls) : 0f);
            if (lid == 0 && g < rows) {
                h.set(g, MatVecKernels.silu(a) * b);
            }
        } else if (g * TILE_ROWS < rows) {
            int row0 = g * TILE_ROWS;
            clear(ctx, acc);
            clear(ctx, acc2);
            for (int k0 = 0; k0 < cols; k0 += TILE_DEPTH) {
                tileF16(ctx, wt, wg, row0, rows, k0, cols);
                tileF16(ctx, wt2, wu, row0, rows, k0, cols);
                accumulate2(ctx, wt, wt2, xs, acc, acc2, x, n, k0, cols);
            }
            storeSwiglu(ctx, acc, acc2, h, n, row0, rows);
        }
    }

    public static void swigluF16Bits(KernelContext ctx, ShortArray wg, ShortArray wu, FloatArray pow2, FloatArray x, FloatArray h, IntArray meta, int rows, int cols) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        float[] wt = ctx.allocateFloatLocalArray(WT_LOCAL);
        float[] wt2 = ctx.allocateFloatLocalArray(WT_LOCAL);
        float[] xs = ctx.allocateFloatLocalArray(XS_LOCAL);
        float[] acc = ctx.allocateFloatLocalArray(ACC_LOCAL);
        float[] acc2 = ctx.allocateFloatLocalArray(ACC_LOCAL);
        int n = meta.get(BatchLayout.ROWS), g = ctx.groupIdx, lid = ctx.localIdx, ls = ctx.localGroupSizeX;
        if (oneRow(meta, n)) {
            float a = KernelSupport.reduceSum(ctx, red, g < rows ? MatVecKernels.partialF16Bits(wg, pow2, x, g, cols, lid, ls) : 0f);
            float b = KernelSupport.reduceSum(ctx, red, g < rows ? MatVecKernels.partialF16Bits(wu, pow2, x, g, cols, lid, ls) : 0f);
            if (lid == 0 && g < rows) {
                h.set(g, MatVecKernels.silu(a) * b);
            }
        } else if (g * TILE_ROWS < rows) {
            int row0 = g * TILE_ROWS;
            clear(ctx, acc);
            clear(ctx, acc2);
            for (int k0 = 0; k0 < cols; k0 += TILE_DEPTH) {
                tileF16Bits(ctx, wt, wg, pow2, row0, rows, k0, cols);
                tileF16Bits(ctx, wt2, wu, pow2, row0, rows, k0, cols);
                accumulate2(ctx, wt, wt2, xs, acc, acc2, x, n, k0, cols);
            }
            storeSwiglu(ctx, acc, acc2, h, n, row0, rows);
        }
    }

    public static void swigluQ8(KernelContext ctx, IntArray wg, FloatArray sg, IntArray wu, FloatArray su, FloatArray x, FloatArray h, IntArray meta, int rows, int cols) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        float[] wt = ctx.allocateFloatLocalArray(WT_LOCAL);
        float[] wt2 = ctx.allocateFloatLocalArray(WT_LOCAL);
        float[] xs = ctx.allocateFloatLocalArray(XS_LOCAL);
        float[] acc = ctx.allocateFloatLocalArray(ACC_LOCAL);
        float[] acc2 = ctx.allocateFloatLocalArray(ACC_LOCAL);
        int n = meta.get(BatchLayout.ROWS), g = ctx.groupIdx, lid = ctx.localIdx, ls = ctx.localGroupSizeX;
        if (oneRow(meta, n)) {
            float a = KernelSupport.reduceSum(ctx, red, g < rows ? MatVecKernels.partialQ8(wg, sg, x, g, cols, lid, ls) : 0f);
            float b = KernelSupport.reduceSum(ctx, red, g < rows ? MatVecKernels.partialQ8(wu, su, x, g, cols, lid, ls) : 0f);
            if (lid == 0 && g < rows) {
                h.set(g, MatVecKernels.silu(a) * b);
            }
        } else if (g * TILE_ROWS < rows) {
            int row0 = g * TILE_ROWS;
            clear(ctx, acc);
            clear(ctx, acc2);
            for (int k0 = 0; k0 < cols; k0 += TILE_DEPTH) {
                tileQ8(ctx, wt, wg, sg, row0, rows, k0, cols);
                tileQ8(ctx, wt2, wu, su, row0, rows, k0, cols);
                accumulate2(ctx, wt, wt2, xs, acc, acc2, x, n, k0, cols);
            }
            storeSwiglu(ctx, acc, acc2, h, n, row0, rows);
        }
    }

    public static void swigluQ4(KernelContext ctx, IntArray wg, FloatArray sg, IntArray wu, FloatArray su, FloatArray x, FloatArray h, IntArray meta, int rows, int cols) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        float[] wt = ctx.allocateFloatLocalArray(WT_LOCAL);
        float[] wt2 = ctx.allocateFloatLocalArray(WT_LOCAL);
        float[] xs = ctx.allocateFloatLocalArray(XS_LOCAL);
        float[] acc = ctx.allocateFloatLocalArray(ACC_LOCAL);
        float[] acc2 = ctx.allocateFloatLocalArray(ACC_LOCAL);
        int n = meta.get(BatchLayout.ROWS), g = ctx.groupIdx, lid = ctx.localIdx, ls = ctx.localGroupSizeX;
        if (oneRow(meta, n)) {
            float a = KernelSupport.reduceSum(ctx, red, g < rows ? MatVecKernels.partialQ4(wg, sg, x, g, cols, lid, ls) : 0f);
            float b = KernelSupport.reduceSum(ctx, red, g < rows ? MatVecKernels.partialQ4(wu, su, x, g, cols, lid, ls) : 0f);
            if (lid == 0 && g < rows) {
                h.set(g, MatVecKernels.silu(a) * b);
            }
        } else if (g * TILE_ROWS < rows) {
            int row0 = g * TILE_ROWS;
            clear(ctx, acc);
            clear(ctx, acc2);
            for (int k0 = 0; k0 < cols; k0 += TILE_DEPTH) {
                tileQ4(ctx, wt, wg, sg, row0, rows, k0, cols);
                tileQ4(ctx, wt2, wu, su, row0, rows, k0, cols);
                accumulate2(ctx, wt, wt2, xs, acc, acc2, x, n, k0, cols);
            }
            storeSwiglu(ctx, acc, acc2, h, n, row0, rows);
        }
    }
}
