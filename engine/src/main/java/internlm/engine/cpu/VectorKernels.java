package internlm.engine.cpu;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * The CPU backend's inner loops with the Java Vector API: dot products of a weight row kept in its stored type
 * (F32, F16, BF16, Q8_0, Q4_0 blocks read straight from the mapped file) with a float activation vector, and row
 * dequantization for batched (prefill) products. Each has a scalar twin in {@link internlm.loader.quant.Quants}
 * that the tests compare against.
 */
public final class VectorKernels {
    private VectorKernels() {}

    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    static final int L = F.length();
    static final VectorSpecies<Integer> I = IntVector.SPECIES_PREFERRED;
    /** Bytes species with as many lanes as F (so one B2F conversion fills a float vector). */
    static final VectorSpecies<Byte> B = VectorSpecies.of(byte.class, VectorShape.forBitSize(Math.max(64, L * 8)));
    static final VectorSpecies<Byte> B128 = ByteVector.SPECIES_128;
    static final VectorSpecies<Short> S = VectorSpecies.of(short.class, VectorShape.forBitSize(Math.max(64, L * 16)));
    /** Whether the vector paths are usable (at least 8 float lanes); otherwise scalar code runs. */
    static final boolean VECTOR = L >= 8 && L <= 16;

    private static final ValueLayout.OfShort F16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    private static final VectorShuffle<Float> SWAP8 = VectorShuffle.fromOp(F, i -> (i ^ 8) % L);
    private static final VectorShuffle<Float> SWAP4 = VectorShuffle.fromOp(F, i -> (i ^ 4) % L);
    private static final VectorShuffle<Float> SWAP2 = VectorShuffle.fromOp(F, i -> (i ^ 2) % L);
    private static final VectorShuffle<Float> SWAP1 = VectorShuffle.fromOp(F, i -> (i ^ 1) % L);

    /**
     * The sum of v's lanes in a fixed order (pairwise: lanes i and i^8, then i^4, i^2, i^1). Not reduceLanes(ADD),
     * which may add in another order before and after the JIT compiles it: the CPU backend's results must not depend
     * on when the JIT ran — with activations rounded to Q8_0, a last-bit difference can move a value across a rounding
     * boundary and change logits by ~0.1 (seen in the test suite).
     */
    static float sum(FloatVector v) {
        if (L == 16) {
            v = v.add(v.rearrange(SWAP8));
        }
        v = v.add(v.rearrange(SWAP4));
        v = v.add(v.rearrange(SWAP2));
        v = v.add(v.rearrange(SWAP1));
        return v.lane(0);
    }

    public static String describe() {
        return VECTOR ? "Vector API, " + F.vectorBitSize() + "-bit (" + L + " floats)" : "scalar (vector width " + F.vectorBitSize() + " bits not used)";
    }

    // ------------------------------------------------------------------ dot products against weight rows

    /** Σ row[i]·x[xOff+i] for an F32 row of n values at byte offset off. */
    public static float dotF32(MemorySegment w, long off, float[] x, int xOff, int n) {
        int i = 0;
        float sum = 0;
        if (VECTOR) {
            FloatVector a0 = FloatVector.zero(F), a1 = FloatVector.zero(F);
            for (; i + 2 * L <= n; i += 2 * L) {
                a0 = FloatVector.fromMemorySegment(F, w, off + 4L * i, LE).fma(FloatVector.fromArray(F, x, xOff + i), a0);
                a1 = FloatVector.fromMemorySegment(F, w, off + 4L * (i + L), LE).fma(FloatVector.fromArray(F, x, xOff + i + L), a1);
            }
            sum = sum(a0.add(a1));
        }
        for (; i < n; i++) {
            sum += w.get(F32, off + 4L * i) * x[xOff + i];
        }
        return sum;
    }

    /** Half-precision bits (sign-extended in int lanes) to floats: exact for normals and subnormals. */
    private static FloatVector halfToFloat(IntVector h) {
        FloatVector mag = h.and(0x7fff).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f);
        return mag.reinterpretAsInts().or(h.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
    }

    public static float dotF16(MemorySegment w, long off, float[] x, int xOff, int n) {
        int i = 0;
        float sum = 0;
        if (VECTOR) {
            FloatVector a0 = FloatVector.zero(F), a1 = FloatVector.zero(F);
            for (; i + 2 * L <= n; i += 2 * L) {
                IntVector h0 = (IntVector) ShortVector.fromMemorySegment(S, w, off + 2L * i, LE).convertShape(VectorOperators.S2I, I, 0);
                IntVector h1 = (IntVector) ShortVector.fromMemorySegment(S, w, off + 2L * (i + L), LE).convertShape(VectorOperators.S2I, I, 0);
                a0 = halfToFloat(h0).fma(FloatVector.fromArray(F, x, xOff + i), a0);
                a1 = halfToFloat(h1).fma(FloatVector.fromArray(F, x, xOff + i + L), a1);
            }
            sum = sum(a0.add(a1));
        }
        for (; i < n; i++) {
            sum += Float.float16ToFloat(w.get(F16, off + 2L * i)) * x[xOff + i];
        }
        return sum;
    }

    /**
     * As {@link #dotF16(MemorySegment, long, float[], int, int)} for half-precision bits in a Java array. Every vector
     * operation is written out here, not in helper methods: inlined into a large caller, C2 stopped inlining such
     * helpers (NodeCountInliningCutoff), the vectors got boxed and the loop ran at 2–5 instead of 16 GB/s.
     */
    public static float dotF16(short[] h, int off, float[] x, int xOff, int n) {
        int i = 0;
        float sum = 0;
        if (VECTOR) {
            FloatVector a0 = FloatVector.zero(F), a1 = FloatVector.zero(F);
            for (; i + 2 * L <= n; i += 2 * L) {
                IntVector h0 = (IntVector) ShortVector.fromArray(S, h, off + i).convertShape(VectorOperators.S2I, I, 0);
                IntVector h1 = (IntVector) ShortVector.fromArray(S, h, off + i + L).convertShape(VectorOperators.S2I, I, 0);
                // |h| << 13 as float bits, times 2^112: the half's magnitude as a float (normals and subnormals); then the sign
                FloatVector m0 = h0.and(0x7fff).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f);
                FloatVector m1 = h1.and(0x7fff).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f);
                FloatVector w0 = m0.reinterpretAsInts().or(h0.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
                FloatVector w1 = m1.reinterpretAsInts().or(h1.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
                a0 = w0.fma(FloatVector.fromArray(F, x, xOff + i), a0);
                a1 = w1.fma(FloatVector.fromArray(F, x, xOff + i + L), a1);
            }
            sum = sum(a0.add(a1));
        }
        for (; i < n; i++) {
            sum += Float.float16ToFloat(h[off + i]) * x[xOff + i];
        }
        return sum;
    }

    /** As {@link #dotBF16(MemorySegment, long, float[], int, int)} for bfloat16 bits in a Java array. */
    public static float dotBF16(short[] h, int off, float[] x, int xOff, int n) {
        int i = 0;
        float sum = 0;
        if (VECTOR) {
            FloatVector a0 = FloatVector.zero(F), a1 = FloatVector.zero(F);
            for (; i + 2 * L <= n; i += 2 * L) {
                IntVector h0 = (IntVector) ShortVector.fromArray(S, h, off + i).convertShape(VectorOperators.S2I, I, 0);
                IntVector h1 = (IntVector) ShortVector.fromArray(S, h, off + i + L).convertShape(VectorOperators.S2I, I, 0);
                a0 = h0.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(FloatVector.fromArray(F, x, xOff + i), a0);
                a1 = h1.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(FloatVector.fromArray(F, x, xOff + i + L), a1);
            }
            sum = sum(a0.add(a1));
        }
        for (; i < n; i++) {
            sum += Float.intBitsToFloat((h[off + i] & 0xffff) << 16) * x[xOff + i];
        }
        return sum;
    }

    public static float dotBF16(MemorySegment w, long off, float[] x, int xOff, int n) {
        int i = 0;
        float sum = 0;
        if (VECTOR) {
            FloatVector a0 = FloatVector.zero(F), a1 = FloatVector.zero(F);
            for (; i + 2 * L <= n; i += 2 * L) {
                IntVector h0 = (IntVector) ShortVector.fromMemorySegment(S, w, off + 2L * i, LE).convertShape(VectorOperators.S2I, I, 0);
                IntVector h1 = (IntVector) ShortVector.fromMemorySegment(S, w, off + 2L * (i + L), LE).convertShape(VectorOperators.S2I, I, 0);
                a0 = h0.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(FloatVector.fromArray(F, x, xOff + i), a0);
                a1 = h1.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(FloatVector.fromArray(F, x, xOff + i + L), a1);
            }
            sum = sum(a0.add(a1));
        }
        for (; i < n; i++) {
            sum += Float.intBitsToFloat((w.get(F16, off + 2L * i) & 0xffff) << 16) * x[xOff + i];
        }
        return sum;
    }

    /**
     * Dot product of a repacked Q8_0 row with x: {@code blocks} blocks whose 32 int8 quants lie back to back from
     * {@code q[qOff]} and whose f32 scales lie from {@code s[sOff]}.
     */
    public static float dotQ8_0(byte[] q, int qOff, float[] s, int sOff, float[] x, int xOff, int blocks) {
        if (!VECTOR || L != 16) {
            return scalarQ8_0(q, qOff, s, sOff, x, xOff, blocks);
        }
        FloatVector a0 = FloatVector.zero(F), a1 = FloatVector.zero(F), a2 = FloatVector.zero(F), a3 = FloatVector.zero(F);
        int b = 0;
        for (; b + 3 < blocks; b += 4) {
            int o = qOff + 32 * b, xo = xOff + 32 * b, so = sOff + b;
            FloatVector s0 = q8(q, o).mul(FloatVector.fromArray(F, x, xo));
            FloatVector s1 = q8(q, o + 32).mul(FloatVector.fromArray(F, x, xo + 32));
            FloatVector s2 = q8(q, o + 64).mul(FloatVector.fromArray(F, x, xo + 64));
            FloatVector s3 = q8(q, o + 96).mul(FloatVector.fromArray(F, x, xo + 96));
            s0 = q8(q, o + 16).fma(FloatVector.fromArray(F, x, xo + 16), s0);
            s1 = q8(q, o + 48).fma(FloatVector.fromArray(F, x, xo + 48), s1);
            s2 = q8(q, o + 80).fma(FloatVector.fromArray(F, x, xo + 80), s2);
            s3 = q8(q, o + 112).fma(FloatVector.fromArray(F, x, xo + 112), s3);
            a0 = s0.fma(FloatVector.broadcast(F, s[so]), a0);
            a1 = s1.fma(FloatVector.broadcast(F, s[so + 1]), a1);
            a2 = s2.fma(FloatVector.broadcast(F, s[so + 2]), a2);
            a3 = s3.fma(FloatVector.broadcast(F, s[so + 3]), a3);
        }
        for (; b < blocks; b++) {
            int o = qOff + 32 * b, xo = xOff + 32 * b;
            FloatVector s0 = q8(q, o + 16).fma(FloatVector.fromArray(F, x, xo + 16), q8(q, o).mul(FloatVector.fromArray(F, x, xo)));
            a0 = s0.fma(FloatVector.broadcast(F, s[sOff + b]), a0);
        }
        return sum(a0.add(a1).add(a2.add(a3)));
    }

    /** 16 int8 quants at q[o], as floats. */
    private static FloatVector q8(byte[] q, int o) {
        return (FloatVector) ByteVector.fromArray(B, q, o).convertShape(VectorOperators.B2F, F, 0);
    }

    private static float scalarQ8_0(byte[] q, int qOff, float[] s, int sOff, float[] x, int xOff, int blocks) {
        float sum = 0;
        for (int b = 0; b < blocks; b++) {
            float part = 0;
            for (int j = 0; j < 32; j++) {
                part += q[qOff + 32 * b + j] * x[xOff + 32 * b + j];
            }
            sum += part * s[sOff + b];
        }
        return sum;
    }

    /** Dot product of a repacked Q4_0 row (16 bytes of nibbles per block, f32 scales apart) with x. */
    public static float dotQ4_0(byte[] q, int qOff, float[] s, int sOff, float[] x, int xOff, int blocks) {
        if (!VECTOR) {
            return scalarQ4_0(q, qOff, s, sOff, x, xOff, blocks);
        }
        FloatVector acc0 = FloatVector.zero(F), acc1 = FloatVector.zero(F);
        for (int b = 0; b < blocks; b++) {
            int x0 = xOff + 32 * b;
            ByteVector v = ByteVector.fromArray(B128, q, qOff + 16 * b);
            ByteVector lo = v.and((byte) 0x0f).sub((byte) 8);
            ByteVector hi = v.lanewise(VectorOperators.LSHR, 4).sub((byte) 8);
            FloatVector s0 = FloatVector.zero(F), s1 = FloatVector.zero(F);
            for (int p = 0; p < 16 / L; p++) {
                s0 = ((FloatVector) lo.convertShape(VectorOperators.B2F, F, p)).fma(FloatVector.fromArray(F, x, x0 + p * L), s0);
                s1 = ((FloatVector) hi.convertShape(VectorOperators.B2F, F, p)).fma(FloatVector.fromArray(F, x, x0 + 16 + p * L), s1);
            }
            FloatVector d = FloatVector.broadcast(F, s[sOff + b]);
            if ((b & 1) == 0) {
                acc0 = s0.add(s1).fma(d, acc0);
            } else {
                acc1 = s0.add(s1).fma(d, acc1);
            }
        }
        return sum(acc0.add(acc1));
    }

    private static float scalarQ4_0(byte[] q, int qOff, float[] s, int sOff, float[] x, int xOff, int blocks) {
        float sum = 0;
        for (int b = 0; b < blocks; b++) {
            float part = 0;
            for (int j = 0; j < 16; j++) {
                int v = q[qOff + 16 * b + j] & 0xff;
                part += ((v & 15) - 8) * x[xOff + 32 * b + j] + ((v >> 4) - 8) * x[xOff + 32 * b + j + 16];
            }
            sum += part * s[sOff + b];
        }
        return sum;
    }

    // ------------------------------------------------------------------ row dequantization (batched products)

    /** Dequantizes a repacked Q8_0 row of {@code blocks} blocks into out[0..32·blocks). */
    public static void dequantQ8_0(byte[] q, int qOff, float[] s, int sOff, float[] out, int outOff, int blocks) {
        for (int b = 0; b < blocks; b++) {
            float d = s[sOff + b];
            if (VECTOR) {
                for (int j = 0; j < 32; j += L) {
                    ((FloatVector) ByteVector.fromArray(B, q, qOff + 32 * b + j).convertShape(VectorOperators.B2F, F, 0)).mul(d).intoArray(out, outOff + 32 * b + j);
                }
            } else {
                for (int j = 0; j < 32; j++) {
                    out[outOff + 32 * b + j] = d * q[qOff + 32 * b + j];
                }
            }
        }
    }

    /** Dequantizes a repacked Q4_0 row of {@code blocks} blocks into out[0..32·blocks). */
    public static void dequantQ4_0(byte[] q, int qOff, float[] s, int sOff, float[] out, int outOff, int blocks) {
        for (int b = 0; b < blocks; b++) {
            float d = s[sOff + b];
            if (VECTOR) {
                ByteVector v = ByteVector.fromArray(B128, q, qOff + 16 * b);
                ByteVector lo = v.and((byte) 0x0f).sub((byte) 8);
                ByteVector hi = v.lanewise(VectorOperators.LSHR, 4).sub((byte) 8);
                for (int p = 0; p < 16 / L; p++) {
                    ((FloatVector) lo.convertShape(VectorOperators.B2F, F, p)).mul(d).intoArray(out, outOff + 32 * b + p * L);
                    ((FloatVector) hi.convertShape(VectorOperators.B2F, F, p)).mul(d).intoArray(out, outOff + 32 * b + 16 + p * L);
                }
            } else {
                for (int j = 0; j < 16; j++) {
                    int v = q[qOff + 16 * b + j] & 0xff;
                    out[outOff + 32 * b + j] = d * ((v & 15) - 8);
                    out[outOff + 32 * b + j + 16] = d * ((v >> 4) - 8);
                }
            }
        }
    }

    public static void dequantF16(MemorySegment w, long off, float[] out, int outOff, int n) {
        int i = 0;
        if (VECTOR) {
            for (; i + L <= n; i += L) {
                IntVector h = (IntVector) ShortVector.fromMemorySegment(S, w, off + 2L * i, LE).convertShape(VectorOperators.S2I, I, 0);
                halfToFloat(h).intoArray(out, outOff + i);
            }
        }
        for (; i < n; i++) {
            out[outOff + i] = Float.float16ToFloat(w.get(F16, off + 2L * i));
        }
    }

    /** Half-precision bits h[off..off+n) to floats. */
    public static void dequantF16(short[] h, int off, float[] out, int outOff, int n) {
        int i = 0;
        if (VECTOR) {
            for (; i + L <= n; i += L) {
                IntVector v = (IntVector) ShortVector.fromArray(S, h, off + i).convertShape(VectorOperators.S2I, I, 0);
                halfToFloat(v).intoArray(out, outOff + i);
            }
        }
        for (; i < n; i++) {
            out[outOff + i] = Float.float16ToFloat(h[off + i]);
        }
    }

    /** Bfloat16 bits h[off..off+n) to floats. */
    public static void dequantBF16(short[] h, int off, float[] out, int outOff, int n) {
        for (int i = 0; i < n; i++) {
            out[outOff + i] = Float.intBitsToFloat((h[off + i] & 0xffff) << 16);
        }
    }

    public static void dequantBF16(MemorySegment w, long off, float[] out, int outOff, int n) {
        int i = 0;
        if (VECTOR) {
            for (; i + L <= n; i += L) {
                IntVector h = (IntVector) ShortVector.fromMemorySegment(S, w, off + 2L * i, LE).convertShape(VectorOperators.S2I, I, 0);
                h.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().intoArray(out, outOff + i);
            }
        }
        for (; i < n; i++) {
            out[outOff + i] = Float.intBitsToFloat((w.get(F16, off + 2L * i) & 0xffff) << 16);
        }
    }

    // ------------------------------------------------------------------ float helpers

    /** Σ a[aOff+i]·b[bOff+i], i < n. */
    public static float dot(float[] a, int aOff, float[] b, int bOff, int n) {
        int i = 0;
        float sum = 0;
        if (VECTOR) {
            FloatVector a0 = FloatVector.zero(F), a1 = FloatVector.zero(F);
            for (; i + 2 * L <= n; i += 2 * L) {
                a0 = FloatVector.fromArray(F, a, aOff + i).fma(FloatVector.fromArray(F, b, bOff + i), a0);
                a1 = FloatVector.fromArray(F, a, aOff + i + L).fma(FloatVector.fromArray(F, b, bOff + i + L), a1);
            }
            for (; i + L <= n; i += L) {
                a0 = FloatVector.fromArray(F, a, aOff + i).fma(FloatVector.fromArray(F, b, bOff + i), a0);
            }
            sum = sum(a0.add(a1));
        }
        for (; i < n; i++) {
            sum += a[aOff + i] * b[bOff + i];
        }
        return sum;
    }

    /**
     * A 4×4 tile of a matrix product: out[4·i + j] = Σ_c w[wOff + i·cols + c] · x[xOff[j] + c] for 4 weight rows
     * (already dequantized, row stride {@code cols}) and 4 activation rows. Each loaded vector feeds 4 FMAs, so the
     * loop is bound by FMA throughput rather than by loads (prefill). {@code out} must hold {@link #TILE_OUT} floats
     * (the 16 results, then scratch for the lane sums).
     */
    public static final int TILE_OUT = 16 + 16 * 16;

    public static void tile4x4(float[] w, int wOff, int cols, float[] x, int x0, int x1, int x2, int x3, float[] out) {
        tile4x4(w, wOff, cols, 0, cols, x, x0, x1, x2, x3, out);
    }

    /** As {@link #tile4x4(float[], int, int, float[], int, int, int, int, float[])} over columns [c0, c1) only. */
    public static void tile4x4(float[] w, int wOff, int cols, int c0, int c1, float[] x, int x0, int x1, int x2, int x3, float[] out) {
        int c = c0;
        if (VECTOR) {
            FloatVector a00 = FloatVector.zero(F), a01 = FloatVector.zero(F), a02 = FloatVector.zero(F), a03 = FloatVector.zero(F);
            FloatVector a10 = FloatVector.zero(F), a11 = FloatVector.zero(F), a12 = FloatVector.zero(F), a13 = FloatVector.zero(F);
            FloatVector a20 = FloatVector.zero(F), a21 = FloatVector.zero(F), a22 = FloatVector.zero(F), a23 = FloatVector.zero(F);
            FloatVector a30 = FloatVector.zero(F), a31 = FloatVector.zero(F), a32 = FloatVector.zero(F), a33 = FloatVector.zero(F);
            int r1 = wOff + cols, r2 = r1 + cols, r3 = r2 + cols;
            for (; c + L <= c1; c += L) {
                FloatVector v0 = FloatVector.fromArray(F, x, x0 + c), v1 = FloatVector.fromArray(F, x, x1 + c);
                FloatVector v2 = FloatVector.fromArray(F, x, x2 + c), v3 = FloatVector.fromArray(F, x, x3 + c);
                FloatVector w0 = FloatVector.fromArray(F, w, wOff + c);
                a00 = w0.fma(v0, a00); a01 = w0.fma(v1, a01); a02 = w0.fma(v2, a02); a03 = w0.fma(v3, a03);
                FloatVector w1 = FloatVector.fromArray(F, w, r1 + c);
                a10 = w1.fma(v0, a10); a11 = w1.fma(v1, a11); a12 = w1.fma(v2, a12); a13 = w1.fma(v3, a13);
                FloatVector w2 = FloatVector.fromArray(F, w, r2 + c);
                a20 = w2.fma(v0, a20); a21 = w2.fma(v1, a21); a22 = w2.fma(v2, a22); a23 = w2.fma(v3, a23);
                FloatVector w3 = FloatVector.fromArray(F, w, r3 + c);
                a30 = w3.fma(v0, a30); a31 = w3.fma(v1, a31); a32 = w3.fma(v2, a32); a33 = w3.fma(v3, a33);
            }
            // lane sums in a fixed order (not reduceLanes: see sum()); out must hold 16 + 16·L floats
            int o = 16;
            a00.intoArray(out, o); a01.intoArray(out, o + L); a02.intoArray(out, o + 2 * L); a03.intoArray(out, o + 3 * L);
            a10.intoArray(out, o + 4 * L); a11.intoArray(out, o + 5 * L); a12.intoArray(out, o + 6 * L); a13.intoArray(out, o + 7 * L);
            a20.intoArray(out, o + 8 * L); a21.intoArray(out, o + 9 * L); a22.intoArray(out, o + 10 * L); a23.intoArray(out, o + 11 * L);
            a30.intoArray(out, o + 12 * L); a31.intoArray(out, o + 13 * L); a32.intoArray(out, o + 14 * L); a33.intoArray(out, o + 15 * L);
            for (int k = 0; k < 16; k++) {
                float t = 0;
                for (int i = 0; i < L; i++) {
                    t += out[o + k * L + i];
                }
                out[k] = t;
            }
        } else {
            java.util.Arrays.fill(out, 0, 16, 0f);
        }
        int[] xs = {x0, x1, x2, x3};
        for (; c < c1; c++) {
            for (int i = 0; i < 4; i++) {
                for (int j = 0; j < 4; j++) {
                    out[4 * i + j] += w[wOff + i * cols + c] * x[xs[j] + c];
                }
            }
        }
    }

    /** g[i] = silu(g[i]) · u[i] = g[i] / (1 + e^−g[i]) · u[i] for i &lt; n (SwiGLU). */
    public static void swiglu(float[] g, float[] u, int n) {
        int i = 0;
        if (VECTOR) {
            for (; i + L <= n; i += L) {
                FloatVector gv = FloatVector.fromArray(F, g, i);
                FloatVector e = gv.neg().lanewise(VectorOperators.EXP).add(1f);
                gv.div(e).mul(FloatVector.fromArray(F, u, i)).intoArray(g, i);
            }
        }
        for (; i < n; i++) {
            g[i] = g[i] / (1f + (float) Math.exp(-g[i])) * u[i];
        }
    }

    /** max |x[off+i]| for i &lt; n. */
    public static float absMax(float[] x, int off, int n) {
        int i = 0;
        float m = 0;
        if (VECTOR) {
            FloatVector acc = FloatVector.zero(F);
            for (; i + L <= n; i += L) {
                acc = acc.max(FloatVector.fromArray(F, x, off + i).abs());
            }
            m = acc.reduceLanes(VectorOperators.MAX);
        }
        for (; i < n; i++) {
            m = Math.max(m, Math.abs(x[off + i]));
        }
        return m;
    }

    /** y[yOff+i] += a · x[xOff+i], i < n. */
    public static void axpy(float a, float[] x, int xOff, float[] y, int yOff, int n) {
        int i = 0;
        if (VECTOR) {
            for (; i + L <= n; i += L) {
                FloatVector.fromArray(F, x, xOff + i).fma(FloatVector.broadcast(F, a), FloatVector.fromArray(F, y, yOff + i)).intoArray(y, yOff + i);
            }
        }
        for (; i < n; i++) {
            y[yOff + i] += a * x[xOff + i];
        }
    }
}
