package internlm.engine.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;

import static internlm.engine.cpu.VectorKernels.F;
import static internlm.engine.cpu.VectorKernels.I;
import static internlm.engine.cpu.VectorKernels.L;
import static internlm.engine.cpu.VectorKernels.S;
import static internlm.engine.cpu.VectorKernels.VECTOR;

/**
 * The CPU backend's attention kernels over one KV head of a {@link KvCache} (keys in transposed blocks of
 * {@link KvCache#BLOCK} positions, values [position][headDim]), for float and half-precision caches.
 *
 * <p>Scores: a vector holds the scores of L consecutive positions, summed over d as fma(k[t, d], q[d], acc) from 0 in
 * d order — no reduction across lanes; four vectors at once (four independent FMA chains). Values: out[c] = Σ_t p[t] ·
 * v[t, c], each element summed from 0 in t order, the accumulators in registers. The pair variants run two query heads
 * of the same KV head together, each cache vector loaded (and converted) once for both; each head's result has the same
 * bits as the single-head kernel's. A row's attention reads only its own sequence's cache: batch-invariant.
 */
public final class AttentionKernels {
    private AttentionKernels() {}

    /** The largest of s[0, n). */
    static float max(float[] s, int n) {
        float m = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            m = Math.max(m, s[i]);
        }
        return m;
    }

    /**
     * L half-precision values from h[off] as floats. Exact for every finite half (normals and subnormals): the sign
     * and the 15 bits below it moved to float's positions (the int lane is sign-extended, so bit 31 is the sign), then
     * scaled by 2^112 to re-bias the exponent. Infinities and NaNs come out as large finite values (a cache entry only
     * holds one when a key or value overflowed half precision).
     */
    private static FloatVector half(short[] h, int off) {
        IntVector i = (IntVector) ShortVector.fromArray(S, h, off).convertShape(VectorOperators.S2I, I, 0);
        return i.lanewise(VectorOperators.LSHL, 13).and(0x8FFFE000).reinterpretAsFloats().mul(0x1p112f);
    }

    // ------------------------------------------------------------------------------------------------------ scores

    /**
     * scores[t] = scale · Σ_d q[qOff + d]·K[t, d] for from ≤ t &lt; len over one head's keys ({@code from} a multiple
     * of {@link KvCache#BLOCK}: positions before it may come from another cache holding the same prefix). Entries from
     * len up to the next multiple of L are written too (any value): {@code scores} holds len rounded up to a block.
     */
    public static void keyScores(float[] q, int qOff, float[] keys, int from, int len, int headDim, float scale, float[] scores) {
        final int bl = KvCache.BLOCK;
        if (!VECTOR) {
            for (int t = from; t < len; t++) {
                float a = 0;
                for (int d = 0; d < headDim; d++) {
                    a = Math.fma(keys[KvCache.keyIndex(t, d, headDim)], q[qOff + d], a);
                }
                scores[t] = a * scale;
            }
            return;
        }
        int vectors = (len + L - 1) / L, m = from / L;
        for (; m + 4 <= vectors; m += 4) {
            int o0 = KvCache.keyIndex(m * L, 0, headDim), o1 = KvCache.keyIndex((m + 1) * L, 0, headDim);
            int o2 = KvCache.keyIndex((m + 2) * L, 0, headDim), o3 = KvCache.keyIndex((m + 3) * L, 0, headDim);
            FloatVector a0 = FloatVector.zero(F), a1 = FloatVector.zero(F), a2 = FloatVector.zero(F), a3 = FloatVector.zero(F);
            for (int d = 0; d < headDim; d++) {
                FloatVector qd = FloatVector.broadcast(F, q[qOff + d]);
                int r = d * bl;
                a0 = FloatVector.fromArray(F, keys, o0 + r).fma(qd, a0);
                a1 = FloatVector.fromArray(F, keys, o1 + r).fma(qd, a1);
                a2 = FloatVector.fromArray(F, keys, o2 + r).fma(qd, a2);
                a3 = FloatVector.fromArray(F, keys, o3 + r).fma(qd, a3);
            }
            a0.mul(scale).intoArray(scores, m * L);
            a1.mul(scale).intoArray(scores, (m + 1) * L);
            a2.mul(scale).intoArray(scores, (m + 2) * L);
            a3.mul(scale).intoArray(scores, (m + 3) * L);
        }
        for (; m < vectors; m++) {
            int o0 = KvCache.keyIndex(m * L, 0, headDim);
            FloatVector a0 = FloatVector.zero(F);
            for (int d = 0; d < headDim; d++) {
                a0 = FloatVector.fromArray(F, keys, o0 + d * bl).fma(FloatVector.broadcast(F, q[qOff + d]), a0);
            }
            a0.mul(scale).intoArray(scores, m * L);
        }
    }

    /** {@link #keyScores} of two query heads (at qa and qb) against the same keys, into sa and sb. */
    public static void keyScores2(float[] q, int qa, int qb, float[] keys, int from, int len, int headDim, float scale, float[] sa, float[] sb) {
        if (!VECTOR) {
            keyScores(q, qa, keys, from, len, headDim, scale, sa);
            keyScores(q, qb, keys, from, len, headDim, scale, sb);
            return;
        }
        final int bl = KvCache.BLOCK;
        int vectors = (len + L - 1) / L, m = from / L;
        for (; m + 4 <= vectors; m += 4) {
            int o0 = KvCache.keyIndex(m * L, 0, headDim), o1 = KvCache.keyIndex((m + 1) * L, 0, headDim);
            int o2 = KvCache.keyIndex((m + 2) * L, 0, headDim), o3 = KvCache.keyIndex((m + 3) * L, 0, headDim);
            FloatVector a0 = FloatVector.zero(F), a1 = FloatVector.zero(F), a2 = FloatVector.zero(F), a3 = FloatVector.zero(F);
            FloatVector b0 = FloatVector.zero(F), b1 = FloatVector.zero(F), b2 = FloatVector.zero(F), b3 = FloatVector.zero(F);
            for (int d = 0; d < headDim; d++) {
                FloatVector qA = FloatVector.broadcast(F, q[qa + d]), qB = FloatVector.broadcast(F, q[qb + d]);
                int r = d * bl;
                FloatVector k0 = FloatVector.fromArray(F, keys, o0 + r), k1 = FloatVector.fromArray(F, keys, o1 + r);
                FloatVector k2 = FloatVector.fromArray(F, keys, o2 + r), k3 = FloatVector.fromArray(F, keys, o3 + r);
                a0 = k0.fma(qA, a0); a1 = k1.fma(qA, a1); a2 = k2.fma(qA, a2); a3 = k3.fma(qA, a3);
                b0 = k0.fma(qB, b0); b1 = k1.fma(qB, b1); b2 = k2.fma(qB, b2); b3 = k3.fma(qB, b3);
            }
            a0.mul(scale).intoArray(sa, m * L); a1.mul(scale).intoArray(sa, (m + 1) * L);
            a2.mul(scale).intoArray(sa, (m + 2) * L); a3.mul(scale).intoArray(sa, (m + 3) * L);
            b0.mul(scale).intoArray(sb, m * L); b1.mul(scale).intoArray(sb, (m + 1) * L);
            b2.mul(scale).intoArray(sb, (m + 2) * L); b3.mul(scale).intoArray(sb, (m + 3) * L);
        }
        for (; m < vectors; m++) {
            int o0 = KvCache.keyIndex(m * L, 0, headDim);
            FloatVector a0 = FloatVector.zero(F), b0 = FloatVector.zero(F);
            for (int d = 0; d < headDim; d++) {
                FloatVector k0 = FloatVector.fromArray(F, keys, o0 + d * bl);
                a0 = k0.fma(FloatVector.broadcast(F, q[qa + d]), a0);
                b0 = k0.fma(FloatVector.broadcast(F, q[qb + d]), b0);
            }
            a0.mul(scale).intoArray(sa, m * L);
            b0.mul(scale).intoArray(sb, m * L);
        }
    }

    /** As {@link #keyScores} over half-precision keys (the same layout), each key converted to float before its fma. */
    public static void keyScoresHalf(float[] q, int qOff, short[] keys, int from, int len, int headDim, float scale, float[] scores) {
        final int bl = KvCache.BLOCK;
        if (!VECTOR) {
            for (int t = from; t < len; t++) {
                float a = 0;
                for (int d = 0; d < headDim; d++) {
                    a = Math.fma(Float.float16ToFloat(keys[KvCache.keyIndex(t, d, headDim)]), q[qOff + d], a);
                }
                scores[t] = a * scale;
            }
            return;
        }
        int vectors = (len + L - 1) / L, m = from / L;
        for (; m + 4 <= vectors; m += 4) {
            int o0 = KvCache.keyIndex(m * L, 0, headDim), o1 = KvCache.keyIndex((m + 1) * L, 0, headDim);
            int o2 = KvCache.keyIndex((m + 2) * L, 0, headDim), o3 = KvCache.keyIndex((m + 3) * L, 0, headDim);
            FloatVector a0 = FloatVector.zero(F), a1 = FloatVector.zero(F), a2 = FloatVector.zero(F), a3 = FloatVector.zero(F);
            for (int d = 0; d < headDim; d++) {
                FloatVector qd = FloatVector.broadcast(F, q[qOff + d]);
                int r = d * bl;
                a0 = half(keys, o0 + r).fma(qd, a0);
                a1 = half(keys, o1 + r).fma(qd, a1);
                a2 = half(keys, o2 + r).fma(qd, a2);
                a3 = half(keys, o3 + r).fma(qd, a3);
            }
            a0.mul(scale).intoArray(scores, m * L);
            a1.mul(scale).intoArray(scores, (m + 1) * L);
            a2.mul(scale).intoArray(scores, (m + 2) * L);
            a3.mul(scale).intoArray(scores, (m + 3) * L);
        }
        for (; m < vectors; m++) {
            int o0 = KvCache.keyIndex(m * L, 0, headDim);
            FloatVector a0 = FloatVector.zero(F);
            for (int d = 0; d < headDim; d++) {
                a0 = half(keys, o0 + d * bl).fma(FloatVector.broadcast(F, q[qOff + d]), a0);
            }
            a0.mul(scale).intoArray(scores, m * L);
        }
    }

    /** {@link #keyScoresHalf} of two query heads against the same keys, each key vector converted once. */
    public static void keyScoresHalf2(float[] q, int qa, int qb, short[] keys, int from, int len, int headDim, float scale, float[] sa, float[] sb) {
        if (!VECTOR) {
            keyScoresHalf(q, qa, keys, from, len, headDim, scale, sa);
            keyScoresHalf(q, qb, keys, from, len, headDim, scale, sb);
            return;
        }
        final int bl = KvCache.BLOCK;
        int vectors = (len + L - 1) / L, m = from / L;
        for (; m + 4 <= vectors; m += 4) {
            int o0 = KvCache.keyIndex(m * L, 0, headDim), o1 = KvCache.keyIndex((m + 1) * L, 0, headDim);
            int o2 = KvCache.keyIndex((m + 2) * L, 0, headDim), o3 = KvCache.keyIndex((m + 3) * L, 0, headDim);
            FloatVector a0 = FloatVector.zero(F), a1 = FloatVector.zero(F), a2 = FloatVector.zero(F), a3 = FloatVector.zero(F);
            FloatVector b0 = FloatVector.zero(F), b1 = FloatVector.zero(F), b2 = FloatVector.zero(F), b3 = FloatVector.zero(F);
            for (int d = 0; d < headDim; d++) {
                FloatVector qA = FloatVector.broadcast(F, q[qa + d]), qB = FloatVector.broadcast(F, q[qb + d]);
                int r = d * bl;
                FloatVector k0 = half(keys, o0 + r), k1 = half(keys, o1 + r), k2 = half(keys, o2 + r), k3 = half(keys, o3 + r);
                a0 = k0.fma(qA, a0); a1 = k1.fma(qA, a1); a2 = k2.fma(qA, a2); a3 = k3.fma(qA, a3);
                b0 = k0.fma(qB, b0); b1 = k1.fma(qB, b1); b2 = k2.fma(qB, b2); b3 = k3.fma(qB, b3);
            }
            a0.mul(scale).intoArray(sa, m * L); a1.mul(scale).intoArray(sa, (m + 1) * L);
            a2.mul(scale).intoArray(sa, (m + 2) * L); a3.mul(scale).intoArray(sa, (m + 3) * L);
            b0.mul(scale).intoArray(sb, m * L); b1.mul(scale).intoArray(sb, (m + 1) * L);
            b2.mul(scale).intoArray(sb, (m + 2) * L); b3.mul(scale).intoArray(sb, (m + 3) * L);
        }
        for (; m < vectors; m++) {
            int o0 = KvCache.keyIndex(m * L, 0, headDim);
            FloatVector a0 = FloatVector.zero(F), b0 = FloatVector.zero(F);
            for (int d = 0; d < headDim; d++) {
                FloatVector k0 = half(keys, o0 + d * bl);
                a0 = k0.fma(FloatVector.broadcast(F, q[qa + d]), a0);
                b0 = k0.fma(FloatVector.broadcast(F, q[qb + d]), b0);
            }
            a0.mul(scale).intoArray(sa, m * L);
            b0.mul(scale).intoArray(sb, m * L);
        }
    }

    // ------------------------------------------------------------------------------------------------------ values

    /**
     * out[outOff + c] = Σ_{t &lt; len} p[t] · v[vOff + t·stride + c] for c &lt; n, each element summed from 0 in t order
     * (fma per vector lane; the columns past the last whole vector as p·v, then +): the value half of attention, with
     * the accumulators in registers instead of a load and a store per t.
     */
    public static void weightedRows(float[] p, int len, float[] v, int vOff, int stride, float[] out, int outOff, int n) {
        weightedRows(p, 0, len, v, vOff, stride, out, outOff, n);
    }

    /**
     * The sum of {@link #weightedRows} over t in [from, len) only, continuing the sums already in out when from &gt; 0
     * (so a sum split at a position — a prefix read from another cache — has the bits of the whole one).
     */
    public static void weightedRows(float[] p, int from, int len, float[] v, int vOff, int stride, float[] out, int outOff, int n) {
        int c = 0;
        boolean fresh = from == 0;
        if (VECTOR) {
            for (; c + 4 * L <= n; c += 4 * L) {
                int r = outOff + c;
                FloatVector a0 = start(fresh, out, r), a1 = start(fresh, out, r + L), a2 = start(fresh, out, r + 2 * L), a3 = start(fresh, out, r + 3 * L);
                for (int t = from, o = vOff + c + from * stride; t < len; t++, o += stride) {
                    FloatVector pt = FloatVector.broadcast(F, p[t]);
                    a0 = FloatVector.fromArray(F, v, o).fma(pt, a0);
                    a1 = FloatVector.fromArray(F, v, o + L).fma(pt, a1);
                    a2 = FloatVector.fromArray(F, v, o + 2 * L).fma(pt, a2);
                    a3 = FloatVector.fromArray(F, v, o + 3 * L).fma(pt, a3);
                }
                a0.intoArray(out, r);
                a1.intoArray(out, r + L);
                a2.intoArray(out, r + 2 * L);
                a3.intoArray(out, r + 3 * L);
            }
            for (; c + L <= n; c += L) {
                FloatVector a0 = start(fresh, out, outOff + c);
                for (int t = from, o = vOff + c + from * stride; t < len; t++, o += stride) {
                    a0 = FloatVector.fromArray(F, v, o).fma(FloatVector.broadcast(F, p[t]), a0);
                }
                a0.intoArray(out, outOff + c);
            }
        }
        for (; c < n; c++) {
            float a = fresh ? 0 : out[outOff + c];
            for (int t = from, o = vOff + c + from * stride; t < len; t++, o += stride) {
                a += p[t] * v[o];
            }
            out[outOff + c] = a;
        }
    }

    /** An accumulator: zero, or (continuing a split sum) the L partial sums at out[off]. */
    private static FloatVector start(boolean fresh, float[] out, int off) {
        return fresh ? FloatVector.zero(F) : FloatVector.fromArray(F, out, off);
    }

    /**
     * {@link #weightedRows} (over t in [from, len), continuing out when from &gt; 0) of two heads' probabilities
     * (pa, pb) over the same value rows (n values, n apart), into out[oa ..] and out[ob ..]; each value vector loaded
     * once for both.
     */
    public static void weightedRows2(float[] pa, float[] pb, int from, int len, float[] v, int n, float[] out, int oa, int ob) {
        int c = 0;
        boolean fresh = from == 0;
        if (VECTOR) {
            for (; c + 4 * L <= n; c += 4 * L) {
                FloatVector a0 = start(fresh, out, oa + c), a1 = start(fresh, out, oa + c + L), a2 = start(fresh, out, oa + c + 2 * L), a3 = start(fresh, out, oa + c + 3 * L);
                FloatVector b0 = start(fresh, out, ob + c), b1 = start(fresh, out, ob + c + L), b2 = start(fresh, out, ob + c + 2 * L), b3 = start(fresh, out, ob + c + 3 * L);
                for (int t = from, o = c + from * n; t < len; t++, o += n) {
                    FloatVector pA = FloatVector.broadcast(F, pa[t]), pB = FloatVector.broadcast(F, pb[t]);
                    FloatVector v0 = FloatVector.fromArray(F, v, o), v1 = FloatVector.fromArray(F, v, o + L);
                    FloatVector v2 = FloatVector.fromArray(F, v, o + 2 * L), v3 = FloatVector.fromArray(F, v, o + 3 * L);
                    a0 = v0.fma(pA, a0); a1 = v1.fma(pA, a1); a2 = v2.fma(pA, a2); a3 = v3.fma(pA, a3);
                    b0 = v0.fma(pB, b0); b1 = v1.fma(pB, b1); b2 = v2.fma(pB, b2); b3 = v3.fma(pB, b3);
                }
                a0.intoArray(out, oa + c); a1.intoArray(out, oa + c + L); a2.intoArray(out, oa + c + 2 * L); a3.intoArray(out, oa + c + 3 * L);
                b0.intoArray(out, ob + c); b1.intoArray(out, ob + c + L); b2.intoArray(out, ob + c + 2 * L); b3.intoArray(out, ob + c + 3 * L);
            }
        }
        if (c < n) {
            // the columns past the last four whole vectors: the single-head kernel over them (same order)
            weightedRows(pa, from, len, v, c, n, out, oa + c, n - c);
            weightedRows(pb, from, len, v, c, n, out, ob + c, n - c);
        }
    }

    /**
     * As {@link #weightedRows} (t in [from, len), continuing out when from &gt; 0) over half-precision rows of n values,
     * n apart (a KV head's values): out[outOff + c] = Σ_t p[t] · v[t·n + c], each element summed in t order. Four
     * vectors of columns per pass (with eight, the JIT stopped inlining the conversions: 25 instead of 6.5 µs for a
     * 580-position head).
     */
    public static void weightedRowsHalf(float[] p, int from, int len, short[] v, int n, float[] out, int outOff) {
        weightedRowsHalf(p, from, len, v, 0, n, out, outOff, n);
    }

    /** {@link #weightedRowsHalf} over columns [c0, c0 + w) of rows n apart, into out[outOff ..]. */
    private static void weightedRowsHalf(float[] p, int from, int len, short[] v, int c0, int n, float[] out, int outOff, int w) {
        int c = 0;
        boolean fresh = from == 0;
        if (VECTOR) {
            for (; c + 4 * L <= w; c += 4 * L) {
                int r = outOff + c;
                FloatVector a0 = start(fresh, out, r), a1 = start(fresh, out, r + L), a2 = start(fresh, out, r + 2 * L), a3 = start(fresh, out, r + 3 * L);
                for (int t = from, o = c0 + c + from * n; t < len; t++, o += n) {
                    FloatVector pt = FloatVector.broadcast(F, p[t]);
                    a0 = half(v, o).fma(pt, a0);
                    a1 = half(v, o + L).fma(pt, a1);
                    a2 = half(v, o + 2 * L).fma(pt, a2);
                    a3 = half(v, o + 3 * L).fma(pt, a3);
                }
                a0.intoArray(out, r);
                a1.intoArray(out, r + L);
                a2.intoArray(out, r + 2 * L);
                a3.intoArray(out, r + 3 * L);
            }
            for (; c + L <= w; c += L) {
                FloatVector a0 = start(fresh, out, outOff + c);
                for (int t = from, o = c0 + c + from * n; t < len; t++, o += n) {
                    a0 = half(v, o).fma(FloatVector.broadcast(F, p[t]), a0);
                }
                a0.intoArray(out, outOff + c);
            }
        }
        for (; c < w; c++) {
            float a = fresh ? 0 : out[outOff + c];
            for (int t = from, o = c0 + c + from * n; t < len; t++, o += n) {
                a = Math.fma(Float.float16ToFloat(v[o]), p[t], a);
            }
            out[outOff + c] = a;
        }
    }

    /** {@link #weightedRowsHalf} of two heads' probabilities over the same value rows, each value vector converted once. */
    public static void weightedRowsHalf2(float[] pa, float[] pb, int from, int len, short[] v, int n, float[] out, int oa, int ob) {
        int c = 0;
        boolean fresh = from == 0;
        if (VECTOR) {
            for (; c + 4 * L <= n; c += 4 * L) {
                FloatVector a0 = start(fresh, out, oa + c), a1 = start(fresh, out, oa + c + L), a2 = start(fresh, out, oa + c + 2 * L), a3 = start(fresh, out, oa + c + 3 * L);
                FloatVector b0 = start(fresh, out, ob + c), b1 = start(fresh, out, ob + c + L), b2 = start(fresh, out, ob + c + 2 * L), b3 = start(fresh, out, ob + c + 3 * L);
                for (int t = from, o = c + from * n; t < len; t++, o += n) {
                    FloatVector pA = FloatVector.broadcast(F, pa[t]), pB = FloatVector.broadcast(F, pb[t]);
                    FloatVector v0 = half(v, o), v1 = half(v, o + L), v2 = half(v, o + 2 * L), v3 = half(v, o + 3 * L);
                    a0 = v0.fma(pA, a0); a1 = v1.fma(pA, a1); a2 = v2.fma(pA, a2); a3 = v3.fma(pA, a3);
                    b0 = v0.fma(pB, b0); b1 = v1.fma(pB, b1); b2 = v2.fma(pB, b2); b3 = v3.fma(pB, b3);
                }
                a0.intoArray(out, oa + c); a1.intoArray(out, oa + c + L); a2.intoArray(out, oa + c + 2 * L); a3.intoArray(out, oa + c + 3 * L);
                b0.intoArray(out, ob + c); b1.intoArray(out, ob + c + L); b2.intoArray(out, ob + c + 2 * L); b3.intoArray(out, ob + c + 3 * L);
            }
        }
        if (c < n) {
            weightedRowsHalf(pa, from, len, v, c, n, out, oa + c, n - c);
            weightedRowsHalf(pb, from, len, v, c, n, out, ob + c, n - c);
        }
    }
}
