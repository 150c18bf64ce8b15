package internlm.kernels;

import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.math.TornadoMath;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.HalfFloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;
import uk.ac.manchester.tornado.api.types.arrays.ShortArray;

/**
 * The non-product kernels of a decoder layer for a batch of rows (see {@link BatchLayout} for meta and the buffer
 * layouts): embedding, RMSNorm (optionally of the gathered output rows, optionally with the Q8_0 rounding of its
 * result), activation rounding, RoPE with the KV-cache write and greedy argmax (attention is in
 * {@link AttentionKernels}). Each row is computed on its own, in a fixed order, so a row's result does not depend on
 * the rest of the batch. Grids that do not depend on the
 * batch loop over the rows inside; the per-row work-group kernels (RMSNorm, attention) take one group per row and
 * leave groups past the batch idle.
 */
public final class BatchKernels {
    private BatchKernels() {}

    static int rows(IntArray meta) {
        return meta.get(BatchLayout.ROWS);
    }

    // ------------------------------------------------------------------ embedding: x[b] = table[token_b]; item i < dim, all rows

    public static void embedF32(KernelContext ctx, FloatArray table, IntArray meta, FloatArray x, int dim) {
        int i = ctx.globalIdx, n = rows(meta);
        if (i < dim) {
            for (int b = 0; b < n; b++) {
                x.set(b * dim + i, table.get(meta.get(BatchLayout.TOKEN + b) * dim + i));
            }
        }
    }

    public static void embedF16(KernelContext ctx, HalfFloatArray table, IntArray meta, FloatArray x, int dim) {
        int i = ctx.globalIdx, n = rows(meta);
        if (i < dim) {
            for (int b = 0; b < n; b++) {
                x.set(b * dim + i, table.get(meta.get(BatchLayout.TOKEN + b) * dim + i).getFloat32());
            }
        }
    }

    public static void embedF16Bits(KernelContext ctx, ShortArray table, FloatArray pow2, IntArray meta, FloatArray x, int dim) {
        int i = ctx.globalIdx, n = rows(meta);
        if (i < dim) {
            for (int b = 0; b < n; b++) {
                x.set(b * dim + i, KernelSupport.halfToFloat(table.get(meta.get(BatchLayout.TOKEN + b) * dim + i), pow2));
            }
        }
    }

    public static void embedQ8(KernelContext ctx, IntArray q, FloatArray s, IntArray meta, FloatArray x, int dim) {
        int i = ctx.globalIdx, n = rows(meta);
        if (i < dim) {
            for (int b = 0; b < n; b++) {
                int e = meta.get(BatchLayout.TOKEN + b) * dim + i;
                int v = q.get(e >> 2);
                int shift = 24 - ((e & 3) << 3);
                x.set(b * dim + i, ((v << shift) >> 24) * s.get(e >> 5));
            }
        }
    }

    public static void embedQ4(KernelContext ctx, IntArray q, FloatArray s, IntArray meta, FloatArray x, int dim) {
        int i = ctx.globalIdx, n = rows(meta);
        if (i < dim) {
            for (int b = 0; b < n; b++) {
                int e = meta.get(BatchLayout.TOKEN + b) * dim + i;
                int block = e >> 5, j = e & 31;
                int byteIndex = j & 15;
                int v = q.get((block << 2) + (byteIndex >> 2));
                int bits = (v >> ((byteIndex & 3) << 3)) & 255;
                int nib = j < 16 ? (bits & 15) : (bits >> 4);
                x.set(b * dim + i, (nib - 8) * s.get(block));
            }
        }
    }

    // ------------------------------------------------------------------ per-row work-group kernels

    /** {@link #rmsNorm} mode: row b reads x at row meta[OUT_ROW + b] (the rows that want an output). */
    public static final int NORM_GATHER = 1;
    /** {@link #rmsNorm} mode: nothing to do in passes that use the lane products (they normalise by themselves). */
    public static final int NORM_SKIP_LANES = 2;
    /** {@link #rmsNorm} mode: also write the normalised row rounded to the Q8_0 grid ({@link #roundQ8}) to {@code rounded}. */
    public static final int NORM_ROUND = 4;

    /**
     * One work-group per row b &lt; meta[count]: out[b] = x[b] · w / sqrt(mean(x[b]²) + eps), the weight w at
     * vec[off, off + n) and eps at vec[off + n]; with {@link #NORM_ROUND} the same row rounded to the Q8_0 grid goes to
     * {@code rounded} too (llama.cpp's activation quantization, in the norm's pass).
     */
    public static void rmsNorm(KernelContext ctx, FloatArray x, FloatArray vec, FloatArray out, FloatArray rounded, IntArray meta, int count, int n,
                               int off, int mode) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        int lid = ctx.localIdx, wg = ctx.localGroupSizeX, b = ctx.groupIdx;
        boolean skip = (mode & NORM_SKIP_LANES) != 0 && GemmKernels.lanes(meta, rows(meta));
        if (b < meta.get(count) && !skip) {
            int o = ((mode & NORM_GATHER) != 0 ? meta.get(BatchLayout.OUT_ROW + b) : b) * n, d = b * n;
            float ss = 0f;
            for (int i = lid; i < n; i += wg) {
                float v = x.get(o + i);
                ss += v * v;
            }
            float total = KernelSupport.reduceSum(ctx, red, ss);
            float scale = 1.0f / TornadoMath.sqrt(total / n + vec.get(off + n));
            for (int i = lid; i < n; i += wg) {
                out.set(d + i, x.get(o + i) * scale * vec.get(off + i));
            }
            if ((mode & NORM_ROUND) != 0) {
                // each item rounds whole blocks of 32 from the values it recomputes (no item reads another's output)
                int blocks = n >> 5;
                for (int blk = lid; blk <= blocks; blk += wg) {
                    int c0 = blk << 5;
                    if (blk < blocks) {
                        float amax = 0f;
                        for (int j = 0; j < 32; j++) {
                            float v = x.get(o + c0 + j) * scale * vec.get(off + c0 + j);
                            amax = TornadoMath.max(amax, TornadoMath.abs(v));
                        }
                        float id = amax != 0f ? 127f / amax : 0f;
                        float dh = KernelSupport.roundToHalf(amax / 127f);
                        for (int j = 0; j < 32; j++) {
                            float v = x.get(o + c0 + j) * scale * vec.get(off + c0 + j);
                            rounded.set(d + c0 + j, KernelSupport.roundQ8(v, id, dh));
                        }
                    } else {
                        for (int i = c0; i < n; i++) {
                            rounded.set(d + i, x.get(o + i) * scale * vec.get(off + i));
                        }
                    }
                }
            }
        }
    }

    // ------------------------------------------------------------------ element-wise over all rows

    /**
     * x rounded to llama.cpp's Q8_0 grid (per block of 32: scale amax/127 rounded to half precision, values to the
     * nearest multiple, ties to even; a last partial block is copied), rows b &lt; meta[count] (rows of n); item: one block.
     */
    public static void roundQ8(KernelContext ctx, FloatArray x, FloatArray out, IntArray meta, int count, int n) {
        int blk = ctx.globalIdx, rows = meta.get(count);
        int blocks = n >> 5;
        for (int b = 0; b < rows; b++) {
            int ro = b * n;
            if (blk < blocks) {
                int o = ro + (blk << 5);
                float amax = 0f;
                for (int j = 0; j < 32; j++) {
                    amax = TornadoMath.max(amax, TornadoMath.abs(x.get(o + j)));
                }
                float id = amax != 0f ? 127f / amax : 0f;
                float dh = KernelSupport.roundToHalf(amax / 127f);
                for (int j = 0; j < 32; j++) {
                    out.set(o + j, KernelSupport.roundQ8(x.get(o + j), id, dh));
                }
            } else if (blk == blocks) {
                for (int i = blocks << 5; i < n; i++) {
                    out.set(ro + i, x.get(ro + i));
                }
            }
        }
    }

    /**
     * RoPE on every row's Q and K (row b's cos/sin table at rope[b·headDim]) and the K/V write at the row's position in
     * its sequence's slot: cache index (cacheBase_b + pos_b)·kvDim. Item i rotates the pair (2i, 2i+1) of Q (i &lt; qDim/2) and of K
     * (i &lt; kvDim/2) and copies V[i].
     */
    public static void ropeKv(KernelContext ctx, FloatArray q, FloatArray k, FloatArray v, FloatArray keyCache, FloatArray valueCache,
                              FloatArray rope, IntArray meta, int qDim, int kvDim, int headDim) {
        int i = ctx.globalIdx, rows = rows(meta);
        int half = headDim >> 1;
        for (int b = 0; b < rows; b++) {
            int base = (meta.get(BatchLayout.CACHE_BASE + b) + meta.get(BatchLayout.POSITION + b)) * kvDim;
            int ro = b * headDim;
            if (i < (qDim >> 1)) {
                int j = i % half;
                int idx = b * qDim + (i / half) * headDim + 2 * j;
                float c = rope.get(ro + 2 * j), s = rope.get(ro + 2 * j + 1);
                float x0 = q.get(idx), x1 = q.get(idx + 1);
                q.set(idx, x0 * c - x1 * s);
                q.set(idx + 1, x0 * s + x1 * c);
            }
            if (i < (kvDim >> 1)) {
                int j = i % half;
                int kIdx = (i / half) * headDim + 2 * j;
                float c = rope.get(ro + 2 * j), s = rope.get(ro + 2 * j + 1);
                float x0 = k.get(b * kvDim + kIdx), x1 = k.get(b * kvDim + kIdx + 1);
                keyCache.set(base + kIdx, x0 * c - x1 * s);
                keyCache.set(base + kIdx + 1, x0 * s + x1 * c);
            }
            if (i < kvDim) {
                valueCache.set(base + i, v.get(b * kvDim + i));
            }
        }
    }

    /** As {@link #ropeKv} with a half-precision KV cache (raw half bits). */
    public static void ropeKvF16(KernelContext ctx, FloatArray q, FloatArray k, FloatArray v, ShortArray keyCache, ShortArray valueCache,
                                 FloatArray rope, IntArray meta, int qDim, int kvDim, int headDim) {
        int i = ctx.globalIdx, rows = rows(meta);
        int half = headDim >> 1;
        for (int b = 0; b < rows; b++) {
            int base = (meta.get(BatchLayout.CACHE_BASE + b) + meta.get(BatchLayout.POSITION + b)) * kvDim;
            int ro = b * headDim;
            if (i < (qDim >> 1)) {
                int j = i % half;
                int idx = b * qDim + (i / half) * headDim + 2 * j;
                float c = rope.get(ro + 2 * j), s = rope.get(ro + 2 * j + 1);
                float x0 = q.get(idx), x1 = q.get(idx + 1);
                q.set(idx, x0 * c - x1 * s);
                q.set(idx + 1, x0 * s + x1 * c);
            }
            if (i < (kvDim >> 1)) {
                int j = i % half;
                int kIdx = (i / half) * headDim + 2 * j;
                float c = rope.get(ro + 2 * j), s = rope.get(ro + 2 * j + 1);
                float x0 = k.get(b * kvDim + kIdx), x1 = k.get(b * kvDim + kIdx + 1);
                keyCache.set(base + kIdx, KernelSupport.floatToHalf(x0 * c - x1 * s));
                keyCache.set(base + kIdx + 1, KernelSupport.floatToHalf(x0 * s + x1 * c));
            }
            if (i < kvDim) {
                valueCache.set(base + i, KernelSupport.floatToHalf(v.get(b * kvDim + i)));
            }
        }
    }

    // ------------------------------------------------------------------ greedy decoding of every output row

    /** Phase 1: each work-group writes, for every output row j, the best of its strided slice: part[j·groups + group]. */
    public static void argmaxPartial(KernelContext ctx, FloatArray logits, FloatArray partVal, IntArray partIdx, IntArray meta, int n) {
        float[] rv = ctx.allocateFloatLocalArray(KernelSupport.MAX_LOCAL);
        int[] ri = ctx.allocateIntLocalArray(KernelSupport.MAX_LOCAL);
        int lid = ctx.localIdx, groups = ctx.globalGroupSizeX / ctx.localGroupSizeX;
        int m = meta.get(BatchLayout.OUT_ROWS);
        for (int row = 0; row < m; row++) {
            int o = row * n;
            float best = -3.4e38f;
            int bi = n;
            for (int i = ctx.globalIdx; i < n; i += ctx.globalGroupSizeX) {
                float x = logits.get(o + i);
                if (x > best) {
                    best = x;
                    bi = i;
                }
            }
            rv[lid] = best;
            ri[lid] = bi;
            ctx.localBarrier();
            for (int s = ctx.localGroupSizeX / 2; s > 0; s >>= 1) {
                if (lid < s) {
                    float ov = rv[lid + s];
                    int oi = ri[lid + s];
                    if (ov > rv[lid] || (ov == rv[lid] && oi < ri[lid])) {
                        rv[lid] = ov;
                        ri[lid] = oi;
                    }
                }
                ctx.localBarrier();
            }
            if (lid == 0) {
                partVal.set(row * groups + ctx.groupIdx, rv[0]);
                partIdx.set(row * groups + ctx.groupIdx, ri[0]);
            }
            ctx.localBarrier();
        }
    }

    /** Phase 2 (one work-group): result[j] = the winner among output row j's partial results (lowest index on ties). */
    public static void argmaxFinal(KernelContext ctx, FloatArray partVal, IntArray partIdx, IntArray result, IntArray meta, int groups) {
        float[] rv = ctx.allocateFloatLocalArray(KernelSupport.MAX_LOCAL);
        int[] ri = ctx.allocateIntLocalArray(KernelSupport.MAX_LOCAL);
        int lid = ctx.localIdx;
        int m = meta.get(BatchLayout.OUT_ROWS);
        for (int row = 0; row < m; row++) {
            float best = -3.4e38f;
            int bi = 2147483647;
            for (int g = lid; g < groups; g += ctx.localGroupSizeX) {
                float x = partVal.get(row * groups + g);
                int xi = partIdx.get(row * groups + g);
                if (x > best || (x == best && xi < bi)) {
                    best = x;
                    bi = xi;
                }
            }
            rv[lid] = best;
            ri[lid] = bi;
            ctx.localBarrier();
            for (int s = ctx.localGroupSizeX / 2; s > 0; s >>= 1) {
                if (lid < s) {
                    float ov = rv[lid + s];
                    int oi = ri[lid + s];
                    if (ov > rv[lid] || (ov == rv[lid] && oi < ri[lid])) {
                        rv[lid] = ov;
                        ri[lid] = oi;
                    }
                }
                ctx.localBarrier();
            }
            if (lid == 0) {
                result.set(row, ri[0]);
            }
            ctx.localBarrier();
        }
    }
}
