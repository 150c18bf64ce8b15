package internlm.kernels;

import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.HalfFloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;
import uk.ac.manchester.tornado.api.types.arrays.ShortArray;

/**
 * Matrix products for a batch of rows (Y = X·Wᵀ, X [n × cols], Y [n × rows]; row b of X at b·cols, of Y at b·rows),
 * one kernel per weight type: plain or residual here, fused Q/K/V and SwiGLU in {@link FusedGemmKernels}. The row
 * count n is read from {@link BatchLayout meta}, so one compiled kernel serves every batch size.
 *
 * <p>With n &gt; 1 (or in {@link BatchLayout#MODE_INVARIANT} mode) a work-group computes a tile of
 * {@link #TILE_ROWS} output rows for the batch, in chunks of {@link #CHUNK} batch rows: for each slice of
 * {@link #TILE_DEPTH} columns it dequantizes the weight tile once into local memory (transposed, so work-item r reads
 * row r's column k at consecutive addresses across the group) and stages the chunk's activations beside it; work-item
 * r accumulates its row for every batch row of the chunk (in groups larger than TILE_ROWS, items r, r + TILE_ROWS, …
 * take alternate batch rows), the accumulators staying in local memory. Each weight byte
 * is thus read from global memory once per chunk of CHUNK rows, not once per row. Every output is a sum over the
 * columns in increasing order whatever n and whichever other rows share the batch: the results are batch invariant.
 *
 * <p>With n ≤ {@link #LANE_BATCH} (decode batches) the kernels run the lane products of {@link LaneProducts}: for each
 * batch row in turn, {@code lanes} work-items ({@link BatchLayout#LANES}; the whole group when 0) share one output row,
 * striding over its columns, and add their sums in a fixed tree; a group of wg items computes wg / lanes consecutive
 * rows (the row's weights are re-read from cache for the next batch row). A one-row batch costs one read of the
 * weights, and every row gets exactly the floats it would get alone. The lane and tiled paths sum in different
 * orders, so a row's result depends on whether its pass has more than LANE_BATCH rows (by float rounding);
 * {@link BatchLayout#MODE_INVARIANT} sends every batch through the tiled path, making results independent of the
 * batch. The grid has enough work-groups for both paths ({@link #laneGroups}, {@link #tiles}; groups with nothing to
 * do exit at once). The work-group size must be a power of two of at least TILE_ROWS (64). Biases (InternLM v1's
 * attention output) are added to the product before the residual: y += (x·Wᵀ + bias).
 *
 * <p>Local arrays are used in the kernel methods themselves, never handed to helpers (see
 * {@link KernelSupport#REDUCE_LOCAL} for why); so the per-type kernels repeat the same loop structure and differ only
 * in how a weight element is read.
 */
public final class GemmKernels {
    private GemmKernels() {}

    /** Output rows per work-group in the batched path: one per work-item. */
    public static final int TILE_ROWS = 64;
    /** Columns per weight/activation tile. */
    public static final int TILE_DEPTH = 32;
    /** Batch rows accumulated at once (the accumulators TILE_ROWS × CHUNK live in local memory). */
    public static final int CHUNK = 32;
    /** Row stride of the transposed weight tile [TILE_DEPTH][TILE_ROWS] (padded against bank conflicts). */
    static final int WT_STRIDE = TILE_ROWS + 1;
    static final int WT_LOCAL = TILE_DEPTH * WT_STRIDE;
    static final int XS_LOCAL = CHUNK * TILE_DEPTH;
    static final int ACC_LOCAL = CHUNK * TILE_ROWS;

    /** Batches of up to this many rows run the lane products (decode batches); longer ones the tiled products. */
    public static final int LANE_BATCH = 8;

    /** Whether the lane products apply: few rows, and not the batch-invariant mode. */
    static boolean lanes(IntArray meta, int n) {
        return n <= LANE_BATCH && meta.get(BatchLayout.MODE) != BatchLayout.MODE_INVARIANT;
    }

    /** Work-items per output row of the lane products: meta's {@link BatchLayout#LANES}, or the whole group. */
    static int lanesPerRow(IntArray meta, int wg) {
        int lanes = meta.get(BatchLayout.LANES);
        return lanes <= 0 || lanes > wg ? wg : lanes;
    }

    /** Work-groups the lane path needs for {@code rows} output rows with {@code lanes} items per row in groups of {@code wg}. */
    public static int laneGroups(int rows, int lanes, int wg) {
        int perGroup = wg / Math.min(lanes, wg);
        return (rows + perGroup - 1) / perGroup;
    }

    /** Work-groups the batched path uses for a matrix of {@code rows} rows. */
    public static int tiles(int rows) {
        return (rows + TILE_ROWS - 1) / TILE_ROWS;
    }

    /** Element i (row-major) of a Q8_0 matrix in device layout. */
    static float q8(IntArray q, FloatArray s, int i) {
        int word = q.get(i >> 2);
        return ((word << (24 - ((i & 3) << 3))) >> 24) * s.get(i >> 5);
    }

    /** Element i (row-major) of a Q4_0 matrix in device layout. */
    static float q4(IntArray q, FloatArray s, int i) {
        int block = i >> 5, j = i & 31;
        int byteIndex = j & 15;
        int word = q.get((block << 2) + (byteIndex >> 2));
        int b = (word >> ((byteIndex & 3) << 3)) & 255;
        int nib = j < 16 ? (b & 15) : (b >> 4);
        return (nib - 8) * s.get(block);
    }

    // ------------------------------------------------------------------ Y = X·Wᵀ (residual != 0: Y += X·Wᵀ); n = meta[count]

    public static void gemmF32(KernelContext ctx, FloatArray w, FloatArray x, FloatArray y, FloatArray vec, IntArray meta, int count, int rows, int cols,
                              int residual, int biasOff) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        float[] wt = ctx.allocateFloatLocalArray(WT_LOCAL);
        float[] xs = ctx.allocateFloatLocalArray(XS_LOCAL);
        float[] acc = ctx.allocateFloatLocalArray(ACC_LOCAL);
        int n = meta.get(count), g = ctx.groupIdx, lid = ctx.localIdx, wg = ctx.localGroupSizeX;
        if (lanes(meta, n)) {
            int lanes = lanesPerRow(meta, wg), t = lid & (lanes - 1), row = g * (wg / lanes) + lid / lanes;
            for (int b = 0; b < n; b++) {
                float p = row < rows ? LaneProducts.dotF32(w, x, b * cols, row, cols, t, lanes) : 0f;
                float sum = KernelSupport.reduceSegments(ctx, red, p, lanes);
                if (t == 0 && row < rows) {
                    int o = b * rows + row;
                    float v = biasOff < 0 ? sum : sum + vec.get(biasOff + row);
                    y.set(o, residual != 0 ? y.get(o) + v : v);
                }
            }
        } else if (g * TILE_ROWS < rows) {
            int row0 = g * TILE_ROWS, mRows = rows;
            for (int c0 = 0; c0 < n; c0 += CHUNK) {
                int nc = n - c0 < CHUNK ? n - c0 : CHUNK;
                for (int e = lid; e < CHUNK * TILE_ROWS; e += wg) {
                    acc[e] = 0f;
                }
                for (int k0 = 0; k0 < cols; k0 += TILE_DEPTH) {
                    for (int e = lid; e < TILE_ROWS * TILE_DEPTH; e += wg) {
                        int r = e / TILE_DEPTH;
                        int kk = e - r * TILE_DEPTH;
                        int i = (row0 + r) * cols + k0 + kk;
                        boolean in = row0 + r < mRows && k0 + kk < cols;
                        wt[kk * WT_STRIDE + r] = in ? w.get(i) : 0f;
                    }
                    for (int e = lid; e < nc * TILE_DEPTH; e += wg) {
                        int b = e / TILE_DEPTH;
                        int kk = e - b * TILE_DEPTH;
                        xs[e] = k0 + kk < cols ? x.get((c0 + b) * cols + k0 + kk) : 0f;
                    }
                    ctx.localBarrier();
                    {
                        int r = lid % TILE_ROWS;
                        for (int b = lid / TILE_ROWS; b < nc; b += wg / TILE_ROWS) {
                            float a = acc[b * TILE_ROWS + r];
                            for (int kk = 0; kk < TILE_DEPTH; kk++) {
                                a += wt[kk * WT_STRIDE + r] * xs[b * TILE_DEPTH + kk];
                            }
                            acc[b * TILE_ROWS + r] = a;
                        }
                    }
                    ctx.localBarrier();
                }
                for (int e = lid; e < nc * TILE_ROWS; e += wg) {
                    int b = e / TILE_ROWS;
                    int r = e - b * TILE_ROWS;
                    if (row0 + r < mRows) {
                        int o = (c0 + b) * rows + row0 + r;
                        float t = biasOff < 0 ? acc[e] : acc[e] + vec.get(biasOff + row0 + r);
                        y.set(o, residual != 0 ? y.get(o) + t : t);
                    }
                }
                ctx.localBarrier();
            }
        }
    }
    public static void gemmF16(KernelContext ctx, HalfFloatArray w, FloatArray x, FloatArray y, FloatArray vec, IntArray meta, int count, int rows, int cols,
                              int residual, int biasOff) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        float[] wt = ctx.allocateFloatLocalArray(WT_LOCAL);
        float[] xs = ctx.allocateFloatLocalArray(XS_LOCAL);
        float[] acc = ctx.allocateFloatLocalArray(ACC_LOCAL);
        int n = meta.get(count), g = ctx.groupIdx, lid = ctx.localIdx, wg = ctx.localGroupSizeX;
        if (lanes(meta, n)) {
            int lanes = lanesPerRow(meta, wg), t = lid & (lanes - 1), row = g * (wg / lanes) + lid / lanes;
            for (int b = 0; b < n; b++) {
                float p = row < rows ? LaneProducts.dotF16(w, x, b * cols, row, cols, t, lanes) : 0f;
                float sum = KernelSupport.reduceSegments(ctx, red, p, lanes);
                if (t == 0 && row < rows) {
                    int o = b * rows + row;
                    float v = biasOff < 0 ? sum : sum + vec.get(biasOff + row);
                    y.set(o, residual != 0 ? y.get(o) + v : v);
                }
            }
        } else if (g * TILE_ROWS < rows) {
            int row0 = g * TILE_ROWS, mRows = rows;
            for (int c0 = 0; c0 < n; c0 += CHUNK) {
                int nc = n - c0 < CHUNK ? n - c0 : CHUNK;
                for (int e = lid; e < CHUNK * TILE_ROWS; e += wg) {
                    acc[e] = 0f;
                }
                for (int k0 = 0; k0 < cols; k0 += TILE_DEPTH) {
                    for (int e = lid; e < TILE_ROWS * TILE_DEPTH; e += wg) {
                        int r = e / TILE_DEPTH;
                        int kk = e - r * TILE_DEPTH;
                        int i = (row0 + r) * cols + k0 + kk;
                        boolean in = row0 + r < mRows && k0 + kk < cols;
                        wt[kk * WT_STRIDE + r] = in ? w.get(i).getFloat32() : 0f;
                    }
                    for (int e = lid; e < nc * TILE_DEPTH; e += wg) {
                        int b = e / TILE_DEPTH;
                        int kk = e - b * TILE_DEPTH;
                        xs[e] = k0 + kk < cols ? x.get((c0 + b) * cols + k0 + kk) : 0f;
                    }
                    ctx.localBarrier();
                    {
                        int r = lid % TILE_ROWS;
                        for (int b = lid / TILE_ROWS; b < nc; b += wg / TILE_ROWS) {
                            float a = acc[b * TILE_ROWS + r];
                            for (int kk = 0; kk < TILE_DEPTH; kk++) {
                                a += wt[kk * WT_STRIDE + r] * xs[b * TILE_DEPTH + kk];
                            }
                            acc[b * TILE_ROWS + r] = a;
                        }
                    }
                    ctx.localBarrier();
                }
                for (int e = lid; e < nc * TILE_ROWS; e += wg) {
                    int b = e / TILE_ROWS;
                    int r = e - b * TILE_ROWS;
                    if (row0 + r < mRows) {
                        int o = (c0 + b) * rows + row0 + r;
                        float t = biasOff < 0 ? acc[e] : acc[e] + vec.get(biasOff + row0 + r);
                        y.set(o, residual != 0 ? y.get(o) + t : t);
                    }
                }
                ctx.localBarrier();
            }
        }
    }
    public static void gemmF16Bits(KernelContext ctx, ShortArray w, FloatArray pow2, FloatArray x, FloatArray y, FloatArray vec, IntArray meta, int count, int rows, int cols,
                              int residual, int biasOff) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        float[] wt = ctx.allocateFloatLocalArray(WT_LOCAL);
        float[] xs = ctx.allocateFloatLocalArray(XS_LOCAL);
        float[] acc = ctx.allocateFloatLocalArray(ACC_LOCAL);
        int n = meta.get(count), g = ctx.groupIdx, lid = ctx.localIdx, wg = ctx.localGroupSizeX;
        if (lanes(meta, n)) {
            int lanes = lanesPerRow(meta, wg), t = lid & (lanes - 1), row = g * (wg / lanes) + lid / lanes;
            for (int b = 0; b < n; b++) {
                float p = row < rows ? LaneProducts.dotF16Bits(w, pow2, x, b * cols, row, cols, t, lanes) : 0f;
                float sum = KernelSupport.reduceSegments(ctx, red, p, lanes);
                if (t == 0 && row < rows) {
                    int o = b * rows + row;
                    float v = biasOff < 0 ? sum : sum + vec.get(biasOff + row);
                    y.set(o, residual != 0 ? y.get(o) + v : v);
                }
            }
        } else if (g * TILE_ROWS < rows) {
            int row0 = g * TILE_ROWS, mRows = rows;
            for (int c0 = 0; c0 < n; c0 += CHUNK) {
                int nc = n - c0 < CHUNK ? n - c0 : CHUNK;
                for (int e = lid; e < CHUNK * TILE_ROWS; e += wg) {
                    acc[e] = 0f;
                }
                for (int k0 = 0; k0 < cols; k0 += TILE_DEPTH) {
                    for (int e = lid; e < TILE_ROWS * TILE_DEPTH; e += wg) {
                        int r = e / TILE_DEPTH;
                        int kk = e - r * TILE_DEPTH;
                        int i = (row0 + r) * cols + k0 + kk;
                        boolean in = row0 + r < mRows && k0 + kk < cols;
                        wt[kk * WT_STRIDE + r] = in ? KernelSupport.halfToFloat(w.get(i), pow2) : 0f;
                    }
                    for (int e = lid; e < nc * TILE_DEPTH; e += wg) {
                        int b = e / TILE_DEPTH;
                        int kk = e - b * TILE_DEPTH;
                        xs[e] = k0 + kk < cols ? x.get((c0 + b) * cols + k0 + kk) : 0f;
                    }
                    ctx.localBarrier();
                    {
                        int r = lid % TILE_ROWS;
                        for (int b = lid / TILE_ROWS; b < nc; b += wg / TILE_ROWS) {
                            float a = acc[b * TILE_ROWS + r];
                            for (int kk = 0; kk < TILE_DEPTH; kk++) {
                                a += wt[kk * WT_STRIDE + r] * xs[b * TILE_DEPTH + kk];
                            }
                            acc[b * TILE_ROWS + r] = a;
                        }
                    }
                    ctx.localBarrier();
                }
                for (int e = lid; e < nc * TILE_ROWS; e += wg) {
                    int b = e / TILE_ROWS;
                    int r = e - b * TILE_ROWS;
                    if (row0 + r < mRows) {
                        int o = (c0 + b) * rows + row0 + r;
                        float t = biasOff < 0 ? acc[e] : acc[e] + vec.get(biasOff + row0 + r);
                        y.set(o, residual != 0 ? y.get(o) + t : t);
                    }
                }
                ctx.localBarrier();
            }
        }
    }
    public static void gemmQ8(KernelContext ctx, IntArray w, FloatArray s, FloatArray x, FloatArray y, FloatArray vec, IntArray meta, int count, int rows, int cols,
                              int residual, int biasOff) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        float[] wt = ctx.allocateFloatLocalArray(WT_LOCAL);
        float[] xs = ctx.allocateFloatLocalArray(XS_LOCAL);
        float[] acc = ctx.allocateFloatLocalArray(ACC_LOCAL);
        int n = meta.get(count), g = ctx.groupIdx, lid = ctx.localIdx, wg = ctx.localGroupSizeX;
        if (lanes(meta, n)) {
            int lanes = lanesPerRow(meta, wg), t = lid & (lanes - 1), row = g * (wg / lanes) + lid / lanes;
            for (int b = 0; b < n; b++) {
                float p = row < rows ? LaneProducts.dotQ8(w, s, x, b * cols, row, cols, t, lanes) : 0f;
                float sum = KernelSupport.reduceSegments(ctx, red, p, lanes);
                if (t == 0 && row < rows) {
                    int o = b * rows + row;
                    float v = biasOff < 0 ? sum : sum + vec.get(biasOff + row);
                    y.set(o, residual != 0 ? y.get(o) + v : v);
                }
            }
        } else if (g * TILE_ROWS < rows) {
            int row0 = g * TILE_ROWS, mRows = rows;
            for (int c0 = 0; c0 < n; c0 += CHUNK) {
                int nc = n - c0 < CHUNK ? n - c0 : CHUNK;
                for (int e = lid; e < CHUNK * TILE_ROWS; e += wg) {
                    acc[e] = 0f;
                }
                for (int k0 = 0; k0 < cols; k0 += TILE_DEPTH) {
                    for (int e = lid; e < TILE_ROWS * TILE_DEPTH; e += wg) {
                        int r = e / TILE_DEPTH;
                        int kk = e - r * TILE_DEPTH;
                        int i = (row0 + r) * cols + k0 + kk;
                        boolean in = row0 + r < mRows && k0 + kk < cols;
                        wt[kk * WT_STRIDE + r] = in ? GemmKernels.q8(w, s, i) : 0f;
                    }
                    for (int e = lid; e < nc * TILE_DEPTH; e += wg) {
                        int b = e / TILE_DEPTH;
                        int kk = e - b * TILE_DEPTH;
                        xs[e] = k0 + kk < cols ? x.get((c0 + b) * cols + k0 + kk) : 0f;
                    }
                    ctx.localBarrier();
                    {
                        int r = lid % TILE_ROWS;
                        for (int b = lid / TILE_ROWS; b < nc; b += wg / TILE_ROWS) {
                            float a = acc[b * TILE_ROWS + r];
                            for (int kk = 0; kk < TILE_DEPTH; kk++) {
                                a += wt[kk * WT_STRIDE + r] * xs[b * TILE_DEPTH + kk];
                            }
                            acc[b * TILE_ROWS + r] = a;
                        }
                    }
                    ctx.localBarrier();
                }
                for (int e = lid; e < nc * TILE_ROWS; e += wg) {
                    int b = e / TILE_ROWS;
                    int r = e - b * TILE_ROWS;
                    if (row0 + r < mRows) {
                        int o = (c0 + b) * rows + row0 + r;
                        float t = biasOff < 0 ? acc[e] : acc[e] + vec.get(biasOff + row0 + r);
                        y.set(o, residual != 0 ? y.get(o) + t : t);
                    }
                }
                ctx.localBarrier();
            }
        }
    }
    public static void gemmQ4(KernelContext ctx, IntArray w, FloatArray s, FloatArray x, FloatArray y, FloatArray vec, IntArray meta, int count, int rows, int cols,
                              int residual, int biasOff) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        float[] wt = ctx.allocateFloatLocalArray(WT_LOCAL);
        float[] xs = ctx.allocateFloatLocalArray(XS_LOCAL);
        float[] acc = ctx.allocateFloatLocalArray(ACC_LOCAL);
        int n = meta.get(count), g = ctx.groupIdx, lid = ctx.localIdx, wg = ctx.localGroupSizeX;
        if (lanes(meta, n)) {
            int lanes = lanesPerRow(meta, wg), t = lid & (lanes - 1), row = g * (wg / lanes) + lid / lanes;
            for (int b = 0; b < n; b++) {
                float p = row < rows ? LaneProducts.dotQ4(w, s, x, b * cols, row, cols, t, lanes) : 0f;
                float sum = KernelSupport.reduceSegments(ctx, red, p, lanes);
                if (t == 0 && row < rows) {
                    int o = b * rows + row;
                    float v = biasOff < 0 ? sum : sum + vec.get(biasOff + row);
                    y.set(o, residual != 0 ? y.get(o) + v : v);
                }
            }
        } else if (g * TILE_ROWS < rows) {
            int row0 = g * TILE_ROWS, mRows = rows;
            for (int c0 = 0; c0 < n; c0 += CHUNK) {
                int nc = n - c0 < CHUNK ? n - c0 : CHUNK;
                for (int e = lid; e < CHUNK * TILE_ROWS; e += wg) {
                    acc[e] = 0f;
                }
                for (int k0 = 0; k0 < cols; k0 += TILE_DEPTH) {
                    for (int e = lid; e < TILE_ROWS * TILE_DEPTH; e += wg) {
                        int r = e / TILE_DEPTH;
                        int kk = e - r * TILE_DEPTH;
                        int i = (row0 + r) * cols + k0 + kk;
                        boolean in = row0 + r < mRows && k0 + kk < cols;
                        wt[kk * WT_STRIDE + r] = in ? GemmKernels.q4(w, s, i) : 0f;
                    }
                    for (int e = lid; e < nc * TILE_DEPTH; e += wg) {
                        int b = e / TILE_DEPTH;
                        int kk = e - b * TILE_DEPTH;
                        xs[e] = k0 + kk < cols ? x.get((c0 + b) * cols + k0 + kk) : 0f;
                    }
                    ctx.localBarrier();
                    {
                        int r = lid % TILE_ROWS;
                        for (int b = lid / TILE_ROWS; b < nc; b += wg / TILE_ROWS) {
                            float a = acc[b * TILE_ROWS + r];
                            for (int kk = 0; kk < TILE_DEPTH; kk++) {
                                a += wt[kk * WT_STRIDE + r] * xs[b * TILE_DEPTH + kk];
                            }
                            acc[b * TILE_ROWS + r] = a;
                        }
                    }
                    ctx.localBarrier();
                }
                for (int e = lid; e < nc * TILE_ROWS; e += wg) {
                    int b = e / TILE_ROWS;
                    int r = e - b * TILE_ROWS;
                    if (row0 + r < mRows) {
                        int o = (c0 + b) * rows + row0 + r;
                        float t = biasOff < 0 ? acc[e] : acc[e] + vec.get(biasOff + row0 + r);
                        y.set(o, residual != 0 ? y.get(o) + t : t);
                    }
                }
                ctx.localBarrier();
            }
        }
    }
}
