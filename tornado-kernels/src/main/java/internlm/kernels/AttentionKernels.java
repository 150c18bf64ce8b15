package internlm.kernels;

import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.math.TornadoMath;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;
import uk.ac.manchester.tornado.api.types.arrays.ShortArray;

/**
 * Attention of every row of a batch over its sequence's KV-cache slot (see {@link BatchLayout}), for F32 and F16
 * caches: in one pass with a work-group per (row, query head), or split over the context (flash-decoding: a
 * work-group per (row, head, chunk), then a merge), so that a long context fills a GPU. Keys are staged in local
 * memory in tiles of {@link KernelSupport#ATTENTION_TILE} positions, with an online softmax. Rows of one sequence in
 * the same batch see each other's keys (written by {@link BatchKernels#ropeKv} before): causal prompt chunks.
 */
public final class AttentionKernels {
    private AttentionKernels() {}

    /**
     * One work-group per (row, query head): group g = b·heads + h attends over positions [0, pos_b] of row b's cache
     * slot. With {@code round} the output is rounded to llama.cpp's Q8_0 grid for the next product (the head dimension
     * must then be a multiple of 32, so that every block lies within one head).
     */
    public static void attention(KernelContext ctx, FloatArray q, FloatArray keyCache, FloatArray valueCache, FloatArray out,
                                 IntArray meta, int heads, int kvHeads, int headDim, int round) {
        float[] qs = ctx.allocateFloatLocalArray(KernelSupport.MAX_HEAD_DIM);
        float[] ks = ctx.allocateFloatLocalArray(KernelSupport.ATTENTION_TILE * KernelSupport.MAX_HEAD_DIM);
        float[] ps = ctx.allocateFloatLocalArray(KernelSupport.ATTENTION_TILE);
        int lid = ctx.localIdx, wg = ctx.localGroupSizeX;
        int b = ctx.groupIdx / heads, h = ctx.groupIdx - b * heads;
        if (b < meta.get(BatchLayout.ROWS)) {
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
            float res = acc / l;
            if (round != 0) {
                // llama.cpp's Q8_0 rounding of the output for the next product (headDim a multiple of 32: blocks within the head)
                ctx.localBarrier();
                if (lid < headDim) {
                    qs[lid] = res;
                }
                ctx.localBarrier();
                if (lid < headDim) {
                    int c0 = (lid >> 5) << 5;
                    float amax = 0f;
                    for (int j = 0; j < 32; j++) {
                        amax = TornadoMath.max(amax, TornadoMath.abs(qs[c0 + j]));
                    }
                    res = KernelSupport.roundQ8(res, amax != 0f ? 127f / amax : 0f, KernelSupport.roundToHalf(amax / 127f));
                }
            }
            if (lid < headDim) {
                out.set(b * qDim + h * headDim + lid, res);
            }
        }
    }

    /** As {@link #attention} with a half-precision KV cache (raw half bits). */
    public static void attentionF16(KernelContext ctx, FloatArray q, ShortArray keyCache, ShortArray valueCache, FloatArray pow2, FloatArray out,
                                    IntArray meta, int heads, int kvHeads, int headDim, int round) {
        float[] qs = ctx.allocateFloatLocalArray(KernelSupport.MAX_HEAD_DIM);
        float[] ks = ctx.allocateFloatLocalArray(KernelSupport.ATTENTION_TILE * KernelSupport.MAX_HEAD_DIM);
        float[] ps = ctx.allocateFloatLocalArray(KernelSupport.ATTENTION_TILE);
        int lid = ctx.localIdx, wg = ctx.localGroupSizeX;
        int b = ctx.groupIdx / heads, h = ctx.groupIdx - b * heads;
        if (b < meta.get(BatchLayout.ROWS)) {
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
            float res = acc / l;
            if (round != 0) {
                // llama.cpp's Q8_0 rounding of the output for the next product (headDim a multiple of 32: blocks within the head)
                ctx.localBarrier();
                if (lid < headDim) {
                    qs[lid] = res;
                }
                ctx.localBarrier();
                if (lid < headDim) {
                    int c0 = (lid >> 5) << 5;
                    float amax = 0f;
                    for (int j = 0; j < 32; j++) {
                        amax = TornadoMath.max(amax, TornadoMath.abs(qs[c0 + j]));
                    }
                    res = KernelSupport.roundQ8(res, amax != 0f ? 127f / amax : 0f, KernelSupport.roundToHalf(amax / 127f));
                }
            }
            if (lid < headDim) {
                out.set(b * qDim + h * headDim + lid, res);
            }
        }
    }

    /**
     * Flash-decoding, first phase: one work-group per (row, query head, split) — group g = (b·heads + h)·splits + s —
     * attends over chunk s of the row's positions [0, pos_b] (meta[SPLITS] active splits of equal length; splits past
     * them do nothing) and writes its unnormalised output, running max and sum of exponentials to part[g·(headDim+2)…]
     * for {@link #attentionMerge}. A long context then occupies heads·splits work-groups per row, not heads.
     */
    public static void attentionPartial(KernelContext ctx, FloatArray q, FloatArray keyCache, FloatArray valueCache, FloatArray part,
                                 IntArray meta, int heads, int kvHeads, int headDim, int splits) {
        float[] qs = ctx.allocateFloatLocalArray(KernelSupport.MAX_HEAD_DIM);
        float[] ks = ctx.allocateFloatLocalArray(KernelSupport.ATTENTION_TILE * KernelSupport.MAX_HEAD_DIM);
        float[] ps = ctx.allocateFloatLocalArray(KernelSupport.ATTENTION_TILE);
        int lid = ctx.localIdx, wg = ctx.localGroupSizeX;
        int bh = ctx.groupIdx / splits, sp = ctx.groupIdx - bh * splits;
        int b = bh / heads, h = bh - b * heads;
        int active = meta.get(BatchLayout.SPLITS);
        if (b < meta.get(BatchLayout.ROWS) && sp < active) {
            int kvDim = kvHeads * headDim, qDim = heads * headDim;
            int g = h / (heads / kvHeads);
            int len = meta.get(BatchLayout.POSITION + b) + 1;
            int chunk = (len + active - 1) / active, first = sp * chunk, end = TornadoMath.min(len, first + chunk);
            int cache = meta.get(BatchLayout.CACHE_BASE + b) * kvDim + g * headDim;
            float scale = 1.0f / TornadoMath.sqrt((float) headDim);
            for (int d = lid; d < headDim; d += wg) {
                qs[d] = q.get(b * qDim + h * headDim + d) * scale;
            }
            ctx.localBarrier();
            float m = -3.0e38f, l = 0f, acc = 0f;
            for (int t0 = first; t0 < end; t0 += KernelSupport.ATTENTION_TILE) {
                int n = TornadoMath.min(KernelSupport.ATTENTION_TILE, end - t0);
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
            // unnormalised partial result of this chunk: acc, then its running max and sum of exponentials
            int po = ctx.groupIdx * (headDim + 2);
            if (lid < headDim) {
                part.set(po + lid, acc);
            }
            if (lid == 0) {
                part.set(po + headDim, m);
                part.set(po + headDim + 1, l);
            }
        }
    }

    /** As {@link #attentionPartial} with a half-precision KV cache (raw half bits). */
    public static void attentionPartialF16(KernelContext ctx, FloatArray q, ShortArray keyCache, ShortArray valueCache, FloatArray pow2, FloatArray part,
                                    IntArray meta, int heads, int kvHeads, int headDim, int splits) {
        float[] qs = ctx.allocateFloatLocalArray(KernelSupport.MAX_HEAD_DIM);
        float[] ks = ctx.allocateFloatLocalArray(KernelSupport.ATTENTION_TILE * KernelSupport.MAX_HEAD_DIM);
        float[] ps = ctx.allocateFloatLocalArray(KernelSupport.ATTENTION_TILE);
        int lid = ctx.localIdx, wg = ctx.localGroupSizeX;
        int bh = ctx.groupIdx / splits, sp = ctx.groupIdx - bh * splits;
        int b = bh / heads, h = bh - b * heads;
        int active = meta.get(BatchLayout.SPLITS);
        if (b < meta.get(BatchLayout.ROWS) && sp < active) {
            int kvDim = kvHeads * headDim, qDim = heads * headDim;
            int g = h / (heads / kvHeads);
            int len = meta.get(BatchLayout.POSITION + b) + 1;
            int chunk = (len + active - 1) / active, first = sp * chunk, end = TornadoMath.min(len, first + chunk);
            int cache = meta.get(BatchLayout.CACHE_BASE + b) * kvDim + g * headDim;
            float scale = 1.0f / TornadoMath.sqrt((float) headDim);
            for (int d = lid; d < headDim; d += wg) {
                qs[d] = q.get(b * qDim + h * headDim + d) * scale;
            }
            ctx.localBarrier();
            float m = -3.0e38f, l = 0f, acc = 0f;
            for (int t0 = first; t0 < end; t0 += KernelSupport.ATTENTION_TILE) {
                int n = TornadoMath.min(KernelSupport.ATTENTION_TILE, end - t0);
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
            // unnormalised partial result of this chunk: acc, then its running max and sum of exponentials
            int po = ctx.groupIdx * (headDim + 2);
            if (lid < headDim) {
                part.set(po + lid, acc);
            }
            if (lid == 0) {
                part.set(po + headDim, m);
                part.set(po + headDim + 1, l);
            }
        }
    }

    /**
     * Flash-decoding, second phase: one work-group per (row, query head) combines the active splits' partial results
     * (each rescaled by exp(its max − the overall max)) into the normalised output; {@code round} as in
     * {@link #attention}.
     */
    public static void attentionMerge(KernelContext ctx, FloatArray part, FloatArray out, IntArray meta, int heads, int headDim, int splits, int round) {
        float[] os = ctx.allocateFloatLocalArray(KernelSupport.MAX_HEAD_DIM);
        int lid = ctx.localIdx, bh = ctx.groupIdx;
        int b = bh / heads, h = bh - b * heads;
        if (b < meta.get(BatchLayout.ROWS)) {
            int active = meta.get(BatchLayout.SPLITS), stride = headDim + 2, base = bh * splits * stride;
            float mx = -3.0e38f;
            for (int s = 0; s < active; s++) {
                mx = TornadoMath.max(mx, part.get(base + s * stride + headDim));
            }
            float l = 0f, acc = 0f;
            for (int s = 0; s < active; s++) {
                int po = base + s * stride;
                float w = TornadoMath.exp(part.get(po + headDim) - mx);
                l += part.get(po + headDim + 1) * w;
                if (lid < headDim) {
                    acc += part.get(po + lid) * w;
                }
            }
            float res = acc / l;
            if (round != 0) {
                if (lid < headDim) {
                    os[lid] = res;
                }
                ctx.localBarrier();
                if (lid < headDim) {
                    int c0 = (lid >> 5) << 5;
                    float amax = 0f;
                    for (int j = 0; j < 32; j++) {
                        amax = TornadoMath.max(amax, TornadoMath.abs(os[c0 + j]));
                    }
                    res = KernelSupport.roundQ8(res, amax != 0f ? 127f / amax : 0f, KernelSupport.roundToHalf(amax / 127f));
                }
            }
            if (lid < headDim) {
                out.set(b * heads * headDim + h * headDim + lid, res);
            }
        }
    }
}
