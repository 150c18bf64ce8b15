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
        } else if (meta.get(BatchLayout.TILES) == BatchLayout.TILES_ITEMS) {
            // item tiles (CPU devices): the group's first work-item alone, see GemmKernels' class comment
            int iq = itemGroups(qRows), ik = itemGroups(kvRows);
            int m = g < iq ? 0 : g < iq + ik ? 1 : 2, mRows = m == 0 ? qRows : kvRows, rowBase = m == 0 ? 0 : m == 1 ? qRows : qRows + kvRows;
            int r0 = (m == 0 ? g : m == 1 ? g - iq : g - iq - ik) * ITEM_ROWS, live = lid == 0 && g < iq + 2 * ik ? 1 : 0;
            for (int e = 0; e < live * ITEM_ROWS * BatchLayout.MAX_ROWS; e++) {
                acc[e] = 0f;
            }
            for (int k0 = 0; k0 < cols; k0 += ITEM_DEPTH) {
                int kt = live * (cols - k0 < ITEM_DEPTH ? cols - k0 : ITEM_DEPTH);
                // stage: the slice rows' columns k0 .. k0 + kt, as floats, in wt [slice row][column] (rows past the matrix repeat its last row)
                for (int j = 0; j < ITEM_ROWS; j++) {
                    int base = (rowBase + (r0 + j < mRows ? r0 + j : mRows - 1)) * cols + k0, o = j * ITEM_DEPTH;
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
                            xs[o + kk] = xn.get(xo + kk);
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
                if (r < mRows) {
                    float t = biasOff < 0 ? acc[e] : acc[e] + vec.get(biasOff + rowBase + r);
                    if (m == 0) {
                        q.set(b * qRows + r, t);
                    } else if (m == 1) {
                        k.set(b * kvRows + r, t);
                    } else {
                        v.set(b * kvRows + r, t);
                    }
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
        } else if (meta.get(BatchLayout.TILES) == BatchLayout.TILES_ITEMS) {
            // item tiles (CPU devices): the group's first work-item alone, see GemmKernels' class comment
            int iq = itemGroups(qRows), ik = itemGroups(kvRows);
            int m = g < iq ? 0 : g < iq + ik ? 1 : 2, mRows = m == 0 ? qRows : kvRows, rowBase = m == 0 ? 0 : m == 1 ? qRows : qRows + kvRows;
            int r0 = (m == 0 ? g : m == 1 ? g - iq : g - iq - ik) * ITEM_ROWS, live = lid == 0 && g < iq + 2 * ik ? 1 : 0;
            for (int e = 0; e < live * ITEM_ROWS * BatchLayout.MAX_ROWS; e++) {
                acc[e] = 0f;
            }
            for (int k0 = 0; k0 < cols; k0 += ITEM_DEPTH) {
                int kt = live * (cols - k0 < ITEM_DEPTH ? cols - k0 : ITEM_DEPTH);
                // stage: the slice rows' columns k0 .. k0 + kt, as floats, in wt [slice row][column] (rows past the matrix repeat its last row)
                for (int j = 0; j < ITEM_ROWS; j++) {
                    int base = (rowBase + (r0 + j < mRows ? r0 + j : mRows - 1)) * cols + k0, o = j * ITEM_DEPTH;
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
                            xs[o + kk] = xn.get(xo + kk);
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
                if (r < mRows) {
                    float t = biasOff < 0 ? acc[e] : acc[e] + vec.get(biasOff + rowBase + r);
                    if (m == 0) {
                        q.set(b * qRows + r, t);
                    } else if (m == 1) {
                        k.set(b * kvRows + r, t);
                    } else {
                        v.set(b * kvRows + r, t);
                    }
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
        } else if (meta.get(BatchLayout.TILES) == BatchLayout.TILES_ITEMS) {
            // item tiles (CPU devices): the group's first work-item alone, see GemmKernels' class comment
            int iq = itemGroups(qRows), ik = itemGroups(kvRows);
            int m = g < iq ? 0 : g < iq + ik ? 1 : 2, mRows = m == 0 ? qRows : kvRows, rowBase = m == 0 ? 0 : m == 1 ? qRows : qRows + kvRows;
            int r0 = (m == 0 ? g : m == 1 ? g - iq : g - iq - ik) * ITEM_ROWS, live = lid == 0 && g < iq + 2 * ik ? 1 : 0;
            for (int e = 0; e < live * ITEM_ROWS * BatchLayout.MAX_ROWS; e++) {
                acc[e] = 0f;
            }
            for (int k0 = 0; k0 < cols; k0 += ITEM_DEPTH) {
                int kt = live * (cols - k0 < ITEM_DEPTH ? cols - k0 : ITEM_DEPTH);
                // stage: the slice rows' columns k0 .. k0 + kt, as floats, in wt [slice row][column] (rows past the matrix repeat its last row)
                for (int j = 0; j < ITEM_ROWS; j++) {
                    int base = (rowBase + (r0 + j < mRows ? r0 + j : mRows - 1)) * cols + k0, o = j * ITEM_DEPTH;
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
                            xs[o + kk] = xn.get(xo + kk);
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
                if (r < mRows) {
                    float t = biasOff < 0 ? acc[e] : acc[e] + vec.get(biasOff + rowBase + r);
                    if (m == 0) {
                        q.set(b * qRows + r, t);
                    } else if (m == 1) {
                        k.set(b * kvRows + r, t);
                    } else {
                        v.set(b * kvRows + r, t);
                    }
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
        } else if (meta.get(BatchLayout.TILES) == BatchLayout.TILES_ITEMS) {
            // item tiles (CPU devices): the group's first work-item alone, see GemmKernels' class comment
            int iq = itemGroups(qRows), ik = itemGroups(kvRows);
            int m = g < iq ? 0 : g < iq + ik ? 1 : 2, mRows = m == 0 ? qRows : kvRows, rowBase = m == 0 ? 0 : m == 1 ? qRows : qRows + kvRows;
            int r0 = (m == 0 ? g : m == 1 ? g - iq : g - iq - ik) * ITEM_ROWS, live = lid == 0 && g < iq + 2 * ik ? 1 : 0;
            for (int e = 0; e < live * ITEM_ROWS * BatchLayout.MAX_ROWS; e++) {
                acc[e] = 0f;
            }
            for (int k0 = 0; k0 < cols; k0 += ITEM_DEPTH) {
                int kt = live * (cols - k0 < ITEM_DEPTH ? cols - k0 : ITEM_DEPTH);
                // stage: the slice rows' columns k0 .. k0 + kt, as floats, in wt [slice row][column] (rows past the matrix repeat its last row)
                for (int j = 0; j < ITEM_ROWS; j++) {
                    int wb = ((rowBase + (r0 + j < mRows ? r0 + j : mRows - 1)) * cols + k0) >> 2, o = j * ITEM_DEPTH;
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
                            xs[o + kk] = xn.get(xo + kk);
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
                if (r < mRows) {
                    float t = biasOff < 0 ? acc[e] : acc[e] + vec.get(biasOff + rowBase + r);
                    if (m == 0) {
                        q.set(b * qRows + r, t);
                    } else if (m == 1) {
                        k.set(b * kvRows + r, t);
                    } else {
                        v.set(b * kvRows + r, t);
                    }
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
        } else if (meta.get(BatchLayout.TILES) == BatchLayout.TILES_ITEMS) {
            // item tiles (CPU devices): the group's first work-item alone, see GemmKernels' class comment
            int iq = itemGroups(qRows), ik = itemGroups(kvRows);
            int m = g < iq ? 0 : g < iq + ik ? 1 : 2, mRows = m == 0 ? qRows : kvRows, rowBase = m == 0 ? 0 : m == 1 ? qRows : qRows + kvRows;
            int r0 = (m == 0 ? g : m == 1 ? g - iq : g - iq - ik) * ITEM_ROWS, live = lid == 0 && g < iq + 2 * ik ? 1 : 0;
            for (int e = 0; e < live * ITEM_ROWS * BatchLayout.MAX_ROWS; e++) {
                acc[e] = 0f;
            }
            for (int k0 = 0; k0 < cols; k0 += ITEM_DEPTH) {
                int kt = live * (cols - k0 < ITEM_DEPTH ? cols - k0 : ITEM_DEPTH);
                // stage: the slice rows' columns k0 .. k0 + kt, as floats, in wt [slice row][column] (rows past the matrix repeat its last row)
                for (int j = 0; j < ITEM_ROWS; j++) {
                    int base = (rowBase + (r0 + j < mRows ? r0 + j : mRows - 1)) * cols + k0, o = j * ITEM_DEPTH;
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
                            xs[o + kk] = xn.get(xo + kk);
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
                if (r < mRows) {
                    float t = biasOff < 0 ? acc[e] : acc[e] + vec.get(biasOff + rowBase + r);
                    if (m == 0) {
                        q.set(b * qRows + r, t);
                    } else if (m == 1) {
                        k.set(b * kvRows + r, t);
                    } else {
                        v.set(b * kvRows + r, t);
                    }
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
        } else if (meta.get(BatchLayout.TILES) == BatchLayout.TILES_ITEMS) {
            // item tiles (CPU devices): the group's first work-item alone, see GemmKernels' class comment
            int r0 = g * (ITEM_ROWS / 2), live = lid == 0 && r0 < rows ? 1 : 0;
            for (int e = 0; e < live * ITEM_ROWS * BatchLayout.MAX_ROWS; e++) {
                acc[e] = 0f;
            }
            for (int k0 = 0; k0 < cols; k0 += ITEM_DEPTH) {
                int kt = live * (cols - k0 < ITEM_DEPTH ? cols - k0 : ITEM_DEPTH);
                // stage: the slice rows' columns k0 .. k0 + kt, as floats, in wt [slice row][column] (rows past the matrix repeat its last row)
                for (int j = 0; j < ITEM_ROWS; j++) {
                    int jj = j < ITEM_ROWS / 2 ? j : j - ITEM_ROWS / 2;
                    int base = ((j < ITEM_ROWS / 2 ? 0 : rows) + (r0 + jj < rows ? r0 + jj : rows - 1)) * cols + k0, o = j * ITEM_DEPTH;
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
                            xs[o + kk] = xn.get(xo + kk);
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
            for (int e = 0; e < live * n * (ITEM_ROWS / 2); e++) {
                int b = e / (ITEM_ROWS / 2), jj = e - b * (ITEM_ROWS / 2), r = r0 + jj;
                if (r < rows) {
                    h.set(b * rows + r, KernelSupport.silu(acc[b * ITEM_ROWS + jj]) * acc[b * ITEM_ROWS + jj + ITEM_ROWS / 2]);
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
        } else if (meta.get(BatchLayout.TILES) == BatchLayout.TILES_ITEMS) {
            // item tiles (CPU devices): the group's first work-item alone, see GemmKernels' class comment
            int r0 = g * (ITEM_ROWS / 2), live = lid == 0 && r0 < rows ? 1 : 0;
            for (int e = 0; e < live * ITEM_ROWS * BatchLayout.MAX_ROWS; e++) {
                acc[e] = 0f;
            }
            for (int k0 = 0; k0 < cols; k0 += ITEM_DEPTH) {
                int kt = live * (cols - k0 < ITEM_DEPTH ? cols - k0 : ITEM_DEPTH);
                // stage: the slice rows' columns k0 .. k0 + kt, as floats, in wt [slice row][column] (rows past the matrix repeat its last row)
                for (int j = 0; j < ITEM_ROWS; j++) {
                    int jj = j < ITEM_ROWS / 2 ? j : j - ITEM_ROWS / 2;
                    int base = ((j < ITEM_ROWS / 2 ? 0 : rows) + (r0 + jj < rows ? r0 + jj : rows - 1)) * cols + k0, o = j * ITEM_DEPTH;
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
                            xs[o + kk] = xn.get(xo + kk);
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
            for (int e = 0; e < live * n * (ITEM_ROWS / 2); e++) {
                int b = e / (ITEM_ROWS / 2), jj = e - b * (ITEM_ROWS / 2), r = r0 + jj;
                if (r < rows) {
                    h.set(b * rows + r, KernelSupport.silu(acc[b * ITEM_ROWS + jj]) * acc[b * ITEM_ROWS + jj + ITEM_ROWS / 2]);
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
        } else if (meta.get(BatchLayout.TILES) == BatchLayout.TILES_ITEMS) {
            // item tiles (CPU devices): the group's first work-item alone, see GemmKernels' class comment
            int r0 = g * (ITEM_ROWS / 2), live = lid == 0 && r0 < rows ? 1 : 0;
            for (int e = 0; e < live * ITEM_ROWS * BatchLayout.MAX_ROWS; e++) {
                acc[e] = 0f;
            }
            for (int k0 = 0; k0 < cols; k0 += ITEM_DEPTH) {
                int kt = live * (cols - k0 < ITEM_DEPTH ? cols - k0 : ITEM_DEPTH);
                // stage: the slice rows' columns k0 .. k0 + kt, as floats, in wt [slice row][column] (rows past the matrix repeat its last row)
                for (int j = 0; j < ITEM_ROWS; j++) {
                    int jj = j < ITEM_ROWS / 2 ? j : j - ITEM_ROWS / 2;
                    int base = ((j < ITEM_ROWS / 2 ? 0 : rows) + (r0 + jj < rows ? r0 + jj : rows - 1)) * cols + k0, o = j * ITEM_DEPTH;
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
                            xs[o + kk] = xn.get(xo + kk);
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
            for (int e = 0; e < live * n * (ITEM_ROWS / 2); e++) {
                int b = e / (ITEM_ROWS / 2), jj = e - b * (ITEM_ROWS / 2), r = r0 + jj;
                if (r < rows) {
                    h.set(b * rows + r, KernelSupport.silu(acc[b * ITEM_ROWS + jj]) * acc[b * ITEM_ROWS + jj + ITEM_ROWS / 2]);
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
        } else if (meta.get(BatchLayout.TILES) == BatchLayout.TILES_ITEMS) {
            // item tiles (CPU devices): the group's first work-item alone, see GemmKernels' class comment
            int r0 = g * (ITEM_ROWS / 2), live = lid == 0 && r0 < rows ? 1 : 0;
            for (int e = 0; e < live * ITEM_ROWS * BatchLayout.MAX_ROWS; e++) {
                acc[e] = 0f;
            }
            for (int k0 = 0; k0 < cols; k0 += ITEM_DEPTH) {
                int kt = live * (cols - k0 < ITEM_DEPTH ? cols - k0 : ITEM_DEPTH);
                // stage: the slice rows' columns k0 .. k0 + kt, as floats, in wt [slice row][column] (rows past the matrix repeat its last row)
                for (int j = 0; j < ITEM_ROWS; j++) {
                    int jj = j < ITEM_ROWS / 2 ? j : j - ITEM_ROWS / 2;
                    int wb = (((j < ITEM_ROWS / 2 ? 0 : rows) + (r0 + jj < rows ? r0 + jj : rows - 1)) * cols + k0) >> 2, o = j * ITEM_DEPTH;
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
                            xs[o + kk] = xn.get(xo + kk);
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
            for (int e = 0; e < live * n * (ITEM_ROWS / 2); e++) {
                int b = e / (ITEM_ROWS / 2), jj = e - b * (ITEM_ROWS / 2), r = r0 + jj;
                if (r < rows) {
                    h.set(b * rows + r, KernelSupport.silu(acc[b * ITEM_ROWS + jj]) * acc[b * ITEM_ROWS + jj + ITEM_ROWS / 2]);
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
        } else if (meta.get(BatchLayout.TILES) == BatchLayout.TILES_ITEMS) {
            // item tiles (CPU devices): the group's first work-item alone, see GemmKernels' class comment
            int r0 = g * (ITEM_ROWS / 2), live = lid == 0 && r0 < rows ? 1 : 0;
            for (int e = 0; e < live * ITEM_ROWS * BatchLayout.MAX_ROWS; e++) {
                acc[e] = 0f;
            }
            for (int k0 = 0; k0 < cols; k0 += ITEM_DEPTH) {
                int kt = live * (cols - k0 < ITEM_DEPTH ? cols - k0 : ITEM_DEPTH);
                // stage: the slice rows' columns k0 .. k0 + kt, as floats, in wt [slice row][column] (rows past the matrix repeat its last row)
                for (int j = 0; j < ITEM_ROWS; j++) {
                    int jj = j < ITEM_ROWS / 2 ? j : j - ITEM_ROWS / 2;
                    int base = ((j < ITEM_ROWS / 2 ? 0 : rows) + (r0 + jj < rows ? r0 + jj : rows - 1)) * cols + k0, o = j * ITEM_DEPTH;
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
                            xs[o + kk] = xn.get(xo + kk);
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
            for (int e = 0; e < live * n * (ITEM_ROWS / 2); e++) {
                int b = e / (ITEM_ROWS / 2), jj = e - b * (ITEM_ROWS / 2), r = r0 + jj;
                if (r < rows) {
                    h.set(b * rows + r, KernelSupport.silu(acc[b * ITEM_ROWS + jj]) * acc[b * ITEM_ROWS + jj + ITEM_ROWS / 2]);
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
