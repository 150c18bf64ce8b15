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
 * <p>That is the {@link BatchLayout#TILES_GROUPS} variant, for GPUs. On CPU OpenCL devices ({@link BatchLayout#TILES_ITEMS},
 * chosen by the host for the device) a work-group is run as a loop over its work-items, vectorised by the compiler
 * across items (PoCL) or not at all, and local memory is ordinary cached memory; there the fast shape is a CPU
 * micro-kernel in one work-item: the first item of each group owns {@link #ITEM_ROWS} matrix rows (SwiGLU: half gate,
 * half up rows, of {@link #ITEM_ROWS}/2 outputs); for each slice of {@link #ITEM_DEPTH} columns it dequantizes its
 * rows once into {@code wt} (staging), then multiplies the slice with every chunk of {@link #ITEM_BATCH} activation
 * rows (staged in {@code xs}), {@link #ITEM_STEP} slice rows at a time: 16 sums in scalar variables over a loop along
 * the columns (contiguous loads, which the compiler vectorises), added to {@code acc}. The path has no barrier and its
 * loops' bounds depend on the item, so a work-group compiler that wraps barrier-free regions in work-item loops leaves
 * the item's loops intact (PoCL puts an implicit barrier into innermost loops whose trip count is the same for all
 * items, which turns every accumulator into a per-item array in memory). Measured on PoCL 3.1, 2-core Xeon (AVX-512),
 * 4096 × 1024 Q8_0 with 64 batch rows: about 20–25 GMAC/s, against 1.3 for the group tiles. Each output is the sum of
 * its slices in column order, each slice summed by the same compiled loop for every row and batch row, so the results
 * do not depend on n or on the other rows of the batch either. The grid needs {@link #itemGroups} groups for it
 * (SwiGLU: of 2 · rows matrix rows).
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

    /** Item tiles: matrix rows a work-group's first item stages and multiplies (output rows: 16, for SwiGLU 8). */
    public static final int ITEM_ROWS = 16;
    /** Item tiles: slice rows per register tile (ITEM_STEP × ITEM_BATCH sums in scalar variables). */
    public static final int ITEM_STEP = 4;
    /** Item tiles: activation rows staged and multiplied at once. */
    public static final int ITEM_BATCH = 4;
    /** Item tiles: columns per staged slice. */
    public static final int ITEM_DEPTH = 128;

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

    /** Work-groups the item-tiled path uses for {@code rows} matrix rows (ITEM_ROWS per group). */
    public static int itemGroups(int rows) {
        return (rows + ITEM_ROWS - 1) / ITEM_ROWS;
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
        } else if (meta.get(BatchLayout.TILES) == BatchLayout.TILES_ITEMS) {
            // item tiles (CPU devices): the group's first work-item alone, see GemmKernels' class comment
            int r0 = g * ITEM_ROWS, live = lid == 0 && r0 < rows ? 1 : 0;
            for (int e = 0; e < live * ITEM_ROWS * BatchLayout.MAX_ROWS; e++) {
                acc[e] = 0f;
            }
            for (int k0 = 0; k0 < cols; k0 += ITEM_DEPTH) {
                int kt = live * (cols - k0 < ITEM_DEPTH ? cols - k0 : ITEM_DEPTH);
                // stage: the slice rows' columns k0 .. k0 + kt, as floats, in wt [slice row][column] (rows past the matrix repeat its last row)
                for (int j = 0; j < ITEM_ROWS; j++) {
                    int base = (r0 + j < rows ? r0 + j : rows - 1) * cols + k0, o = j * ITEM_DEPTH;
                    for (int kk = 0; kk < kt; kk++) {
                        int i = base + kk;
                        wt[o + kk] = w.get(i);
                    }
                }
                // multiply: every chunk of ITEM_BATCH activation rows, staged in xs (rows past n repeat row n - 1; their sums are never stored),
                // by the slice, ITEM_STEP rows of it at a time: 16 sums over the columns, added to acc [batch row][slice row]
                for (int c0 = 0; c0 < live * n; c0 += ITEM_BATCH) {
                    for (int bb = 0; bb < ITEM_BATCH; bb++) {
                        int xo = (c0 + bb < n ? c0 + bb : n - 1) * cols + k0, o = bb * ITEM_DEPTH;
                        for (int kk = 0; kk < kt; kk++) {
                            xs[o + kk] = x.get(xo + kk);
                        }
                    }
                    for (int j0 = 0; j0 < ITEM_ROWS; j0 += ITEM_STEP) {
                        int s0 = j0 * ITEM_DEPTH;
                        float a00 = 0f, a01 = 0f, a02 = 0f, a03 = 0f, a10 = 0f, a11 = 0f, a12 = 0f, a13 = 0f;
                        float a20 = 0f, a21 = 0f, a22 = 0f, a23 = 0f, a30 = 0f, a31 = 0f, a32 = 0f, a33 = 0f;
                        for (int kk = 0; kk < kt; kk++) {
                            float w0 = wt[s0 + kk], w1 = wt[s0 + ITEM_DEPTH + kk], w2 = wt[s0 + 2 * ITEM_DEPTH + kk], w3 = wt[s0 + 3 * ITEM_DEPTH + kk];
                            float u0 = xs[kk], u1 = xs[ITEM_DEPTH + kk], u2 = xs[2 * ITEM_DEPTH + kk], u3 = xs[3 * ITEM_DEPTH + kk];
                            a00 += w0 * u0; a01 += w0 * u1; a02 += w0 * u2; a03 += w0 * u3;
                            a10 += w1 * u0; a11 += w1 * u1; a12 += w1 * u2; a13 += w1 * u3;
                            a20 += w2 * u0; a21 += w2 * u1; a22 += w2 * u2; a23 += w2 * u3;
                            a30 += w3 * u0; a31 += w3 * u1; a32 += w3 * u2; a33 += w3 * u3;
                        }
                        int o = c0 * ITEM_ROWS + j0;
                        acc[o] += a00; acc[o + 1] += a10; acc[o + 2] += a20; acc[o + 3] += a30;
                        acc[o + ITEM_ROWS] += a01; acc[o + ITEM_ROWS + 1] += a11; acc[o + ITEM_ROWS + 2] += a21; acc[o + ITEM_ROWS + 3] += a31;
                        acc[o + 2 * ITEM_ROWS] += a02; acc[o + 2 * ITEM_ROWS + 1] += a12; acc[o + 2 * ITEM_ROWS + 2] += a22; acc[o + 2 * ITEM_ROWS + 3] += a32;
                        acc[o + 3 * ITEM_ROWS] += a03; acc[o + 3 * ITEM_ROWS + 1] += a13; acc[o + 3 * ITEM_ROWS + 2] += a23; acc[o + 3 * ITEM_ROWS + 3] += a33;
                    }
                }
            }
            for (int e = 0; e < live * n * ITEM_ROWS; e++) {
                int b = e / ITEM_ROWS, r = r0 + e - b * ITEM_ROWS;
                if (r < rows) {
                    int o = b * rows + r;
                    float t = biasOff < 0 ? acc[e] : acc[e] + vec.get(biasOff + r);
                    y.set(o, residual != 0 ? y.get(o) + t : t);
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
        } else if (meta.get(BatchLayout.TILES) == BatchLayout.TILES_ITEMS) {
            // item tiles (CPU devices): the group's first work-item alone, see GemmKernels' class comment
            int r0 = g * ITEM_ROWS, live = lid == 0 && r0 < rows ? 1 : 0;
            for (int e = 0; e < live * ITEM_ROWS * BatchLayout.MAX_ROWS; e++) {
                acc[e] = 0f;
            }
            for (int k0 = 0; k0 < cols; k0 += ITEM_DEPTH) {
                int kt = live * (cols - k0 < ITEM_DEPTH ? cols - k0 : ITEM_DEPTH);
                // stage: the slice rows' columns k0 .. k0 + kt, as floats, in wt [slice row][column] (rows past the matrix repeat its last row)
                for (int j = 0; j < ITEM_ROWS; j++) {
                    int base = (r0 + j < rows ? r0 + j : rows - 1) * cols + k0, o = j * ITEM_DEPTH;
                    for (int kk = 0; kk < kt; kk++) {
                        int i = base + kk;
                        wt[o + kk] = w.get(i).getFloat32();
                    }
                }
                // multiply: every chunk of ITEM_BATCH activation rows, staged in xs (rows past n repeat row n - 1; their sums are never stored),
                // by the slice, ITEM_STEP rows of it at a time: 16 sums over the columns, added to acc [batch row][slice row]
                for (int c0 = 0; c0 < live * n; c0 += ITEM_BATCH) {
                    for (int bb = 0; bb < ITEM_BATCH; bb++) {
                        int xo = (c0 + bb < n ? c0 + bb : n - 1) * cols + k0, o = bb * ITEM_DEPTH;
                        for (int kk = 0; kk < kt; kk++) {
                            xs[o + kk] = x.get(xo + kk);
                        }
                    }
                    for (int j0 = 0; j0 < ITEM_ROWS; j0 += ITEM_STEP) {
                        int s0 = j0 * ITEM_DEPTH;
                        float a00 = 0f, a01 = 0f, a02 = 0f, a03 = 0f, a10 = 0f, a11 = 0f, a12 = 0f, a13 = 0f;
                        float a20 = 0f, a21 = 0f, a22 = 0f, a23 = 0f, a30 = 0f, a31 = 0f, a32 = 0f, a33 = 0f;
                        for (int kk = 0; kk < kt; kk++) {
                            float w0 = wt[s0 + kk], w1 = wt[s0 + ITEM_DEPTH + kk], w2 = wt[s0 + 2 * ITEM_DEPTH + kk], w3 = wt[s0 + 3 * ITEM_DEPTH + kk];
                            float u0 = xs[kk], u1 = xs[ITEM_DEPTH + kk], u2 = xs[2 * ITEM_DEPTH + kk], u3 = xs[3 * ITEM_DEPTH + kk];
                            a00 += w0 * u0; a01 += w0 * u1; a02 += w0 * u2; a03 += w0 * u3;
                            a10 += w1 * u0; a11 += w1 * u1; a12 += w1 * u2; a13 += w1 * u3;
                            a20 += w2 * u0; a21 += w2 * u1; a22 += w2 * u2; a23 += w2 * u3;
                            a30 += w3 * u0; a31 += w3 * u1; a32 += w3 * u2; a33 += w3 * u3;
                        }
                        int o = c0 * ITEM_ROWS + j0;
                        acc[o] += a00; acc[o + 1] += a10; acc[o + 2] += a20; acc[o + 3] += a30;
                        acc[o + ITEM_ROWS] += a01; acc[o + ITEM_ROWS + 1] += a11; acc[o + ITEM_ROWS + 2] += a21; acc[o + ITEM_ROWS + 3] += a31;
                        acc[o + 2 * ITEM_ROWS] += a02; acc[o + 2 * ITEM_ROWS + 1] += a12; acc[o + 2 * ITEM_ROWS + 2] += a22; acc[o + 2 * ITEM_ROWS + 3] += a32;
                        acc[o + 3 * ITEM_ROWS] += a03; acc[o + 3 * ITEM_ROWS + 1] += a13; acc[o + 3 * ITEM_ROWS + 2] += a23; acc[o + 3 * ITEM_ROWS + 3] += a33;
                    }
                }
            }
            for (int e = 0; e < live * n * ITEM_ROWS; e++) {
                int b = e / ITEM_ROWS, r = r0 + e - b * ITEM_ROWS;
                if (r < rows) {
                    int o = b * rows + r;
                    float t = biasOff < 0 ? acc[e] : acc[e] + vec.get(biasOff + r);
                    y.set(o, residual != 0 ? y.get(o) + t : t);
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
        } else if (meta.get(BatchLayout.TILES) == BatchLayout.TILES_ITEMS) {
            // item tiles (CPU devices): the group's first work-item alone, see GemmKernels' class comment
            int r0 = g * ITEM_ROWS, live = lid == 0 && r0 < rows ? 1 : 0;
            for (int e = 0; e < live * ITEM_ROWS * BatchLayout.MAX_ROWS; e++) {
                acc[e] = 0f;
            }
            for (int k0 = 0; k0 < cols; k0 += ITEM_DEPTH) {
                int kt = live * (cols - k0 < ITEM_DEPTH ? cols - k0 : ITEM_DEPTH);
                // stage: the slice rows' columns k0 .. k0 + kt, as floats, in wt [slice row][column] (rows past the matrix repeat its last row)
                for (int j = 0; j < ITEM_ROWS; j++) {
                    int base = (r0 + j < rows ? r0 + j : rows - 1) * cols + k0, o = j * ITEM_DEPTH;
                    for (int kk = 0; kk < kt; kk++) {
                        int i = base + kk;
                        wt[o + kk] = KernelSupport.halfToFloat(w.get(i), pow2);
                    }
                }
                // multiply: every chunk of ITEM_BATCH activation rows, staged in xs (rows past n repeat row n - 1; their sums are never stored),
                // by the slice, ITEM_STEP rows of it at a time: 16 sums over the columns, added to acc [batch row][slice row]
                for (int c0 = 0; c0 < live * n; c0 += ITEM_BATCH) {
                    for (int bb = 0; bb < ITEM_BATCH; bb++) {
                        int xo = (c0 + bb < n ? c0 + bb : n - 1) * cols + k0, o = bb * ITEM_DEPTH;
                        for (int kk = 0; kk < kt; kk++) {
                            xs[o + kk] = x.get(xo + kk);
                        }
                    }
                    for (int j0 = 0; j0 < ITEM_ROWS; j0 += ITEM_STEP) {
                        int s0 = j0 * ITEM_DEPTH;
                        float a00 = 0f, a01 = 0f, a02 = 0f, a03 = 0f, a10 = 0f, a11 = 0f, a12 = 0f, a13 = 0f;
                        float a20 = 0f, a21 = 0f, a22 = 0f, a23 = 0f, a30 = 0f, a31 = 0f, a32 = 0f, a33 = 0f;
                        for (int kk = 0; kk < kt; kk++) {
                            float w0 = wt[s0 + kk], w1 = wt[s0 + ITEM_DEPTH + kk], w2 = wt[s0 + 2 * ITEM_DEPTH + kk], w3 = wt[s0 + 3 * ITEM_DEPTH + kk];
                            float u0 = xs[kk], u1 = xs[ITEM_DEPTH + kk], u2 = xs[2 * ITEM_DEPTH + kk], u3 = xs[3 * ITEM_DEPTH + kk];
                            a00 += w0 * u0; a01 += w0 * u1; a02 += w0 * u2; a03 += w0 * u3;
                            a10 += w1 * u0; a11 += w1 * u1; a12 += w1 * u2; a13 += w1 * u3;
                            a20 += w2 * u0; a21 += w2 * u1; a22 += w2 * u2; a23 += w2 * u3;
                            a30 += w3 * u0; a31 += w3 * u1; a32 += w3 * u2; a33 += w3 * u3;
                        }
                        int o = c0 * ITEM_ROWS + j0;
                        acc[o] += a00; acc[o + 1] += a10; acc[o + 2] += a20; acc[o + 3] += a30;
                        acc[o + ITEM_ROWS] += a01; acc[o + ITEM_ROWS + 1] += a11; acc[o + ITEM_ROWS + 2] += a21; acc[o + ITEM_ROWS + 3] += a31;
                        acc[o + 2 * ITEM_ROWS] += a02; acc[o + 2 * ITEM_ROWS + 1] += a12; acc[o + 2 * ITEM_ROWS + 2] += a22; acc[o + 2 * ITEM_ROWS + 3] += a32;
                        acc[o + 3 * ITEM_ROWS] += a03; acc[o + 3 * ITEM_ROWS + 1] += a13; acc[o + 3 * ITEM_ROWS + 2] += a23; acc[o + 3 * ITEM_ROWS + 3] += a33;
                    }
                }
            }
            for (int e = 0; e < live * n * ITEM_ROWS; e++) {
                int b = e / ITEM_ROWS, r = r0 + e - b * ITEM_ROWS;
                if (r < rows) {
                    int o = b * rows + r;
                    float t = biasOff < 0 ? acc[e] : acc[e] + vec.get(biasOff + r);
                    y.set(o, residual != 0 ? y.get(o) + t : t);
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
        } else if (meta.get(BatchLayout.TILES) == BatchLayout.TILES_ITEMS) {
            // item tiles (CPU devices): the group's first work-item alone, see GemmKernels' class comment
            int r0 = g * ITEM_ROWS, live = lid == 0 && r0 < rows ? 1 : 0;
            for (int e = 0; e < live * ITEM_ROWS * BatchLayout.MAX_ROWS; e++) {
                acc[e] = 0f;
            }
            for (int k0 = 0; k0 < cols; k0 += ITEM_DEPTH) {
                int kt = live * (cols - k0 < ITEM_DEPTH ? cols - k0 : ITEM_DEPTH);
                // stage: the slice rows' columns k0 .. k0 + kt, as floats, in wt [slice row][column] (rows past the matrix repeat its last row)
                for (int j = 0; j < ITEM_ROWS; j++) {
                    int wb = ((r0 + j < rows ? r0 + j : rows - 1) * cols + k0) >> 2, o = j * ITEM_DEPTH;
                    for (int kw = 0; kw < kt >> 2; kw++) {
                        int word = w.get(wb + kw);
                        float sc = s.get((wb + kw) >> 3);
                        int p = o + (kw << 2);
                        wt[p] = ((word << 24) >> 24) * sc;
                        wt[p + 1] = ((word << 16) >> 24) * sc;
                        wt[p + 2] = ((word << 8) >> 24) * sc;
                        wt[p + 3] = (word >> 24) * sc;
                    }
                }
                // multiply: every chunk of ITEM_BATCH activation rows, staged in xs (rows past n repeat row n - 1; their sums are never stored),
                // by the slice, ITEM_STEP rows of it at a time: 16 sums over the columns, added to acc [batch row][slice row]
                for (int c0 = 0; c0 < live * n; c0 += ITEM_BATCH) {
                    for (int bb = 0; bb < ITEM_BATCH; bb++) {
                        int xo = (c0 + bb < n ? c0 + bb : n - 1) * cols + k0, o = bb * ITEM_DEPTH;
                        for (int kk = 0; kk < kt; kk++) {
                            xs[o + kk] = x.get(xo + kk);
                        }
                    }
                    for (int j0 = 0; j0 < ITEM_ROWS; j0 += ITEM_STEP) {
                        int s0 = j0 * ITEM_DEPTH;
                        float a00 = 0f, a01 = 0f, a02 = 0f, a03 = 0f, a10 = 0f, a11 = 0f, a12 = 0f, a13 = 0f;
                        float a20 = 0f, a21 = 0f, a22 = 0f, a23 = 0f, a30 = 0f, a31 = 0f, a32 = 0f, a33 = 0f;
                        for (int kk = 0; kk < kt; kk++) {
                            float w0 = wt[s0 + kk], w1 = wt[s0 + ITEM_DEPTH + kk], w2 = wt[s0 + 2 * ITEM_DEPTH + kk], w3 = wt[s0 + 3 * ITEM_DEPTH + kk];
                            float u0 = xs[kk], u1 = xs[ITEM_DEPTH + kk], u2 = xs[2 * ITEM_DEPTH + kk], u3 = xs[3 * ITEM_DEPTH + kk];
                            a00 += w0 * u0; a01 += w0 * u1; a02 += w0 * u2; a03 += w0 * u3;
                            a10 += w1 * u0; a11 += w1 * u1; a12 += w1 * u2; a13 += w1 * u3;
                            a20 += w2 * u0; a21 += w2 * u1; a22 += w2 * u2; a23 += w2 * u3;
                            a30 += w3 * u0; a31 += w3 * u1; a32 += w3 * u2; a33 += w3 * u3;
                        }
                        int o = c0 * ITEM_ROWS + j0;
                        acc[o] += a00; acc[o + 1] += a10; acc[o + 2] += a20; acc[o + 3] += a30;
                        acc[o + ITEM_ROWS] += a01; acc[o + ITEM_ROWS + 1] += a11; acc[o + ITEM_ROWS + 2] += a21; acc[o + ITEM_ROWS + 3] += a31;
                        acc[o + 2 * ITEM_ROWS] += a02; acc[o + 2 * ITEM_ROWS + 1] += a12; acc[o + 2 * ITEM_ROWS + 2] += a22; acc[o + 2 * ITEM_ROWS + 3] += a32;
                        acc[o + 3 * ITEM_ROWS] += a03; acc[o + 3 * ITEM_ROWS + 1] += a13; acc[o + 3 * ITEM_ROWS + 2] += a23; acc[o + 3 * ITEM_ROWS + 3] += a33;
                    }
                }
            }
            for (int e = 0; e < live * n * ITEM_ROWS; e++) {
                int b = e / ITEM_ROWS, r = r0 + e - b * ITEM_ROWS;
                if (r < rows) {
                    int o = b * rows + r;
                    float t = biasOff < 0 ? acc[e] : acc[e] + vec.get(biasOff + r);
                    y.set(o, residual != 0 ? y.get(o) + t : t);
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
        } else if (meta.get(BatchLayout.TILES) == BatchLayout.TILES_ITEMS) {
            // item tiles (CPU devices): the group's first work-item alone, see GemmKernels' class comment
            int r0 = g * ITEM_ROWS, live = lid == 0 && r0 < rows ? 1 : 0;
            for (int e = 0; e < live * ITEM_ROWS * BatchLayout.MAX_ROWS; e++) {
                acc[e] = 0f;
            }
            for (int k0 = 0; k0 < cols; k0 += ITEM_DEPTH) {
                int kt = live * (cols - k0 < ITEM_DEPTH ? cols - k0 : ITEM_DEPTH);
                // stage: the slice rows' columns k0 .. k0 + kt, as floats, in wt [slice row][column] (rows past the matrix repeat its last row)
                for (int j = 0; j < ITEM_ROWS; j++) {
                    int base = (r0 + j < rows ? r0 + j : rows - 1) * cols + k0, o = j * ITEM_DEPTH;
                    for (int kk = 0; kk < kt; kk++) {
                        int i = base + kk;
                        wt[o + kk] = GemmKernels.q4(w, s, i);
                    }
                }
                // multiply: every chunk of ITEM_BATCH activation rows, staged in xs (rows past n repeat row n - 1; their sums are never stored),
                // by the slice, ITEM_STEP rows of it at a time: 16 sums over the columns, added to acc [batch row][slice row]
                for (int c0 = 0; c0 < live * n; c0 += ITEM_BATCH) {
                    for (int bb = 0; bb < ITEM_BATCH; bb++) {
                        int xo = (c0 + bb < n ? c0 + bb : n - 1) * cols + k0, o = bb * ITEM_DEPTH;
                        for (int kk = 0; kk < kt; kk++) {
                            xs[o + kk] = x.get(xo + kk);
                        }
                    }
                    for (int j0 = 0; j0 < ITEM_ROWS; j0 += ITEM_STEP) {
                        int s0 = j0 * ITEM_DEPTH;
                        float a00 = 0f, a01 = 0f, a02 = 0f, a03 = 0f, a10 = 0f, a11 = 0f, a12 = 0f, a13 = 0f;
                        float a20 = 0f, a21 = 0f, a22 = 0f, a23 = 0f, a30 = 0f, a31 = 0f, a32 = 0f, a33 = 0f;
                        for (int kk = 0; kk < kt; kk++) {
                            float w0 = wt[s0 + kk], w1 = wt[s0 + ITEM_DEPTH + kk], w2 = wt[s0 + 2 * ITEM_DEPTH + kk], w3 = wt[s0 + 3 * ITEM_DEPTH + kk];
                            float u0 = xs[kk], u1 = xs[ITEM_DEPTH + kk], u2 = xs[2 * ITEM_DEPTH + kk], u3 = xs[3 * ITEM_DEPTH + kk];
                            a00 += w0 * u0; a01 += w0 * u1; a02 += w0 * u2; a03 += w0 * u3;
                            a10 += w1 * u0; a11 += w1 * u1; a12 += w1 * u2; a13 += w1 * u3;
                            a20 += w2 * u0; a21 += w2 * u1; a22 += w2 * u2; a23 += w2 * u3;
                            a30 += w3 * u0; a31 += w3 * u1; a32 += w3 * u2; a33 += w3 * u3;
                        }
                        int o = c0 * ITEM_ROWS + j0;
                        acc[o] += a00; acc[o + 1] += a10; acc[o + 2] += a20; acc[o + 3] += a30;
                        acc[o + ITEM_ROWS] += a01; acc[o + ITEM_ROWS + 1] += a11; acc[o + ITEM_ROWS + 2] += a21; acc[o + ITEM_ROWS + 3] += a31;
                        acc[o + 2 * ITEM_ROWS] += a02; acc[o + 2 * ITEM_ROWS + 1] += a12; acc[o + 2 * ITEM_ROWS + 2] += a22; acc[o + 2 * ITEM_ROWS + 3] += a32;
                        acc[o + 3 * ITEM_ROWS] += a03; acc[o + 3 * ITEM_ROWS + 1] += a13; acc[o + 3 * ITEM_ROWS + 2] += a23; acc[o + 3 * ITEM_ROWS + 3] += a33;
                    }
                }
            }
            for (int e = 0; e < live * n * ITEM_ROWS; e++) {
                int b = e / ITEM_ROWS, r = r0 + e - b * ITEM_ROWS;
                if (r < rows) {
                    int o = b * rows + r;
                    float t = biasOff < 0 ? acc[e] : acc[e] + vec.get(biasOff + r);
                    y.set(o, residual != 0 ? y.get(o) + t : t);
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
