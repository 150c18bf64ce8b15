package internlm.kernels;

import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.math.TornadoMath;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.HalfFloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;
import uk.ac.manchester.tornado.api.types.arrays.ShortArray;

/**
 * The non-product kernels of a decoder layer for a batch of rows (see {@link BatchLayout} for meta and the buffer
 * layouts): embedding, RMSNorm, bias, activation rounding, RoPE with the KV-cache write, attention, gathering the
 * output rows and greedy argmax. Each row is computed exactly as the one-row kernels of {@link LayerKernels} compute
 * it, in the same order, so a row's result does not depend on the rest of the batch. Grids that do not depend on the
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

    /** One work-group per row b &lt; meta[count]: out[b] = x[b] · weight / sqrt(mean(x[b]²) + eps). */
    public static void rmsNorm(KernelContext ctx, FloatArray x, FloatArray weight, FloatArray out, IntArray meta, int count, int n, float eps) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        int lid = ctx.localIdx, wg = ctx.localGroupSizeX, b = ctx.groupIdx;
        if (b < meta.get(count)) {
            int o = b * n;
            float ss = 0f;
            for (int i = lid; i < n; i += wg) {
                float v = x.get(o + i);
                ss += v * v;
            }
            float total = KernelSupport.reduceSum(ctx, red, ss);
            float scale = 1.0f / TornadoMath.sqrt(total / n + eps);
            for (int i = lid; i < n; i += wg) {
                out.set(o + i, x.get(o + i) * scale * weight.get(i));
            }
        }
    }

    /**
     * One work-group per (row, query head): group g = b·heads + h attends over positions [0, pos_b] of row b's cache
     * slot, as {@link LayerKernels#attention} (tiles of keys in local memory, online softmax). Rows of one sequence in
     * the same batch see each other's keys (written by {@link #ropeKv} before this kernel runs): causal prompt chunks.
     */
    public static void attention(KernelContext ctx, FloatArray q, FloatArray keyCache, FloatArray valueCache, FloatArray out,
                                 IntArray meta, int heads, int kvHeads, int headDim) {
        float[] qs = ctx.allocateFloatLocalArray(KernelSupport.MAX_HEAD_DIM);
        float[] ks = ctx.allocateFloatLocalArray(KernelSupport.ATTENTION_TILE * KernelSupport.MAX_HEAD_DIM);
        float[] ps = ctx.allocateFloatLocalArray(KernelSupport.ATTENTION_TILE);
        int lid = ctx.localIdx, wg = ctx.localGroupSizeX;
        int b = ctx.groupIdx / heads, h = ctx.groupIdx - b * heads;
        if (b < rows(meta)) {
            int kvDim = kvHeads * headDim, qDim = heads * headDim;
            int g = h / (heads / kvHeads);
            int len = meta.get(BatchLayout.POSITION + b) + 1;
            int cache = meta.get(BatchLayout.CACHE_BASE + b) * kvDim + g * headDim;
            float scale = 1.0f / TornadoMath.sqrt((float) headDim);
            for (int d = lid; d < headDim; d += wg) {
                qs[d] = q.get(b * qDim + h * headDim + d) * scale;
            }
            ctx.localBarrier();
            float m = -3.0e38f, l = 0f, acc = 0f;
            for (int t0 = 0; t0 < len; t0 += KernelSupport.ATTENTION_TILE) {
                int n = TornadoMath.min(KernelSupport.ATTENTION_TILE, len - t0);
                for (int e = lid; e < n * headDim; e += wg) {
                    int j = e / headDim;
                    ks[e] = keyCache.get(cache + (t0 + j) * kvDim + (e - j * headDim));
                }
                ctx.localBarrier();
                if (lid < n) {
                    float s = 0f;
                    for (int d = 0; d < headDim; d++) {
                        s += qs[d] * ks[lid * headDim + d];
                    }
                    ps[lid] = s;
                }
                ctx.localBarrier();
                float tmax = m;
                for (int j = 0; j < n; j++) {
                    tmax = TornadoMath.max(tmax, ps[j]);
                }
                float corr = TornadoMath.exp(m - tmax);
                float sum = 0f, a = 0f;
                for (int j = 0; j < n; j++) {
                    float p = TornadoMath.exp(ps[j] - tmax);
                    sum += p;
                    if (lid < headDim) {
                        a += p * valueCache.get(cache + (t0 + j) * kvDim + lid);
                    }
                }
                l = l * corr + sum;
                acc = acc * corr + a;
                m = tmax;
                ctx.localBarrier();
            }
            if (lid < headDim) {
                out.set(b * qDim + h * headDim + lid, acc / l);
            }
        }
    }

    /** As {@link #attention} with a half-precision KV cache (raw half bits). */
    public static void attentionF16(KernelContext ctx, FloatArray q, ShortArray keyCache, ShortArray valueCache, FloatArray pow2, FloatArray out,
                                    IntArray meta, int heads, int kvHeads, int headDim) {
        float[] qs = ctx.allocateFloatLocalArray(KernelSupport.MAX_HEAD_DIM);
        float[] ks = ctx.allocateFloatLocalArray(KernelSupport.ATTENTION_TILE * KernelSupport.MAX_HEAD_DIM);
        float[] ps = ctx.allocateFloatLocalArray(KernelSupport.ATTENTION_TILE);
        int lid = ctx.localIdx, wg = ctx.localGroupSizeX;
        int b = ctx.groupIdx / heads, h = ctx.groupIdx - b * heads;
        if (b < rows(meta)) {
            int kvDim = kvHeads * headDim, qDim = heads * headDim;
            int g = h / (heads / kvHeads);
            int len = meta.get(BatchLayout.POSITION + b) + 1;
            int cache = meta.get(BatchLayout.CACHE_BASE + b) * kvDim + g * headDim;
            float scale = 1.0f / TornadoMath.sqrt((float) headDim);
            for (int d = lid; d < headDim; d += wg) {
                qs[d] = q.get(b * qDim + h * headDim + d) * scale;
            }
            ctx.localBarrier();
            float m = -3.0e38f, l = 0f, acc = 0f;
            for (int t0 = 0; t0 < len; t0 += KernelSupport.ATTENTION_TILE) {
                int n = TornadoMath.min(KernelSupport.ATTENTION_TILE, len - t0);
                for (int e = lid; e < n * headDim; e += wg) {
                    int j = e / headDim;
                    ks[e] = KernelSupport.halfToFloat(keyCache.get(cache + (t0 + j) * kvDim + (e - j * headDim)), pow2);
                }
                ctx.localBarrier();
                if (lid < n) {
                    float s = 0f;
                    for (int d = 0; d < headDim; d++) {
                        s += qs[d] * ks[lid * headDim + d];
                    }
                    ps[lid] = s;
                }
                ctx.localBarrier();
                float tmax = m;
                for (int j = 0; j < n; j++) {
                    tmax = TornadoMath.max(tmax, ps[j]);
                }
                float corr = TornadoMath.exp(m - tmax);
                float sum = 0f, a = 0f;
                for (int j = 0; j < n; j++) {
                    float p = TornadoMath.exp(ps[j] - tmax);
                    sum += p;
                    if (lid < headDim) {
                        a += p * KernelSupport.halfToFloat(valueCache.get(cache + (t0 + j) * kvDim + lid), pow2);
                    }
                }
                l = l * corr + sum;
                acc = acc * corr + a;
                m = tmax;
                ctx.localBarrier();
            }
            if (lid < headDim) {
                out.set(b * qDim + h * headDim + lid, acc / l);
            }
        }
    }

    // ------------------------------------------------------------------ element-wise over all rows

    /** y[b] += bias for every row (y rows of n). */
    public static void addBias(KernelContext ctx, FloatArray y, FloatArray bias, IntArray meta, int n) {
        int i = ctx.globalIdx, rows = rows(meta);
        if (i < n) {
            float v = bias.get(i);
            for (int b = 0; b < rows; b++) {
                y.set(b * n + i, y.get(b * n + i) + v);
            }
        }
    }

    /** x rounded to the Q8_0 grid as {@link LayerKernels#roundQ8}, rows b &lt; meta[count] (rows of n); item: one block of 32. */
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
                    float v = x.get(o + j) * id;
                    float fl = TornadoMath.floor(v);
                    float diff = v - fl;
                    if (diff > 0.5f || (diff == 0.5f && (((int) fl) & 1) != 0)) {
                        fl += 1f;
                    }
                    out.set(o + j, dh * fl);
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
     * its sequence's slot: cache index (cacheBase_b + pos_b)·kvDim. Item i as {@link LayerKernels#ropeKv}.
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

    /** out[j] = x[outRow_j] for the rows that want an output (rows of n): the final norm and LM head run on these only. */
    public static void gatherOutputs(KernelContext ctx, FloatArray x, FloatArray out, IntArray meta, int n) {
        int i = ctx.globalIdx, m = meta.get(BatchLayout.OUT_ROWS);
        if (i < n) {
            for (int j = 0; j < m; j++) {
                out.set(j * n + i, x.get(meta.get(BatchLayout.OUT_ROW + j) * n + i));
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
