package internlm.kernels;

import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.math.TornadoMath;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.HalfFloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;
import uk.ac.manchester.tornado.api.types.arrays.ShortArray;

/**
 * The non-matmul kernels of a decoder layer: embedding lookup, RMSNorm, bias add, llama.cpp-compatible activation
 * rounding, RoPE fused with the KV-cache write, attention and greedy argmax. {@code state} is an IntArray
 * {token, position} copied to the device every step; {@code rope} holds cos/sin of pos·base^(−2i/headDim) for the
 * current position, computed on the host in double precision from the model's theta (or the dynamically rescaled base)
 * — the base is data, never a constant in a kernel.
 */
public final class LayerKernels {
    private LayerKernels() {}

    // ------------------------------------------------------------------ embedding: x = table[token]

    public static void embedF32(KernelContext ctx, FloatArray table, IntArray state, FloatArray x, int dim) {
        int i = ctx.globalIdx;
        if (i < dim) {
            x.set(i, table.get(state.get(0) * dim + i));
        }
    }

    public static void embedF16(KernelContext ctx, HalfFloatArray table, IntArray state, FloatArray x, int dim) {
        int i = ctx.globalIdx;
        if (i < dim) {
            x.set(i, table.get(state.get(0) * dim + i).getFloat32());
        }
    }

    public static void embedF16Bits(KernelContext ctx, ShortArray table, FloatArray pow2, IntArray state, FloatArray x, int dim) {
        int i = ctx.globalIdx;
        if (i < dim) {
            x.set(i, KernelSupport.halfToFloat(table.get(state.get(0) * dim + i), pow2));
        }
    }

    public static void embedQ8(KernelContext ctx, IntArray q, FloatArray s, IntArray state, FloatArray x, int dim) {
        int i = ctx.globalIdx;
        if (i < dim) {
            int e = state.get(0) * dim + i;
            int v = q.get(e >> 2);
            int shift = 24 - ((e & 3) << 3);
            x.set(i, ((v << shift) >> 24) * s.get(e >> 5));
        }
    }

    public static void embedQ4(KernelContext ctx, IntArray q, FloatArray s, IntArray state, FloatArray x, int dim) {
        int i = ctx.globalIdx;
        if (i < dim) {
            int e = state.get(0) * dim + i;
            int block = e >> 5, j = e & 31;
            int byteIndex = j & 15;
            int v = q.get((block << 2) + (byteIndex >> 2));
            int b = (v >> ((byteIndex & 3) << 3)) & 255;
            int nib = j < 16 ? (b & 15) : (b >> 4);
            x.set(i, (nib - 8) * s.get(block));
        }
    }

    // ------------------------------------------------------------------ RMSNorm

    /** One work-group: out = x · weight / sqrt(mean(x²) + eps). */
    public static void rmsNorm(KernelContext ctx, FloatArray x, FloatArray weight, FloatArray out, int n, float eps) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        int lid = ctx.localIdx, wg = ctx.localGroupSizeX;
        float ss = 0f;
        for (int i = lid; i < n; i += wg) {
            float v = x.get(i);
            ss += v * v;
        }
        float total = KernelSupport.reduceSum(ctx, red, ss);
        float scale = 1.0f / TornadoMath.sqrt(total / n + eps);
        for (int i = lid; i < n; i += wg) {
            out.set(i, x.get(i) * scale * weight.get(i));
        }
    }

    /** Two-phase RMSNorm, phase 1: each work-group writes the sum of squares of its strided slice. */
    public static void rmsPartials(KernelContext ctx, FloatArray x, FloatArray partials, int n) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        float ss = 0f;
        for (int i = ctx.globalIdx; i < n; i += ctx.globalGroupSizeX) {
            float v = x.get(i);
            ss += v * v;
        }
        float total = KernelSupport.reduceSum(ctx, red, ss);
        if (ctx.localIdx == 0) {
            partials.set(ctx.groupIdx, total);
        }
    }

    /** Two-phase RMSNorm, phase 2: every work-item combines the partials and scales its elements. */
    public static void rmsApply(KernelContext ctx, FloatArray x, FloatArray weight, FloatArray out, FloatArray partials, int groups, int n, float eps) {
        float total = 0f;
        for (int g = 0; g < groups; g++) {
            total += partials.get(g);
        }
        float scale = 1.0f / TornadoMath.sqrt(total / n + eps);
        for (int i = ctx.globalIdx; i < n; i += ctx.globalGroupSizeX) {
            out.set(i, x.get(i) * scale * weight.get(i));
        }
    }

    /** y += b (q/k/v/o biases of InternLM v1). */
    public static void addBias(KernelContext ctx, FloatArray y, FloatArray b, int n) {
        int i = ctx.globalIdx;
        if (i < n) {
            y.set(i, y.get(i) + b.get(i));
        }
    }

    // ------------------------------------------------------------------ llama.cpp-compatible activation rounding

    /**
     * One work-item per block of 32: out = x rounded to the Q8_0 grid as ggml-cpu quantizes activations before
     * Q8_0/Q4_0 products (d = max|x|/127 stored as f16, q = x·(127/max|x|) rounded half to even). A tail of n % 32
     * is copied.
     */
    public static void roundQ8(KernelContext ctx, FloatArray x, FloatArray out, int n) {
        int b = ctx.globalIdx;
        int blocks = n >> 5;
        if (b < blocks) {
            int o = b << 5;
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
        } else if (b == blocks) {
            for (int i = blocks << 5; i < n; i++) {
                out.set(i, x.get(i));
            }
        }
    }

    // ------------------------------------------------------------------ RoPE + KV cache

    /**
     * Rotates Q and K in adjacent pairs (GGUF order) and writes K and V at the current position of this layer's
     * cache. Work-item i: rotates Q pair i (i &lt; qDim/2), K pair i (i &lt; kvDim/2) and copies V element i (i &lt; kvDim).
     */
    public static void ropeKv(KernelContext ctx, FloatArray q, FloatArray k, FloatArray v, FloatArray keyCache, FloatArray valueCache,
                              FloatArray rope, IntArray state, int qDim, int kvDim, int headDim) {
        int i = ctx.globalIdx;
        int half = headDim >> 1;
        int base = state.get(1) * kvDim;
        if (i < (qDim >> 1)) {
            int j = i % half;
            int idx = (i / half) * headDim + 2 * j;
            float c = rope.get(2 * j), s = rope.get(2 * j + 1);
            float a = q.get(idx), b = q.get(idx + 1);
            q.set(idx, a * c - b * s);
            q.set(idx + 1, a * s + b * c);
        }
        if (i < (kvDim >> 1)) {
            int j = i % half;
            int idx = (i / half) * headDim + 2 * j;
            float c = rope.get(2 * j), s = rope.get(2 * j + 1);
            float a = k.get(idx), b = k.get(idx + 1);
            float ra = a * c - b * s, rb = a * s + b * c;
            k.set(idx, ra);
            k.set(idx + 1, rb);
            keyCache.set(base + idx, ra);
            keyCache.set(base + idx + 1, rb);
        }
        if (i < kvDim) {
            valueCache.set(base + i, v.get(i));
        }
    }

    /** As {@link #ropeKv} with a half-precision KV cache (raw half bits in a ShortArray). */
    public static void ropeKvF16(KernelContext ctx, FloatArray q, FloatArray k, FloatArray v, ShortArray keyCache, ShortArray valueCache,
                                 FloatArray rope, IntArray state, int qDim, int kvDim, int headDim) {
        int i = ctx.globalIdx;
        int half = headDim >> 1;
        int base = state.get(1) * kvDim;
        if (i < (qDim >> 1)) {
            int j = i % half;
            int idx = (i / half) * headDim + 2 * j;
            float c = rope.get(2 * j), s = rope.get(2 * j + 1);
            float a = q.get(idx), b = q.get(idx + 1);
            q.set(idx, a * c - b * s);
            q.set(idx + 1, a * s + b * c);
        }
        if (i < (kvDim >> 1)) {
            int j = i % half;
            int idx = (i / half) * headDim + 2 * j;
            float c = rope.get(2 * j), s = rope.get(2 * j + 1);
            float a = k.get(idx), b = k.get(idx + 1);
            float ra = a * c - b * s, rb = a * s + b * c;
            k.set(idx, ra);
            k.set(idx + 1, rb);
            keyCache.set(base + idx, KernelSupport.floatToHalf(ra));
            keyCache.set(base + idx + 1, KernelSupport.floatToHalf(rb));
        }
        if (i < kvDim) {
            valueCache.set(base + i, KernelSupport.floatToHalf(v.get(i)));
        }
    }

    // ------------------------------------------------------------------ attention

    /**
     * Attention of the current token's query heads against the cache, one work-group per query head (grouped-query:
     * head h reads KV head h / (heads/kvHeads)). Keys come in tiles of {@link KernelSupport#ATTENTION_TILE}
     * positions through local memory; the softmax is computed online (running max and sum), so any context length
     * works in one pass. The work-group size must be a power of two ≥ headDim.
     */
    public static void attention(KernelContext ctx, FloatArray q, FloatArray keyCache, FloatArray valueCache, FloatArray out,
                                 IntArray state, int heads, int kvHeads, int headDim) {
        float[] qs = ctx.allocateFloatLocalArray(KernelSupport.MAX_HEAD_DIM);
        float[] ks = ctx.allocateFloatLocalArray(KernelSupport.ATTENTION_TILE * KernelSupport.MAX_HEAD_DIM);
        float[] ps = ctx.allocateFloatLocalArray(KernelSupport.ATTENTION_TILE);
        int h = ctx.groupIdx, lid = ctx.localIdx, wg = ctx.localGroupSizeX;
        int kvDim = kvHeads * headDim;
        int g = h / (heads / kvHeads);
        int len = state.get(1) + 1;
        float scale = 1.0f / TornadoMath.sqrt((float) headDim);
        for (int d = lid; d < headDim; d += wg) {
            qs[d] = q.get(h * headDim + d) * scale;
        }
        ctx.localBarrier();
        float m = -3.0e38f, l = 0f, acc = 0f;
        for (int t0 = 0; t0 < len; t0 += KernelSupport.ATTENTION_TILE) {
            int n = TornadoMath.min(KernelSupport.ATTENTION_TILE, len - t0);
            for (int e = lid; e < n * headDim; e += wg) {
                int j = e / headDim;
                ks[e] = keyCache.get((t0 + j) * kvDim + g * headDim + (e - j * headDim));
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
                    a += p * valueCache.get((t0 + j) * kvDim + g * headDim + lid);
                }
            }
            l = l * corr + sum;
            acc = acc * corr + a;
            m = tmax;
            ctx.localBarrier();
        }
        if (lid < headDim) {
            out.set(h * headDim + lid, acc / l);
        }
    }

    /** As {@link #attention} with a half-precision KV cache (raw half bits decoded with the power-of-two table). */
    public static void attentionF16(KernelContext ctx, FloatArray q, ShortArray keyCache, ShortArray valueCache, FloatArray pow2, FloatArray out,
                                    IntArray state, int heads, int kvHeads, int headDim) {
        float[] qs = ctx.allocateFloatLocalArray(KernelSupport.MAX_HEAD_DIM);
        float[] ks = ctx.allocateFloatLocalArray(KernelSupport.ATTENTION_TILE * KernelSupport.MAX_HEAD_DIM);
        float[] ps = ctx.allocateFloatLocalArray(KernelSupport.ATTENTION_TILE);
        int h = ctx.groupIdx, lid = ctx.localIdx, wg = ctx.localGroupSizeX;
        int kvDim = kvHeads * headDim;
        int g = h / (heads / kvHeads);
        int len = state.get(1) + 1;
        float scale = 1.0f / TornadoMath.sqrt((float) headDim);
        for (int d = lid; d < headDim; d += wg) {
            qs[d] = q.get(h * headDim + d) * scale;
        }
        ctx.localBarrier();
        float m = -3.0e38f, l = 0f, acc = 0f;
        for (int t0 = 0; t0 < len; t0 += KernelSupport.ATTENTION_TILE) {
            int n = TornadoMath.min(KernelSupport.ATTENTION_TILE, len - t0);
            for (int e = lid; e < n * headDim; e += wg) {
                int j = e / headDim;
                ks[e] = KernelSupport.halfToFloat(keyCache.get((t0 + j) * kvDim + g * headDim + (e - j * headDim)), pow2);
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
                    a += p * KernelSupport.halfToFloat(valueCache.get((t0 + j) * kvDim + g * headDim + lid), pow2);
                }
            }
            l = l * corr + sum;
            acc = acc * corr + a;
            m = tmax;
            ctx.localBarrier();
        }
        if (lid < headDim) {
            out.set(h * headDim + lid, acc / l);
        }
    }

    // ------------------------------------------------------------------ greedy decoding on the device

    /** Phase 1: each work-group finds the largest value (lowest index on ties) of its strided slice. */
    public static void argmaxPartial(KernelContext ctx, FloatArray v, FloatArray partVal, IntArray partIdx, int n) {
        float[] rv = ctx.allocateFloatLocalArray(KernelSupport.MAX_LOCAL);
        int[] ri = ctx.allocateIntLocalArray(KernelSupport.MAX_LOCAL);
        int lid = ctx.localIdx;
        float best = -3.4e38f;
        int bi = n;
        for (int i = ctx.globalIdx; i < n; i += ctx.globalGroupSizeX) {
            float x = v.get(i);
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
                float o = rv[lid + s];
                int oi = ri[lid + s];
                if (o > rv[lid] || (o == rv[lid] && oi < ri[lid])) {
                    rv[lid] = o;
                    ri[lid] = oi;
                }
            }
            ctx.localBarrier();
        }
        if (lid == 0) {
            partVal.set(ctx.groupIdx, rv[0]);
            partIdx.set(ctx.groupIdx, ri[0]);
        }
    }

    /** Phase 2 (one work-group): the winner among the partial results, into result[0]. */
    public static void argmaxFinal(KernelContext ctx, FloatArray partVal, IntArray partIdx, IntArray result, int groups) {
        float[] rv = ctx.allocateFloatLocalArray(KernelSupport.MAX_LOCAL);
        int[] ri = ctx.allocateIntLocalArray(KernelSupport.MAX_LOCAL);
        int lid = ctx.localIdx;
        float best = -3.4e38f;
        int bi = 2147483647;
        for (int g = lid; g < groups; g += ctx.localGroupSizeX) {
            float x = partVal.get(g);
            int xi = partIdx.get(g);
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
                float o = rv[lid + s];
                int oi = ri[lid + s];
                if (o > rv[lid] || (o == rv[lid] && oi < ri[lid])) {
                    rv[lid] = o;
                    ri[lid] = oi;
                }
            }
            ctx.localBarrier();
        }
        if (lid == 0) {
            result.set(0, ri[0]);
        }
    }
}
