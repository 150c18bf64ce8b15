package internlm.engine.cpu;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
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
            sum = a0.add(a1).reduceLanes(VectorOperators.ADD);
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
            sum = a0.add(a1).reduceLanes(VectorOperators.ADD);
        }
        for (; i < n; i++) {
            sum += Float.float16ToFloat(w.get(F16, off + 2L * i)) * x[xOff + i];
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
            sum = a0.add(a1).reduceLanes(VectorOperators.ADD);
        }
        for (; i < n; i++) {
            sum += Float.intBitsToFloat((w.get(F16, off + 2L * i) & 0xffff) << 16) * x[xOff + i];
        }
        return sum;
    }

    private static final ValueLayout.OfFloat SCALE = ValueLayout.JAVA_FLOAT_UNALIGNED;

    /**
     * Dot product of a repacked Q8_0 row with x: {@code blocks} blocks whose 32 int8 quants lie contiguously from
     * byte {@code qOff} of {@code q} and whose f32 scales lie from byte {@code sOff} of {@code s}.
     */
    public static float dotQ8_0(MemorySegment q, long qOff, MemorySegment s, long sOff, float[] x, int xOff, int blocks) {
        if (!VECTOR || L != 16) {
            return scalarQ8_0(q, qOff, s, sOff, x, xOff, blocks);
        }
        FloatVector a0 = FloatVector.zero(F), a1 = FloatVector.zero(F), a2 = FloatVector.zero(F), a3 = FloatVector.zero(F);
        int b = 0;
        for (; b + 3 < blocks; b += 4) {
            long o = qOff + 32L * b;
            int xo = xOff + 32 * b;
            FloatVector s0 = q8(q, o).mul(FloatVector.fromArray(F, x, xo));
            FloatVector s1 = q8(q, o + 32).mul(FloatVector.fromArray(F, x, xo + 32));
            FloatVector s2 = q8(q, o + 64).mul(FloatVector.fromArray(F, x, xo + 64));
            FloatVector s3 = q8(q, o + 96).mul(FloatVector.fromArray(F, x, xo + 96));
            s0 = q8(q, o + 16).fma(FloatVector.fromArray(F, x, xo + 16), s0);
            s1 = q8(q, o + 48).fma(FloatVector.fromArray(F, x, xo + 48), s1);
            s2 = q8(q, o + 80).fma(FloatVector.fromArray(F, x, xo + 80), s2);
            s3 = q8(q, o + 112).fma(FloatVector.fromArray(F, x, xo + 112), s3);
            long so = sOff + 4L * b;
            a0 = s0.fma(FloatVector.broadcast(F, s.get(SCALE, so)), a0);
            a1 = s1.fma(FloatVector.broadcast(F, s.get(SCALE, so + 4)), a1);
            a2 = s2.fma(FloatVector.broadcast(F, s.get(SCALE, so + 8)), a2);
            a3 = s3.fma(FloatVector.broadcast(F, s.get(SCALE, so + 12)), a3);
        }
        for (; b < blocks; b++) {
            long o = qOff + 32L * b;
            int xo = xOff + 32 * b;
            FloatVector s0 = q8(q, o + 16).fma(FloatVector.fromArray(F, x, xo + 16), q8(q, o).mul(FloatVector.fromArray(F, x, xo)));
            a0 = s0.fma(FloatVector.broadcast(F, s.get(SCALE, sOff + 4L * b)), a0);
        }
        return a0.add(a1).add(a2.add(a3)).reduceLanes(VectorOperators.ADD);
    }

    /** 16 int8 quants at byte offset o, as floats. */
    private static FloatVector q8(MemorySegment q, long o) {
        return (FloatVector) ByteVector.fromMemorySegment(B, q, o, LE).convertShape(VectorOperators.B2F, F, 0);
    }

    private static float scalarQ8_0(MemorySegment q, long qOff, MemorySegment s, long sOff, float[] x, int xOff, int blocks) {
        float sum = 0;
        for (int b = 0; b < blocks; b++) {
            float part = 0;
            for (int j = 0; j < 32; j++) {
                part += q.get(ValueLayout.JAVA_BYTE, qOff + 32L * b + j) * x[xOff + 32 * b + j];
            }
            sum += part * s.get(SCALE, sOff + 4L * b);
        }
        return sum;
    }

    /** Dot product of a repacked Q4_0 row (16 bytes of nibbles per block, f32 scales apart) with x. */
    public static float dotQ4_0(MemorySegment q, long qOff, MemorySegment s, long sOff, float[] x, int xOff, int blocks) {
        if (!VECTOR) {
            return scalarQ4_0(q, qOff, s, sOff, x, xOff, blocks);
        }
        FloatVector acc0 = FloatVector.zero(F), acc1 = FloatVector.zero(F);
        for (int b = 0; b < blocks; b++) {
            int x0 = xOff + 32 * b;
            ByteVector v = ByteVector.fromMemorySegment(B128, q, qOff + 16L * b, LE);
            ByteVector lo = v.and((byte) 0x0f).sub((byte) 8);
            ByteVector hi = v.lanewise(VectorOperators.LSHR, 4).sub((byte) 8);
            FloatVector s0 = FloatVector.zero(F), s1 = FloatVector.zero(F);
            for (int p = 0; p < 16 / L; p++) {
                s0 = ((FloatVector) lo.convertShape(VectorOperators.B2F, F, p)).fma(FloatVector.fromArray(F, x, x0 + p * L), s0);
                s1 = ((FloatVector) hi.convertShape(VectorOperators.B2F, F, p)).fma(FloatVector.fromArray(F, x, x0 + 16 + p * L), s1);
            }
            FloatVector d = FloatVector.broadcast(F, s.get(SCALE, sOff + 4L * b));
            if ((b & 1) == 0) {
                acc0 = s0.add(s1).fma(d, acc0);
            } else {
                acc1 = s0.add(s1).fma(d, acc1);
            }
        }
        return acc0.add(acc1).reduceLanes(VectorOperators.ADD);
    }

    private static float scalarQ4_0(MemorySegment q, long qOff, MemorySegment s, long sOff, float[] x, int xOff, int blocks) {
        float sum = 0;
        for (int b = 0; b < blocks; b++) {
            float part = 0;
            for (int j = 0; j < 16; j++) {
                int v = q.get(ValueLayout.JAVA_BYTE, qOff + 16L * b + j) & 0xff;
                part += ((v & 15) - 8) * x[xOff + 32 * b + j] + ((v >> 4) - 8) * x[xOff + 32 * b + j + 16];
            }
            sum += part * s.get(SCALE, sOff + 4L * b);
        }
        return sum;
    }

    // ------------------------------------------------------------------ row dequantization (batched products)

    /** Dequantizes a repacked Q8_0 row of {@code blocks} blocks into out[0..32·blocks). */
    public static void dequantQ8_0(MemorySegment q, long qOff, MemorySegment s, long sOff, float[] out, int blocks) {
        for (int b = 0; b < blocks; b++) {
            float d = s.get(SCALE, sOff + 4L * b);
            if (VECTOR) {
                for (int j = 0; j < 32; j += L) {
                    ((FloatVector) ByteVector.fromMemorySegment(B, q, qOff + 32L * b + j, LE).convertShape(VectorOperators.B2F, F, 0))
                            .mul(d).intoArray(out, 32 * b + j);
                }
            } else {
                for (int j = 0; j < 32; j++) {
                    out[32 * b + j] = d * q.get(ValueLayout.JAVA_BYTE, qOff + 32L * b + j);
                }
            }
        }
    }

    /** Dequantizes a repacked Q4_0 row of {@code blocks} blocks into out[0..32·blocks). */
    public static void dequantQ4_0(MemorySegment q, long qOff, MemorySegment s, long sOff, float[] out, int blocks) {
        for (int b = 0; b < blocks; b++) {
            float d = s.get(SCALE, sOff + 4L * b);
            if (VECTOR) {
                ByteVector v = ByteVector.fromMemorySegment(B128, q, qOff + 16L * b, LE);
                ByteVector lo = v.and((byte) 0x0f).sub((byte) 8);
                ByteVector hi = v.lanewise(VectorOperators.LSHR, 4).sub((byte) 8);
                for (int p = 0; p < 16 / L; p++) {
                    ((FloatVector) lo.convertShape(VectorOperators.B2F, F, p)).mul(d).intoArray(out, 32 * b + p * L);
                    ((FloatVector) hi.convertShape(VectorOperators.B2F, F, p)).mul(d).intoArray(out, 32 * b + 16 + p * L);
                }
            } else {
                for (int j = 0; j < 16; j++) {
                    int v = q.get(ValueLayout.JAVA_BYTE, qOff + 16L * b + j) & 0xff;
                    out[32 * b + j] = d * ((v & 15) - 8);
                    out[32 * b + j + 16] = d * ((v >> 4) - 8);
                }
            }
        }
    }

    public static void dequantF16(MemorySegment w, long off, float[] out, int n) {
        int i = 0;
        if (VECTOR) {
            for (; i + L <= n; i += L) {
                IntVector h = (IntVector) ShortVector.fromMemorySegment(S, w, off + 2L * i, LE).convertShape(VectorOperators.S2I, I, 0);
                halfToFloat(h).intoArray(out, i);
            }
        }
        for (; i < n; i++) {
            out[i] = Float.float16ToFloat(w.get(F16, off + 2L * i));
        }
    }

    public static void dequantBF16(MemorySegment w, long off, float[] out, int n) {
        int i = 0;
        if (VECTOR) {
            for (; i + L <= n; i += L) {
                IntVector h = (IntVector) ShortVector.fromMemorySegment(S, w, off + 2L * i, LE).convertShape(VectorOperators.S2I, I, 0);
                h.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().intoArray(out, i);
            }
        }
        for (; i < n; i++) {
            out[i] = Float.intBitsToFloat((w.get(F16, off + 2L * i) & 0xffff) << 16);
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
            sum = a0.add(a1).reduceLanes(VectorOperators.ADD);
        }
        for (; i < n; i++) {
            sum += a[aOff + i] * b[bOff + i];
        }
        return sum;
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
