package internlm.kernels;

import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.math.TornadoMath;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.HalfFloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;
import uk.ac.manchester.tornado.api.types.arrays.ShortArray;

import static internlm.kernels.GemmKernels.*;

/**
 * The fused batched products, laid out as {@link GemmKernels}: Q/K/V (three matrices on the same input, one launch:
 * one-row path groups [0, qRows) → q, then k, then v; batched path tiles of q, then of k, then of v) and SwiGLU
 * (H = silu(X·Wgᵀ) ⊙ (X·Wuᵀ), the gate and up tiles side by side). n = meta[ROWS].
 */
public final class FusedGemmKernels {
    private FusedGemmKernels() {}

    /** Output g of batch row b of a lane product: q, then k, then v. */
    static void storeQkv(FloatArray q, FloatArray k, FloatArray v, int b, int g, float t, int qRows, int kvRows) {
        if (g < qRows) {
            q.set(b * qRows + g, t);
        } else if (g < qRows + kvRows) {
            k.set(b * kvRows + g - qRows, t);
        } else if (g < qRows + 2 * kvRows) {
            v.set(b * kvRows + g - qRows - kvRows, t);
        }
    }

    public static void qkvF32(KernelContext ctx, FloatArray w, FloatArray x, FloatArray xn, FloatArray vec,
                              FloatArray q, FloatArray k, FloatArray v, IntArray meta, int qRows, int kvRows, int cols, int normOff, int biasOff) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        float[] wt = ctx.allocateFloatLocalArray(WT_LOCAL);
        float[] xs = ctx.allocateFloatLocalArray(XS_LOCAL);
        float[] acc = ctx.allocateFloatLocalArray(ACC_LOCAL);
        int n = meta.get(BatchLayout.ROWS), g = ctx.groupIdx, lid = ctx.localIdx, wg = ctx.localGroupSizeX;
        int tq = tiles(qRows), tk = tiles(kvRows);
        if (lanes(meta, n)) {
            int lanes = lanesPerRow(meta, wg), t = lid & (lanes - 1), row = g * (wg / lanes) + lid / lanes, total = qRows + 2 * kvRows;
            for (int b = 0; b < n; b++) {
                int xo = b * cols;
                float scale = 0f;
                if (normOff >= 0) {
                    float ss = KernelSupport.reduceSum(ctx, red, LaneProducts.sumSquares(x, xo, cols, lid, wg));
                    scale = 1.0f / TornadoMath.sqrt(ss / cols + vec.get(normOff + cols));
                }
                float p = 0f;
                if (row < total) {
                    p = normOff >= 0 ? LaneProducts.dotF32Norm(w, x, xo, vec, normOff, scale, row, cols, t, lanes) : LaneProducts.dotF32(w, xn, xo, row, cols, t, lanes);
                }
                float sum = KernelSupport.reduceSegments(ctx, red, p, lanes);
                if (t == 0 && row < total) {
                    storeQkv(q, k, v, b, row, biasOff < 0 ? sum : sum + vec.get(biasOff + row), qRows, kvRows);
                }
            }
        } else if (g < tq + 2 * tk) {
            int m = g < tq ? 0 : g < tq + tk ? 1 : 2;
            int row0 = (m == 0 ? g : m == 1 ? g - tq : g - tq - tk) * TILE_ROWS, mRows = m == 0 ? qRows : kvRows;
            int rowBase = m == 0 ? 0 : m == 1 ? qRows : qRows + kvRows;
            for (int c0 = 0; c0 < n; c0 += CHUNK) {
                int nc = n - c0 < CHUNK ? n - c0 : CHUNK;
                for (int e = lid; e < CHUNK * TILE_ROWS; e += wg) {
                    acc[e] = 0f;
                }
                for (int k0 = 0; k0 < cols; k0 += TILE_DEPTH) {
                    for (int e = lid; e < TILE_ROWS * TILE_DEPTH; e += wg) {
                        int r = e / TILE_DEPTH;
                        int kk = e - r * TILE_DEPTH;
                        int i = (rowBase + row0 + r) * cols + k0 + kk;
                        boolean in = row0 + r < mRows && k0 + kk < cols;
                        wt[kk * WT_STRIDE + r] = in ? w.get(i) : 0f;
                    }
                    for (int e = lid; e < nc * TILE_DEPTH; e += wg) {
                        int b = e / TILE_DEPTH;
                        int kk = e - b * TILE_DEPTH;
                        xs[e] = k0 + kk < cols ? xn.get((c0 + b) * cols + k0 + kk) : 0f;
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
                        float t = biasOff < 0 ? acc[e] : acc[e] + vec.get(biasOff + rowBase + row0 + r);
                        if (m == 0) {
                            q.set((c0 + b) * qRows + row0 + r, t);
                        } else if (m == 1) {
                            k.set((c0 + b) * kvRows + row0 + r, t);
                        } else {
                            v.set((c0 + b) * kvRows + row0 + r, t);
                        }
                    }
                }
                ctx.localBarrier();
            }
        }
    }
    public static void qkvF16(KernelContext ctx, HalfFloatArray w, FloatArray x, FloatArray xn, FloatArray vec,
                              FloatArray q, FloatArray k, FloatArray v, IntArray meta, int qRows, int kvRows, int cols, int normOff, int biasOff) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        float[] wt = ctx.allocateFloatLocalArray(WT_LOCAL);
        float[] xs = ctx.allocateFloatLocalArray(XS_LOCAL);
        float[] acc = ctx.allocateFloatLocalArray(ACC_LOCAL);
        int n = meta.get(BatchLayout.ROWS), g = ctx.groupIdx, lid = ctx.localIdx, wg = ctx.localGroupSizeX;
        int tq = tiles(qRows), tk = tiles(kvRows);
        if (lanes(meta, n)) {
            int lanes = lanesPerRow(meta, wg), t = lid & (lanes - 1), row = g * (wg / lanes) + lid / lanes, total = qRows + 2 * kvRows;
            for (int b = 0; b < n; b++) {
                int xo = b * cols;
                float scale = 0f;
                if (normOff >= 0) {
                    float ss = KernelSupport.reduceSum(ctx, red, LaneProducts.sumSquares(x, xo, cols, lid, wg));
                    scale = 1.0f / TornadoMath.sqrt(ss / cols + vec.get(normOff + cols));
                }
                float p = 0f;
                if (row < total) {
                    p = normOff >= 0 ? LaneProducts.dotF16Norm(w, x, xo, vec, normOff, scale, row, cols, t, lanes) : LaneProducts.dotF16(w, xn, xo, row, cols, t, lanes);
                }
                float sum = KernelSupport.reduceSegments(ctx, red, p, lanes);
                if (t == 0 && row < total) {
                    storeQkv(q, k, v, b, row, biasOff < 0 ? sum : sum + vec.get(biasOff + row), qRows, kvRows);
                }
            }
        } else if (g < tq + 2 * tk) {
            int m = g < tq ? 0 : g < tq + tk ? 1 : 2;
            int row0 = (m == 0 ? g : m == 1 ? g - tq : g - tq - tk) * TILE_ROWS, mRows = m == 0 ? qRows : kvRows;
            int rowBase = m == 0 ? 0 : m == 1 ? qRows : qRows + kvRows;
            for (int c0 = 0; c0 < n; c0 += CHUNK) {
                int nc = n - c0 < CHUNK ? n - c0 : CHUNK;
                for (int e = lid; e < CHUNK * TILE_ROWS; e += wg) {
                    acc[e] = 0f;
                }
                for (int k0 = 0; k0 < cols; k0 += TILE_DEPTH) {
                    for (int e = lid; e < TILE_ROWS * TILE_DEPTH; e += wg) {
                        int r = e / TILE_DEPTH;
                        int kk = e - r * TILE_DEPTH;
                        int i = (rowBase + row0 + r) * cols + k0 + kk;
                        boolean in = row0 + r < mRows && k0 + kk < cols;
                        wt[kk * WT_STRIDE + r] = in ? w.get(i).getFloat32() : 0f;
                    }
                    for (int e = lid; e < nc * TILE_DEPTH; e += wg) {
                        int b = e / TILE_DEPTH;
                        int kk = e - b * TILE_DEPTH;
                        xs[e] = k0 + kk < cols ? xn.get((c0 + b) * cols + k0 + kk) : 0f;
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
                        float t = biasOff < 0 ? acc[e] : acc[e] + vec.get(biasOff + rowBase + row0 + r);
                        if (m == 0) {
                            q.set((c0 + b) * qRows + row0 + r, t);
                        } else if (m == 1) {
                            k.set((c0 + b) * kvRows + row0 + r, t);
                        } else {
                            v.set((c0 + b) * kvRows + row0 + r, t);
                        }
                    }
                }
                ctx.localBarrier();
            }
        }
    }
    public static void qkvF16Bits(KernelContext ctx, ShortArray w, FloatArray pow2, FloatArray x, FloatArray xn, FloatArray vec,
                              FloatArray q, FloatArray k, FloatArray v, IntArray meta, int qRows, int kvRows, int cols, int normOff, int biasOff) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        float[] wt = ctx.allocateFloatLocalArray(WT_LOCAL);
        float[] xs = ctx.allocateFloatLocalArray(XS_LOCAL);
        float[] acc = ctx.allocateFloatLocalArray(ACC_LOCAL);
        int n = meta.get(BatchLayout.ROWS), g = ctx.groupIdx, lid = ctx.localIdx, wg = ctx.localGroupSizeX;
        int tq = tiles(qRows), tk = tiles(kvRows);
        if (lanes(meta, n)) {
            int lanes = lanesPerRow(meta, wg), t = lid & (lanes - 1), row = g * (wg / lanes) + lid / lanes, total = qRows + 2 * kvRows;
            for (int b = 0; b < n; b++) {
                int xo = b * cols;
                float scale = 0f;
                if (normOff >= 0) {
                    float ss = KernelSupport.reduceSum(ctx, red, LaneProducts.sumSquares(x, xo, cols, lid, wg));
                    scale = 1.0f / TornadoMath.sqrt(ss / cols + vec.get(normOff + cols));
                }
                float p = 0f;
                if (row < total) {
                    p = normOff >= 0 ? LaneProducts.dotF16BitsNorm(w, pow2, x, xo, vec, normOff, scale, row, cols, t, lanes) : LaneProducts.dotF16Bits(w, pow2, xn, xo, row, cols, t, lanes);
                }
                float sum = KernelSupport.reduceSegments(ctx, red, p, lanes);
                if (t == 0 && row < total) {
                    storeQkv(q, k, v, b, row, biasOff < 0 ? sum : sum + vec.get(biasOff + row), qRows, kvRows);
                }
            }
        } else if (g < tq + 2 * tk) {
            int m = g < tq ? 0 : g < tq + tk ? 1 : 2;
            int row0 = (m == 0 ? g : m == 1 ? g - tq : g - tq - tk) * TILE_ROWS, mRows = m == 0 ? qRows : kvRows;
            int rowBase = m == 0 ? 0 : m == 1 ? qRows : qRows + kvRows;
            for (int c0 = 0; c0 < n; c0 += CHUNK) {
                int nc = n - c0 < CHUNK ? n - c0 : CHUNK;
                for (int e = lid; e < CHUNK * TILE_ROWS; e += wg) {
                    acc[e] = 0f;
                }
                for (int k0 = 0; k0 < cols; k0 += TILE_DEPTH) {
                    for (int e = lid; e < TILE_ROWS * TILE_DEPTH; e += wg) {
                        int r = e / TILE_DEPTH;
                        int kk = e - r * TILE_DEPTH;
                        int i = (rowBase + row0 + r) * cols + k0 + kk;
                        boolean in = row0 + r < mRows && k0 + kk < cols;
                        wt[kk * WT_STRIDE + r] = in ? KernelSupport.halfToFloat(w.get(i), pow2) : 0f;
                    }
                    for (int e = lid; e < nc * TILE_DEPTH; e += wg) {
                        int b = e / TILE_DEPTH;
                        int kk = e - b * TILE_DEPTH;
                        xs[e] = k0 + kk < cols ? xn.get((c0 + b) * cols + k0 + kk) : 0f;
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
                        float t = biasOff < 0 ? acc[e] : acc[e] + vec.get(biasOff + rowBase + row0 + r);
                        if (m == 0) {
                            q.set((c0 + b) * qRows + row0 + r, t);
                        } else if (m == 1) {
                            k.set((c0 + b) * kvRows + row0 + r, t);
                        } else {
                            v.set((c0 + b) * kvRows + row0 + r, t);
                        }
                    }
                }
                ctx.localBarrier();
            }
        }
    }
    public static void qkvQ8(KernelContext ctx, IntArray w, FloatArray s, FloatArray x, FloatArray xn, FloatArray vec,
                              FloatArray q, FloatArray k, FloatArray v, IntArray meta, int qRows, int kvRows, int cols, int normOff, int biasOff) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        float[] wt = ctx.allocateFloatLocalArray(WT_LOCAL);
        float[] xs = ctx.allocateFloatLocalArray(XS_LOCAL);
        float[] acc = ctx.allocateFloatLocalArray(ACC_LOCAL);
        int n = meta.get(BatchLayout.ROWS), g = ctx.groupIdx, lid = ctx.localIdx, wg = ctx.localGroupSizeX;
        int tq = tiles(qRows), tk = tiles(kvRows);
        if (lanes(meta, n)) {
            int lanes = lanesPerRow(meta, wg), t = lid & (lanes - 1), row = g * (wg / lanes) + lid / lanes, total = qRows + 2 * kvRows;
            for (int b = 0; b < n; b++) {
                int xo = b * cols;
                float scale = 0f;
                if (normOff >= 0) {
                    float ss = KernelSupport.reduceSum(ctx, red, LaneProducts.sumSquares(x, xo, cols, lid, wg));
                    scale = 1.0f / TornadoMath.sqrt(ss / cols + vec.get(normOff + cols));
                }
                float p = 0f;
                if (row < total) {
                    p = normOff >= 0 ? LaneProducts.dotQ8Norm(w, s, x, xo, vec, normOff, scale, row, cols, t, lanes) : LaneProducts.dotQ8(w, s, xn, xo, row, cols, t, lanes);
                }
                float sum = KernelSupport.reduceSegments(ctx, red, p, lanes);
                if (t == 0 && row < total) {
                    storeQkv(q, k, v, b, row, biasOff < 0 ? sum : sum + vec.get(biasOff + row), qRows, kvRows);
                }
            }
        } else if (g < tq + 2 * tk) {
            int m = g < tq ? 0 : g < tq + tk ? 1 : 2;
            int row0 = (m == 0 ? g : m == 1 ? g - tq : g - tq - tk) * TILE_ROWS, mRows = m == 0 ? qRows : kvRows;
            int rowBase = m == 0 ? 0 : m == 1 ? qRows : qRows + kvRows;
            for (int c0 = 0; c0 < n; c0 += CHUNK) {
                int nc = n - c0 < CHUNK ? n - c0 : CHUNK;
                for (int e = lid; e < CHUNK * TILE_ROWS; e += wg) {
                    acc[e] = 0f;
                }
                for (int k0 = 0; k0 < cols; k0 += TILE_DEPTH) {
                    for (int e = lid; e < TILE_ROWS * TILE_DEPTH; e += wg) {
                        int r = e / TILE_DEPTH;
                        int kk = e - r * TILE_DEPTH;
                        int i = (rowBase + row0 + r) * cols + k0 + kk;
                        boolean in = row0 + r < mRows && k0 + kk < cols;
                        wt[kk * WT_STRIDE + r] = in ? GemmKernels.q8(w, s, i) : 0f;
                    }
                    for (int e = lid; e < nc * TILE_DEPTH; e += wg) {
                        int b = e / TILE_DEPTH;
                        int kk = e - b * TILE_DEPTH;
                        xs[e] = k0 + kk < cols ? xn.get((c0 + b) * cols + k0 + kk) : 0f;
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
                        float t = biasOff < 0 ? acc[e] : acc[e] + vec.get(biasOff + rowBase + row0 + r);
                        if (m == 0) {
                            q.set((c0 + b) * qRows + row0 + r, t);
                        } else if (m == 1) {
                            k.set((c0 + b) * kvRows + row0 + r, t);
                        } else {
                            v.set((c0 + b) * kvRows + row0 + r, t);
                        }
                    }
                }
                ctx.localBarrier();
            }
        }
    }
    public static void qkvQ4(KernelContext ctx, IntArray w, FloatArray s, FloatArray x, FloatArray xn, FloatArray vec,
                              FloatArray q, FloatArray k, FloatArray v, IntArray meta, int qRows, int kvRows, int cols, int normOff, int biasOff) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        float[] wt = ctx.allocateFloatLocalArray(WT_LOCAL);
        float[] xs = ctx.allocateFloatLocalArray(XS_LOCAL);
        float[] acc = ctx.allocateFloatLocalArray(ACC_LOCAL);
        int n = meta.get(BatchLayout.ROWS), g = ctx.groupIdx, lid = ctx.localIdx, wg = ctx.localGroupSizeX;
        int tq = tiles(qRows), tk = tiles(kvRows);
        if (lanes(meta, n)) {
            int lanes = lanesPerRow(meta, wg), t = lid & (lanes - 1), row = g * (wg / lanes) + lid / lanes, total = qRows + 2 * kvRows;
            for (int b = 0; b < n; b++) {
                int xo = b * cols;
                float scale = 0f;
                if (normOff >= 0) {
                    float ss = KernelSupport.reduceSum(ctx, red, LaneProducts.sumSquares(x, xo, cols, lid, wg));
                    scale = 1.0f / TornadoMath.sqrt(ss / cols + vec.get(normOff + cols));
                }
                float p = 0f;
                if (row < total) {
                    p = normOff >= 0 ? LaneProducts.dotQ4Norm(w, s, x, xo, vec, normOff, scale, row, cols, t, lanes) : LaneProducts.dotQ4(w, s, xn, xo, row, cols, t, lanes);
                }
                float sum = KernelSupport.reduceSegments(ctx, red, p, lanes);
                if (t == 0 && row < total) {
                    storeQkv(q, k, v, b, row, biasOff < 0 ? sum : sum + vec.get(biasOff + row), qRows, kvRows);
                }
            }
        } else if (g < tq + 2 * tk) {
            int m = g < tq ? 0 : g < tq + tk ? 1 : 2;
            int row0 = (m == 0 ? g : m == 1 ? g - tq : g - tq - tk) * TILE_ROWS, mRows = m == 0 ? qRows : kvRows;
            int rowBase = m == 0 ? 0 : m == 1 ? qRows : qRows + kvRows;
            for (int c0 = 0; c0 < n; c0 += CHUNK) {
                int nc = n - c0 < CHUNK ? n - c0 : CHUNK;
                for (int e = lid; e < CHUNK * TILE_ROWS; e += wg) {
                    acc[e] = 0f;
                }
                for (int k0 = 0; k0 < cols; k0 += TILE_DEPTH) {
                    for (int e = lid; e < TILE_ROWS * TILE_DEPTH; e += wg) {
                        int r = e / TILE_DEPTH;
                        int kk = e - r * TILE_DEPTH;
                        int i = (rowBase + row0 + r) * cols + k0 + kk;
                        boolean in = row0 + r < mRows && k0 + kk < cols;
                        wt[kk * WT_STRIDE + r] = in ? GemmKernels.q4(w, s, i) : 0f;
                    }
                    for (int e = lid; e < nc * TILE_DEPTH; e += wg) {
                        int b = e / TILE_DEPTH;
                        int kk = e - b * TILE_DEPTH;
                        xs[e] = k0 + kk < cols ? xn.get((c0 + b) * cols + k0 + kk) : 0f;
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
                        float t = biasOff < 0 ? acc[e] : acc[e] + vec.get(biasOff + rowBase + row0 + r);
                        if (m == 0) {
                            q.set((c0 + b) * qRows + row0 + r, t);
                        } else if (m == 1) {
                            k.set((c0 + b) * kvRows + row0 + r, t);
                        } else {
                            v.set((c0 + b) * kvRows + row0 + r, t);
                        }
                    }
                }
                ctx.localBarrier();
            }
        }
    }
    public static void swigluF32(KernelContext ctx, FloatArray w, FloatArray x, FloatArray xn, FloatArray vec, FloatArray h, IntArray meta,
                              int rows, int cols, int normOff) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        float[] wt = ctx.allocateFloatLocalArray(WT_LOCAL);
        float[] xs = ctx.allocateFloatLocalArray(XS_LOCAL);
        float[] acc = ctx.allocateFloatLocalArray(ACC_LOCAL);
        float[] wt2 = ctx.allocateFloatLocalArray(WT_LOCAL);
        float[] acc2 = ctx.allocateFloatLocalArray(ACC_LOCAL);
        int n = meta.get(BatchLayout.ROWS), g = ctx.groupIdx, lid = ctx.localIdx, wg = ctx.localGroupSizeX;
        if (lanes(meta, n)) {
            int lanes = lanesPerRow(meta, wg), t = lid & (lanes - 1), row = g * (wg / lanes) + lid / lanes;
            for (int b = 0; b < n; b++) {
                int xo = b * cols;
                float scale = 0f;
                if (normOff >= 0) {
                    float ss = KernelSupport.reduceSum(ctx, red, LaneProducts.sumSquares(x, xo, cols, lid, wg));
                    scale = 1.0f / TornadoMath.sqrt(ss / cols + vec.get(normOff + cols));
                }
                float pg = 0f, pu = 0f;
                if (row < rows) {
                    pg = normOff >= 0 ? LaneProducts.dotF32Norm(w, x, xo, vec, normOff, scale, row, cols, t, lanes) : LaneProducts.dotF32(w, xn, xo, row, cols, t, lanes);
                    pu = normOff >= 0 ? LaneProducts.dotF32Norm(w, x, xo, vec, normOff, scale, row + rows, cols, t, lanes) : LaneProducts.dotF32(w, xn, xo, row + rows, cols, t, lanes);
                }
                float a = KernelSupport.reduceSegments(ctx, red, pg, lanes);
                float u = KernelSupport.reduceSegments(ctx, red, pu, lanes);
                if (t == 0 && row < rows) {
                    h.set(b * rows + row, KernelSupport.silu(a) * u);
                }
            }
        } else if (g * TILE_ROWS < rows) {
            int row0 = g * TILE_ROWS, mRows = rows, up = rows * cols;
            for (int c0 = 0; c0 < n; c0 += CHUNK) {
                int nc = n - c0 < CHUNK ? n - c0 : CHUNK;
                for (int e = lid; e < CHUNK * TILE_ROWS; e += wg) {
                    acc[e] = 0f;
                    acc2[e] = 0f;
                }
                for (int k0 = 0; k0 < cols; k0 += TILE_DEPTH) {
                    for (int e = lid; e < TILE_ROWS * TILE_DEPTH; e += wg) {
                        int r = e / TILE_DEPTH;
                        int kk = e - r * TILE_DEPTH;
                        int i = (row0 + r) * cols + k0 + kk;
                        boolean in = row0 + r < mRows && k0 + kk < cols;
                        wt[kk * WT_STRIDE + r] = in ? w.get(i) : 0f;
                        wt2[kk * WT_STRIDE + r] = in ? w.get(i + up) : 0f;
                    }
                    for (int e = lid; e < nc * TILE_DEPTH; e += wg) {
                        int b = e / TILE_DEPTH;
                        int kk = e - b * TILE_DEPTH;
                        xs[e] = k0 + kk < cols ? xn.get((c0 + b) * cols + k0 + kk) : 0f;
                    }
                    ctx.localBarrier();
                    {
                        int r = lid % TILE_ROWS;
                        for (int b = lid / TILE_ROWS; b < nc; b += wg / TILE_ROWS) {
                            float a = acc[b * TILE_ROWS + r], a2 = acc2[b * TILE_ROWS + r];
                            for (int kk = 0; kk < TILE_DEPTH; kk++) {
                                float xv = xs[b * TILE_DEPTH + kk];
                                a += wt[kk * WT_STRIDE + r] * xv;
                                a2 += wt2[kk * WT_STRIDE + r] * xv;
                            }
                            acc[b * TILE_ROWS + r] = a;
                            acc2[b * TILE_ROWS + r] = a2;
                        }
                    }
                    ctx.localBarrier();
                }
                for (int e = lid; e < nc * TILE_ROWS; e += wg) {
                    int b = e / TILE_ROWS;
                    int r = e - b * TILE_ROWS;
                    if (row0 + r < mRows) {
                        h.set((c0 + b) * rows + row0 + r, KernelSupport.silu(acc[e]) * acc2[e]);
                    }
                }
                ctx.localBarrier();
            }
        }
    }
    public static void swigluF16(KernelContext ctx, HalfFloatArray w, FloatArray x, FloatArray xn, FloatArray vec, FloatArray h, IntArray meta,
                              int rows, int cols, int normOff) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        float[] wt = ctx.allocateFloatLocalArray(WT_LOCAL);
        float[] xs = ctx.allocateFloatLocalArray(XS_LOCAL);
        float[] acc = ctx.allocateFloatLocalArray(ACC_LOCAL);
        float[] wt2 = ctx.allocateFloatLocalArray(WT_LOCAL);
        float[] acc2 = ctx.allocateFloatLocalArray(ACC_LOCAL);
        int n = meta.get(BatchLayout.ROWS), g = ctx.groupIdx, lid = ctx.localIdx, wg = ctx.localGroupSizeX;
        if (lanes(meta, n)) {
            int lanes = lanesPerRow(meta, wg), t = lid & (lanes - 1), row = g * (wg / lanes) + lid / lanes;
            for (int b = 0; b < n; b++) {
                int xo = b * cols;
                float scale = 0f;
                if (normOff >= 0) {
                    float ss = KernelSupport.reduceSum(ctx, red, LaneProducts.sumSquares(x, xo, cols, lid, wg));
                    scale = 1.0f / TornadoMath.sqrt(ss / cols + vec.get(normOff + cols));
                }
                float pg = 0f, pu = 0f;
                if (row < rows) {
                    pg = normOff >= 0 ? LaneProducts.dotF16Norm(w, x, xo, vec, normOff, scale, row, cols, t, lanes) : LaneProducts.dotF16(w, xn, xo, row, cols, t, lanes);
                    pu = normOff >= 0 ? LaneProducts.dotF16Norm(w, x, xo, vec, normOff, scale, row + rows, cols, t, lanes) : LaneProducts.dotF16(w, xn, xo, row + rows, cols, t, lanes);
                }
                float a = KernelSupport.reduceSegments(ctx, red, pg, lanes);
                float u = KernelSupport.reduceSegments(ctx, red, pu, lanes);
                if (t == 0 && row < rows) {
                    h.set(b * rows + row, KernelSupport.silu(a) * u);
                }
            }
        } else if (g * TILE_ROWS < rows) {
            int row0 = g * TILE_ROWS, mRows = rows, up = rows * cols;
            for (int c0 = 0; c0 < n; c0 += CHUNK) {
                int nc = n - c0 < CHUNK ? n - c0 : CHUNK;
                for (int e = lid; e < CHUNK * TILE_ROWS; e += wg) {
                    acc[e] = 0f;
                    acc2[e] = 0f;
                }
                for (int k0 = 0; k0 < cols; k0 += TILE_DEPTH) {
                    for (int e = lid; e < TILE_ROWS * TILE_DEPTH; e += wg) {
                        int r = e / TILE_DEPTH;
                        int kk = e - r * TILE_DEPTH;
                        int i = (row0 + r) * cols + k0 + kk;
                        boolean in = row0 + r < mRows && k0 + kk < cols;
                        wt[kk * WT_STRIDE + r] = in ? w.get(i).getFloat32() : 0f;
                        wt2[kk * WT_STRIDE + r] = in ? w.get(i + up).getFloat32() : 0f;
                    }
                    for (int e = lid; e < nc * TILE_DEPTH; e += wg) {
                        int b = e / TILE_DEPTH;
                        int kk = e - b * TILE_DEPTH;
                        xs[e] = k0 + kk < cols ? xn.get((c0 + b) * cols + k0 + kk) : 0f;
                    }
                    ctx.localBarrier();
                    {
                        int r = lid % TILE_ROWS;
                        for (int b = lid / TILE_ROWS; b < nc; b += wg / TILE_ROWS) {
                            float a = acc[b * TILE_ROWS + r], a2 = acc2[b * TILE_ROWS + r];
                            for (int kk = 0; kk < TILE_DEPTH; kk++) {
                                float xv = xs[b * TILE_DEPTH + kk];
                                a += wt[kk * WT_STRIDE + r] * xv;
                                a2 += wt2[kk * WT_STRIDE + r] * xv;
                            }
                            acc[b * TILE_ROWS + r] = a;
                            acc2[b * TILE_ROWS + r] = a2;
                        }
                    }
                    ctx.localBarrier();
                }
                for (int e = lid; e < nc * TILE_ROWS; e += wg) {
                    int b = e / TILE_ROWS;
                    int r = e - b * TILE_ROWS;
                    if (row0 + r < mRows) {
                        h.set((c0 + b) * rows + row0 + r, KernelSupport.silu(acc[e]) * acc2[e]);
                    }
                }
                ctx.localBarrier();
            }
        }
    }
    public static void swigluF16Bits(KernelContext ctx, ShortArray w, FloatArray pow2, FloatArray x, FloatArray xn, FloatArray vec, FloatArray h, IntArray meta,
                              int rows, int cols, int normOff) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        float[] wt = ctx.allocateFloatLocalArray(WT_LOCAL);
        float[] xs = ctx.allocateFloatLocalArray(XS_LOCAL);
        float[] acc = ctx.allocateFloatLocalArray(ACC_LOCAL);
        float[] wt2 = ctx.allocateFloatLocalArray(WT_LOCAL);
        float[] acc2 = ctx.allocateFloatLocalArray(ACC_LOCAL);
        int n = meta.get(BatchLayout.ROWS), g = ctx.groupIdx, lid = ctx.localIdx, wg = ctx.localGroupSizeX;
        if (lanes(meta, n)) {
            int lanes = lanesPerRow(meta, wg), t = lid & (lanes - 1), row = g * (wg / lanes) + lid / lanes;
            for (int b = 0; b < n; b++) {
                int xo = b * cols;
                float scale = 0f;
                if (normOff >= 0) {
                    float ss = KernelSupport.reduceSum(ctx, red, LaneProducts.sumSquares(x, xo, cols, lid, wg));
                    scale = 1.0f / TornadoMath.sqrt(ss / cols + vec.get(normOff + cols));
                }
                float pg = 0f, pu = 0f;
                if (row < rows) {
                    pg = normOff >= 0 ? LaneProducts.dotF16BitsNorm(w, pow2, x, xo, vec, normOff, scale, row, cols, t, lanes) : LaneProducts.dotF16Bits(w, pow2, xn, xo, row, cols, t, lanes);
                    pu = normOff >= 0 ? LaneProducts.dotF16BitsNorm(w, pow2, x, xo, vec, normOff, scale, row + rows, cols, t, lanes) : LaneProducts.dotF16Bits(w, pow2, xn, xo, row + rows, cols, t, lanes);
                }
                float a = KernelSupport.reduceSegments(ctx, red, pg, lanes);
                float u = KernelSupport.reduceSegments(ctx, red, pu, lanes);
                if (t == 0 && row < rows) {
                    h.set(b * rows + row, KernelSupport.silu(a) * u);
                }
            }
        } else if (g * TILE_ROWS < rows) {
            int row0 = g * TILE_ROWS, mRows = rows, up = rows * cols;
            for (int c0 = 0; c0 < n; c0 += CHUNK) {
                int nc = n - c0 < CHUNK ? n - c0 : CHUNK;
                for (int e = lid; e < CHUNK * TILE_ROWS; e += wg) {
                    acc[e] = 0f;
                    acc2[e] = 0f;
                }
                for (int k0 = 0; k0 < cols; k0 += TILE_DEPTH) {
                    for (int e = lid; e < TILE_ROWS * TILE_DEPTH; e += wg) {
                        int r = e / TILE_DEPTH;
                        int kk = e - r * TILE_DEPTH;
                        int i = (row0 + r) * cols + k0 + kk;
                        boolean in = row0 + r < mRows && k0 + kk < cols;
                        wt[kk * WT_STRIDE + r] = in ? KernelSupport.halfToFloat(w.get(i), pow2) : 0f;
                        wt2[kk * WT_STRIDE + r] = in ? KernelSupport.halfToFloat(w.get(i + up), pow2) : 0f;
                    }
                    for (int e = lid; e < nc * TILE_DEPTH; e += wg) {
                        int b = e / TILE_DEPTH;
                        int kk = e - b * TILE_DEPTH;
                        xs[e] = k0 + kk < cols ? xn.get((c0 + b) * cols + k0 + kk) : 0f;
                    }
                    ctx.localBarrier();
                    {
                        int r = lid % TILE_ROWS;
                        for (int b = lid / TILE_ROWS; b < nc; b += wg / TILE_ROWS) {
                            float a = acc[b * TILE_ROWS + r], a2 = acc2[b * TILE_ROWS + r];
                            for (int kk = 0; kk < TILE_DEPTH; kk++) {
                                float xv = xs[b * TILE_DEPTH + kk];
                                a += wt[kk * WT_STRIDE + r] * xv;
                                a2 += wt2[kk * WT_STRIDE + r] * xv;
                            }
                            acc[b * TILE_ROWS + r] = a;
                            acc2[b * TILE_ROWS + r] = a2;
                        }
                    }
                    ctx.localBarrier();
                }
                for (int e = lid; e < nc * TILE_ROWS; e += wg) {
                    int b = e / TILE_ROWS;
                    int r = e - b * TILE_ROWS;
                    if (row0 + r < mRows) {
                        h.set((c0 + b) * rows + row0 + r, KernelSupport.silu(acc[e]) * acc2[e]);
                    }
                }
                ctx.localBarrier();
            }
        }
    }
    public static void swigluQ8(KernelContext ctx, IntArray w, FloatArray s, FloatArray x, FloatArray xn, FloatArray vec, FloatArray h, IntArray meta,
                              int rows, int cols, int normOff) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        float[] wt = ctx.allocateFloatLocalArray(WT_LOCAL);
        float[] xs = ctx.allocateFloatLocalArray(XS_LOCAL);
        float[] acc = ctx.allocateFloatLocalArray(ACC_LOCAL);
        float[] wt2 = ctx.allocateFloatLocalArray(WT_LOCAL);
        float[] acc2 = ctx.allocateFloatLocalArray(ACC_LOCAL);
        int n = meta.get(BatchLayout.ROWS), g = ctx.groupIdx, lid = ctx.localIdx, wg = ctx.localGroupSizeX;
        if (lanes(meta, n)) {
            int lanes = lanesPerRow(meta, wg), t = lid & (lanes - 1), row = g * (wg / lanes) + lid / lanes;
            for (int b = 0; b < n; b++) {
                int xo = b * cols;
                float scale = 0f;
                if (normOff >= 0) {
                    float ss = KernelSupport.reduceSum(ctx, red, LaneProducts.sumSquares(x, xo, cols, lid, wg));
                    scale = 1.0f / TornadoMath.sqrt(ss / cols + vec.get(normOff + cols));
                }
                float pg = 0f, pu = 0f;
                if (row < rows) {
                    pg = normOff >= 0 ? LaneProducts.dotQ8Norm(w, s, x, xo, vec, normOff, scale, row, cols, t, lanes) : LaneProducts.dotQ8(w, s, xn, xo, row, cols, t, lanes);
                    pu = normOff >= 0 ? LaneProducts.dotQ8Norm(w, s, x, xo, vec, normOff, scale, row + rows, cols, t, lanes) : LaneProducts.dotQ8(w, s, xn, xo, row + rows, cols, t, lanes);
                }
                float a = KernelSupport.reduceSegments(ctx, red, pg, lanes);
                float u = KernelSupport.reduceSegments(ctx, red, pu, lanes);
                if (t == 0 && row < rows) {
                    h.set(b * rows + row, KernelSupport.silu(a) * u);
                }
            }
        } else if (g * TILE_ROWS < rows) {
            int row0 = g * TILE_ROWS, mRows = rows, up = rows * cols;
            for (int c0 = 0; c0 < n; c0 += CHUNK) {
                int nc = n - c0 < CHUNK ? n - c0 : CHUNK;
                for (int e = lid; e < CHUNK * TILE_ROWS; e += wg) {
                    acc[e] = 0f;
                    acc2[e] = 0f;
                }
                for (int k0 = 0; k0 < cols; k0 += TILE_DEPTH) {
                    for (int e = lid; e < TILE_ROWS * TILE_DEPTH; e += wg) {
                        int r = e / TILE_DEPTH;
                        int kk = e - r * TILE_DEPTH;
                        int i = (row0 + r) * cols + k0 + kk;
                        boolean in = row0 + r < mRows && k0 + kk < cols;
                        wt[kk * WT_STRIDE + r] = in ? GemmKernels.q8(w, s, i) : 0f;
                        wt2[kk * WT_STRIDE + r] = in ? GemmKernels.q8(w, s, i + up) : 0f;
                    }
                    for (int e = lid; e < nc * TILE_DEPTH; e += wg) {
                        int b = e / TILE_DEPTH;
                        int kk = e - b * TILE_DEPTH;
                        xs[e] = k0 + kk < cols ? xn.get((c0 + b) * cols + k0 + kk) : 0f;
                    }
                    ctx.localBarrier();
                    {
                        int r = lid % TILE_ROWS;
                        for (int b = lid / TILE_ROWS; b < nc; b += wg / TILE_ROWS) {
                            float a = acc[b * TILE_ROWS + r], a2 = acc2[b * TILE_ROWS + r];
                            for (int kk = 0; kk < TILE_DEPTH; kk++) {
                                float xv = xs[b * TILE_DEPTH + kk];
                                a += wt[kk * WT_STRIDE + r] * xv;
                                a2 += wt2[kk * WT_STRIDE + r] * xv;
                            }
                            acc[b * TILE_ROWS + r] = a;
                            acc2[b * TILE_ROWS + r] = a2;
                        }
                    }
                    ctx.localBarrier();
                }
                for (int e = lid; e < nc * TILE_ROWS; e += wg) {
                    int b = e / TILE_ROWS;
                    int r = e - b * TILE_ROWS;
                    if (row0 + r < mRows) {
                        h.set((c0 + b) * rows + row0 + r, KernelSupport.silu(acc[e]) * acc2[e]);
                    }
                }
                ctx.localBarrier();
            }
        }
    }
    public static void swigluQ4(KernelContext ctx, IntArray w, FloatArray s, FloatArray x, FloatArray xn, FloatArray vec, FloatArray h, IntArray meta,
                              int rows, int cols, int normOff) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        float[] wt = ctx.allocateFloatLocalArray(WT_LOCAL);
        float[] xs = ctx.allocateFloatLocalArray(XS_LOCAL);
        float[] acc = ctx.allocateFloatLocalArray(ACC_LOCAL);
        float[] wt2 = ctx.allocateFloatLocalArray(WT_LOCAL);
        float[] acc2 = ctx.allocateFloatLocalArray(ACC_LOCAL);
        int n = meta.get(BatchLayout.ROWS), g = ctx.groupIdx, lid = ctx.localIdx, wg = ctx.localGroupSizeX;
        if (lanes(meta, n)) {
            int lanes = lanesPerRow(meta, wg), t = lid & (lanes - 1), row = g * (wg / lanes) + lid / lanes;
            for (int b = 0; b < n; b++) {
                int xo = b * cols;
                float scale = 0f;
                if (normOff >= 0) {
                    float ss = KernelSupport.reduceSum(ctx, red, LaneProducts.sumSquares(x, xo, cols, lid, wg));
                    scale = 1.0f / TornadoMath.sqrt(ss / cols + vec.get(normOff + cols));
                }
                float pg = 0f, pu = 0f;
                if (row < rows) {
                    pg = normOff >= 0 ? LaneProducts.dotQ4Norm(w, s, x, xo, vec, normOff, scale, row, cols, t, lanes) : LaneProducts.dotQ4(w, s, xn, xo, row, cols, t, lanes);
                    pu = normOff >= 0 ? LaneProducts.dotQ4Norm(w, s, x, xo, vec, normOff, scale, row + rows, cols, t, lanes) : LaneProducts.dotQ4(w, s, xn, xo, row + rows, cols, t, lanes);
                }
                float a = KernelSupport.reduceSegments(ctx, red, pg, lanes);
                float u = KernelSupport.reduceSegments(ctx, red, pu, lanes);
                if (t == 0 && row < rows) {
                    h.set(b * rows + row, KernelSupport.silu(a) * u);
                }
            }
        } else if (g * TILE_ROWS < rows) {
            int row0 = g * TILE_ROWS, mRows = rows, up = rows * cols;
            for (int c0 = 0; c0 < n; c0 += CHUNK) {
                int nc = n - c0 < CHUNK ? n - c0 : CHUNK;
                for (int e = lid; e < CHUNK * TILE_ROWS; e += wg) {
                    acc[e] = 0f;
                    acc2[e] = 0f;
                }
                for (int k0 = 0; k0 < cols; k0 += TILE_DEPTH) {
                    for (int e = lid; e < TILE_ROWS * TILE_DEPTH; e += wg) {
                        int r = e / TILE_DEPTH;
                        int kk = e - r * TILE_DEPTH;
                        int i = (row0 + r) * cols + k0 + kk;
                        boolean in = row0 + r < mRows && k0 + kk < cols;
                        wt[kk * WT_STRIDE + r] = in ? GemmKernels.q4(w, s, i) : 0f;
                        wt2[kk * WT_STRIDE + r] = in ? GemmKernels.q4(w, s, i + up) : 0f;
                    }
                    for (int e = lid; e < nc * TILE_DEPTH; e += wg) {
                        int b = e / TILE_DEPTH;
                        int kk = e - b * TILE_DEPTH;
                        xs[e] = k0 + kk < cols ? xn.get((c0 + b) * cols + k0 + kk) : 0f;
                    }
                    ctx.localBarrier();
                    {
                        int r = lid % TILE_ROWS;
                        for (int b = lid / TILE_ROWS; b < nc; b += wg / TILE_ROWS) {
                            float a = acc[b * TILE_ROWS + r], a2 = acc2[b * TILE_ROWS + r];
                            for (int kk = 0; kk < TILE_DEPTH; kk++) {
                                float xv = xs[b * TILE_DEPTH + kk];
                                a += wt[kk * WT_STRIDE + r] * xv;
                                a2 += wt2[kk * WT_STRIDE + r] * xv;
                            }
                            acc[b * TILE_ROWS + r] = a;
                            acc2[b * TILE_ROWS + r] = a2;
                        }
                    }
                    ctx.localBarrier();
                }
                for (int e = lid; e < nc * TILE_ROWS; e += wg) {
                    int b = e / TILE_ROWS;
                    int r = e - b * TILE_ROWS;
                    if (row0 + r < mRows) {
                        h.set((c0 + b) * rows + row0 + r, KernelSupport.silu(acc[e]) * acc2[e]);
                    }
                }
                ctx.localBarrier();
            }
        }
    }
}
