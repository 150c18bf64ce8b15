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
 * The CPU backend's inner loops with the Java Vector API: products of four weight rows kept in their stored type
 * (F32, F16, BF16, Q8_0, Q4_0) with one activation row (decode), row dequantization and 4×4 float tiles (batches),
 * summing in one order whatever the batch (see {@link Weight}); the tests compare them with the scalar definitions
 * in {@link internlm.loader.quant.Quants}.
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

    /** Per-thread room for the lanes of 16 vectors (tile4x4's epilogue). */
    private static final ThreadLocal<float[]> LANES = ThreadLocal.withInitial(() -> new float[16 * 16]);

    /** The lanes a[o .. o+L) added in exactly {@link #sum}'s order. */
    static float treeSum(float[] a, int o) {
        float s0, s1, s2, s3, s4, s5, s6, s7;
        if (L == 16) {
            s0 = a[o] + a[o + 8]; s1 = a[o + 1] + a[o + 9]; s2 = a[o + 2] + a[o + 10]; s3 = a[o + 3] + a[o + 11];
            s4 = a[o + 4] + a[o + 12]; s5 = a[o + 5] + a[o + 13]; s6 = a[o + 6] + a[o + 14]; s7 = a[o + 7] + a[o + 15];
        } else {
            s0 = a[o]; s1 = a[o + 1]; s2 = a[o + 2]; s3 = a[o + 3]; s4 = a[o + 4]; s5 = a[o + 5]; s6 = a[o + 6]; s7 = a[o + 7];
        }
        float t0 = s0 + s4, t1 = s1 + s5, t2 = s2 + s6, t3 = s3 + s7;
        return (t0 + t2) + (t1 + t3);
    }

    public static String describe() {
        return VECTOR ? "Vector API, " + F.vectorBitSize() + "-bit (" + L + " floats)" : "scalar (vector width " + F.vectorBitSize() + " bits not used)";
    }

    /** Half-precision bits (sign-extended in int lanes) to floats: exact for normals and subnormals. */
    private static FloatVector halfToFloat(IntVector h) {
        FloatVector mag = h.and(0x7fff).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f);
        return mag.reinterpretAsInts().or(h.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
    }

    // ------------------------------------------------------------------ batch-invariant products: four rows, one chunk
    //
    // Every product of the CPU backend sums each output element in one fixed order, whatever the batch: per column
    // chunk (Weight.TILE columns), one accumulator per vector lane takes fma(w[c], x[c], acc) for c in steps of L, the
    // lanes are summed with sum()'s fixed tree, columns past the last whole vector are added one by one (w·x, then +),
    // and the chunks' partial sums are added in chunk order. w[c] is the dequantized weight — exact in float for every
    // type (a Q8_0 quant has 8 significant bits and its f16 scale 11, so q·d needs at most 19 of float's 24) — so a
    // one-token product that converts weights in registers (dot4*) and a batched one that dequantizes a chunk into a
    // scratch buffer first (tile4x4, tile4x1) compute bit-identical results.

    /**
     * Partial sums of a quad of Q8_0 rows with one token over {@code blocks} blocks of a tile, in the quad-interleaved
     * layout of {@link QuantWeight}: block j of row i has its 32 quants at q[qOff + 32·(4j + i)] and its scale at
     * s[sOff + 4j + i], so the four rows stream from one sequential run of memory. out[i] = row i's sum.
     */
    public static void dot4Q8(byte[] q, float[] s, int qOff, int sOff, int blocks, float[] x, int xOff, float[] out) {
        if (!VECTOR) {
            for (int i = 0; i < 4; i++) {
                float p = 0;
                for (int j = 0; j < blocks; j++) {
                    float d = s[sOff + 4 * j + i];
                    for (int c = 0; c < 32; c++) {
                        p += q[qOff + 32 * (4 * j + i) + c] * d * x[xOff + 32 * j + c];
                    }
                }
                out[i] = p;
            }
            return;
        }
        FloatVector a0 = FloatVector.zero(F), a1 = FloatVector.zero(F), a2 = FloatVector.zero(F), a3 = FloatVector.zero(F);
        for (int j = 0; j < blocks; j++) {
            int so = sOff + 4 * j, qo = qOff + 128 * j;
            float d0 = s[so], d1 = s[so + 1], d2 = s[so + 2], d3 = s[so + 3];
            for (int c = 0; c < 32; c += L) {
                FloatVector xv = FloatVector.fromArray(F, x, xOff + 32 * j + c);
                a0 = ((FloatVector) ByteVector.fromArray(B, q, qo + c).convertShape(VectorOperators.B2F, F, 0)).mul(d0).fma(xv, a0);
                a1 = ((FloatVector) ByteVector.fromArray(B, q, qo + 32 + c).convertShape(VectorOperators.B2F, F, 0)).mul(d1).fma(xv, a1);
                a2 = ((FloatVector) ByteVector.fromArray(B, q, qo + 64 + c).convertShape(VectorOperators.B2F, F, 0)).mul(d2).fma(xv, a2);
                a3 = ((FloatVector) ByteVector.fromArray(B, q, qo + 96 + c).convertShape(VectorOperators.B2F, F, 0)).mul(d3).fma(xv, a3);
            }
        }
        out[0] = sum(a0);
        out[1] = sum(a1);
        out[2] = sum(a2);
        out[3] = sum(a3);
    }

    /**
     * A 4×4 tile straight from a quad of Q8_0 rows (layout as {@link #dot4Q8}) and four activation rows:
     * out[4i + t] = Σ_c W[i, c]·x[x_t + c] in the fixed order (the same bits as {@link #dot4Q8} of each token alone).
     * Each weight vector is converted once and feeds four FMAs: decode steps of several sequences run at FMA
     * throughput without the dequantize-to-memory pass of large batches.
     */
    public static void tile4x4Q8(byte[] q, float[] s, int qOff, int sOff, int blocks, float[] x, int x0, int x1, int x2, int x3, float[] out) {
        if (!VECTOR) {
            int[] xs = {x0, x1, x2, x3};
            float[] p = new float[4];
            for (int t = 0; t < 4; t++) {
                dot4Q8(q, s, qOff, sOff, blocks, x, xs[t], p);
                for (int i = 0; i < 4; i++) {
                    out[4 * i + t] = p[i];
                }
            }
            return;
        }
        FloatVector a00 = FloatVector.zero(F), a01 = FloatVector.zero(F), a02 = FloatVector.zero(F), a03 = FloatVector.zero(F);
        FloatVector a10 = FloatVector.zero(F), a11 = FloatVector.zero(F), a12 = FloatVector.zero(F), a13 = FloatVector.zero(F);
        FloatVector a20 = FloatVector.zero(F), a21 = FloatVector.zero(F), a22 = FloatVector.zero(F), a23 = FloatVector.zero(F);
        FloatVector a30 = FloatVector.zero(F), a31 = FloatVector.zero(F), a32 = FloatVector.zero(F), a33 = FloatVector.zero(F);
        for (int j = 0; j < blocks; j++) {
            int so = sOff + 4 * j, qo = qOff + 128 * j;
            float d0 = s[so], d1 = s[so + 1], d2 = s[so + 2], d3 = s[so + 3];
            for (int c = 0; c < 32; c += L) {
                int xo = 32 * j + c;
                FloatVector v0 = FloatVector.fromArray(F, x, x0 + xo), v1 = FloatVector.fromArray(F, x, x1 + xo);
                FloatVector v2 = FloatVector.fromArray(F, x, x2 + xo), v3 = FloatVector.fromArray(F, x, x3 + xo);
                FloatVector w = ((FloatVector) ByteVector.fromArray(B, q, qo + c).convertShape(VectorOperators.B2F, F, 0)).mul(d0);
                a00 = w.fma(v0, a00); a01 = w.fma(v1, a01); a02 = w.fma(v2, a02); a03 = w.fma(v3, a03);
                w = ((FloatVector) ByteVector.fromArray(B, q, qo + 32 + c).convertShape(VectorOperators.B2F, F, 0)).mul(d1);
                a10 = w.fma(v0, a10); a11 = w.fma(v1, a11); a12 = w.fma(v2, a12); a13 = w.fma(v3, a13);
                w = ((FloatVector) ByteVector.fromArray(B, q, qo + 64 + c).convertShape(VectorOperators.B2F, F, 0)).mul(d2);
                a20 = w.fma(v0, a20); a21 = w.fma(v1, a21); a22 = w.fma(v2, a22); a23 = w.fma(v3, a23);
                w = ((FloatVector) ByteVector.fromArray(B, q, qo + 96 + c).convertShape(VectorOperators.B2F, F, 0)).mul(d3);
                a30 = w.fma(v0, a30); a31 = w.fma(v1, a31); a32 = w.fma(v2, a32); a33 = w.fma(v3, a33);
            }
        }
        float[] t = LANES.get();
        a00.intoArray(t, 0); a01.intoArray(t, L); a02.intoArray(t, 2 * L); a03.intoArray(t, 3 * L);
        a10.intoArray(t, 4 * L); a11.intoArray(t, 5 * L); a12.intoArray(t, 6 * L); a13.intoArray(t, 7 * L);
        a20.intoArray(t, 8 * L); a21.intoArray(t, 9 * L); a22.intoArray(t, 10 * L); a23.intoArray(t, 11 * L);
        a30.intoArray(t, 12 * L); a31.intoArray(t, 13 * L); a32.intoArray(t, 14 * L); a33.intoArray(t, 15 * L);
        for (int k = 0; k < 16; k++) {
            out[k] = treeSum(t, k * L);
        }
    }

    /** As {@link #dot4Q8} for Q4_0 (16 bytes of nibbles per block: q[qOff + 16·(4j + i)]). */
    public static void dot4Q4(byte[] q, float[] s, int qOff, int sOff, int blocks, float[] x, int xOff, float[] out) {
        if (!VECTOR) {
            float[] w = new float[32];
            for (int i = 0; i < 4; i++) {
                float p = 0;
                for (int j = 0; j < blocks; j++) {
                    dequantQ4_0(q, qOff + 16 * (4 * j + i), s, sOff + 4 * j + i, w, 0, 1);
                    for (int c = 0; c < 32; c++) {
                        p += w[c] * x[xOff + 32 * j + c];
                    }
                }
                out[i] = p;
            }
            return;
        }
        FloatVector a0 = FloatVector.zero(F), a1 = FloatVector.zero(F), a2 = FloatVector.zero(F), a3 = FloatVector.zero(F);
        for (int j = 0; j < blocks; j++) {
            int so = sOff + 4 * j, qo = qOff + 64 * j, xo = xOff + 32 * j;
            float d0 = s[so], d1 = s[so + 1], d2 = s[so + 2], d3 = s[so + 3];
            ByteVector v0 = ByteVector.fromArray(B128, q, qo), v1 = ByteVector.fromArray(B128, q, qo + 16);
            ByteVector v2 = ByteVector.fromArray(B128, q, qo + 32), v3 = ByteVector.fromArray(B128, q, qo + 48);
            ByteVector l0 = v0.and((byte) 0x0f).sub((byte) 8), h0 = v0.lanewise(VectorOperators.LSHR, 4).sub((byte) 8);
            ByteVector l1 = v1.and((byte) 0x0f).sub((byte) 8), h1 = v1.lanewise(VectorOperators.LSHR, 4).sub((byte) 8);
            ByteVector l2 = v2.and((byte) 0x0f).sub((byte) 8), h2 = v2.lanewise(VectorOperators.LSHR, 4).sub((byte) 8);
            ByteVector l3 = v3.and((byte) 0x0f).sub((byte) 8), h3 = v3.lanewise(VectorOperators.LSHR, 4).sub((byte) 8);
            for (int p = 0; p < 16 / L; p++) {
                FloatVector xl = FloatVector.fromArray(F, x, xo + p * L);
                a0 = ((FloatVector) l0.convertShape(VectorOperators.B2F, F, p)).mul(d0).fma(xl, a0);
                a1 = ((FloatVector) l1.convertShape(VectorOperators.B2F, F, p)).mul(d1).fma(xl, a1);
                a2 = ((FloatVector) l2.convertShape(VectorOperators.B2F, F, p)).mul(d2).fma(xl, a2);
                a3 = ((FloatVector) l3.convertShape(VectorOperators.B2F, F, p)).mul(d3).fma(xl, a3);
            }
            for (int p = 0; p < 16 / L; p++) {
                FloatVector xh = FloatVector.fromArray(F, x, xo + 16 + p * L);
                a0 = ((FloatVector) h0.convertShape(VectorOperators.B2F, F, p)).mul(d0).fma(xh, a0);
                a1 = ((FloatVector) h1.convertShape(VectorOperators.B2F, F, p)).mul(d1).fma(xh, a1);
                a2 = ((FloatVector) h2.convertShape(VectorOperators.B2F, F, p)).mul(d2).fma(xh, a2);
                a3 = ((FloatVector) h3.convertShape(VectorOperators.B2F, F, p)).mul(d3).fma(xh, a3);
            }
        }
        out[0] = sum(a0);
        out[1] = sum(a1);
        out[2] = sum(a2);
        out[3] = sum(a3);
    }

    /**
     * Partial sums of four half-precision rows (F16 bits, or BF16 bits when {@code bf16}) in a Java array with one
     * token over n columns: row i starts at h[o_i]. Vector operations written out (see dotF16 on inlining).
     */
    public static void dot4Half(short[] h, boolean bf16, int o0, int o1, int o2, int o3, int n, float[] x, int xOff, float[] out) {
        int c = 0;
        float p0 = 0, p1 = 0, p2 = 0, p3 = 0;
        if (VECTOR) {
            FloatVector a0 = FloatVector.zero(F), a1 = FloatVector.zero(F), a2 = FloatVector.zero(F), a3 = FloatVector.zero(F);
            for (; c + L <= n; c += L) {
                FloatVector xv = FloatVector.fromArray(F, x, xOff + c);
                IntVector h0 = (IntVector) ShortVector.fromArray(S, h, o0 + c).convertShape(VectorOperators.S2I, I, 0);
                IntVector h1 = (IntVector) ShortVector.fromArray(S, h, o1 + c).convertShape(VectorOperators.S2I, I, 0);
                IntVector h2 = (IntVector) ShortVector.fromArray(S, h, o2 + c).convertShape(VectorOperators.S2I, I, 0);
                IntVector h3 = (IntVector) ShortVector.fromArray(S, h, o3 + c).convertShape(VectorOperators.S2I, I, 0);
                FloatVector w0, w1, w2, w3;
                if (bf16) {
                    w0 = h0.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
                    w1 = h1.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
                    w2 = h2.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
                    w3 = h3.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
                } else {
                    // |h| << 13 as float bits, times 2^112: the half's magnitude as a float; then the sign
                    w0 = h0.and(0x7fff).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f).reinterpretAsInts()
                            .or(h0.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
                    w1 = h1.and(0x7fff).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f).reinterpretAsInts()
                            .or(h1.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
                    w2 = h2.and(0x7fff).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f).reinterpretAsInts()
                            .or(h2.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
                    w3 = h3.and(0x7fff).lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f).reinterpretAsInts()
                            .or(h3.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
                }
                a0 = w0.fma(xv, a0);
                a1 = w1.fma(xv, a1);
                a2 = w2.fma(xv, a2);
                a3 = w3.fma(xv, a3);
            }
            p0 = sum(a0);
            p1 = sum(a1);
            p2 = sum(a2);
            p3 = sum(a3);
        }
        for (; c < n; c++) {
            float xc = x[xOff + c];
            p0 += half(h[o0 + c], bf16) * xc;
            p1 += half(h[o1 + c], bf16) * xc;
            p2 += half(h[o2 + c], bf16) * xc;
            p3 += half(h[o3 + c], bf16) * xc;
        }
        out[0] = p0;
        out[1] = p1;
        out[2] = p2;
        out[3] = p3;
    }

    private static float half(short bits, boolean bf16) {
        return bf16 ? Float.intBitsToFloat((bits & 0xffff) << 16) : Float.float16ToFloat(bits);
    }

    /** Lanes loaded from a mapped row: F32, F16 or BF16 at byte offset off. */
    private static FloatVector load(MemorySegment w, GgmlWidth kind, long off) {
        if (kind == GgmlWidth.F32) {
            return FloatVector.fromMemorySegment(F, w, off, LE);
        }
        IntVector h = (IntVector) ShortVector.fromMemorySegment(S, w, off, LE).convertShape(VectorOperators.S2I, I, 0);
        return kind == GgmlWidth.BF16 ? h.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats() : halfToFloat(h);
    }

    /** How a mapped row's elements are stored. */
    public enum GgmlWidth {
        F32(4), F16(2), BF16(2);

        final int bytes;

        GgmlWidth(int bytes) {
            this.bytes = bytes;
        }
    }

    /** One element of a mapped row as a float. */
    public static float element(MemorySegment w, GgmlWidth kind, long off) {
        return switch (kind) {
            case F32 -> w.get(F32, off);
            case F16 -> Float.float16ToFloat(w.get(F16, off));
            case BF16 -> Float.intBitsToFloat((w.get(F16, off) & 0xffff) << 16);
        };
    }

    /**
     * Partial sums of four row-major rows read from a mapped file (row i's chunk at byte offset o_i) with one token
     * over n columns.
     */
    public static void dot4Mapped(MemorySegment w, GgmlWidth kind, long o0, long o1, long o2, long o3, int n, float[] x, int xOff, float[] out) {
        int c = 0;
        int eb = kind.bytes;
        float p0 = 0, p1 = 0, p2 = 0, p3 = 0;
        if (VECTOR) {
            FloatVector a0 = FloatVector.zero(F), a1 = FloatVector.zero(F), a2 = FloatVector.zero(F), a3 = FloatVector.zero(F);
            for (; c + L <= n; c += L) {
                FloatVector xv = FloatVector.fromArray(F, x, xOff + c);
                long d = (long) eb * c;
                a0 = load(w, kind, o0 + d).fma(xv, a0);
                a1 = load(w, kind, o1 + d).fma(xv, a1);
                a2 = load(w, kind, o2 + d).fma(xv, a2);
                a3 = load(w, kind, o3 + d).fma(xv, a3);
            }
            p0 = sum(a0);
            p1 = sum(a1);
            p2 = sum(a2);
            p3 = sum(a3);
        }
        for (; c < n; c++) {
            float xc = x[xOff + c];
            long d = (long) eb * c;
            p0 += element(w, kind, o0 + d) * xc;
            p1 += element(w, kind, o1 + d) * xc;
            p2 += element(w, kind, o2 + d) * xc;
            p3 += element(w, kind, o3 + d) * xc;
        }
        out[0] = p0;
        out[1] = p1;
        out[2] = p2;
        out[3] = p3;
    }

    /** Dequantizes n elements of a mapped row (byte offset off) into out[outOff..). */
    public static void dequantMapped(MemorySegment w, GgmlWidth kind, long off, float[] out, int outOff, int n) {
        int c = 0;
        if (VECTOR) {
            for (; c + L <= n; c += L) {
                load(w, kind, off + (long) kind.bytes * c).intoArray(out, outOff + c);
            }
        }
        for (; c < n; c++) {
            out[outOff + c] = element(w, kind, off + (long) kind.bytes * c);
        }
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

    /**
     * A 4×4 tile of a matrix product over columns [0, n): out[4·i + j] = Σ_c w[w_i + c] · x[x_j + c] for four weight
     * rows already dequantized (w_i = wOff + i·wStride) and four activation rows, in the fixed order described above
     * (so it equals {@code dot4*} of the same rows bit for bit). Each loaded vector feeds four FMAs: the loop is bound by
     * FMA throughput rather than by loads (prefill).
     */
    public static void tile4x4(float[] w, int wOff, int wStride, int n, float[] x, int x0, int x1, int x2, int x3, float[] out) {
        int c = 0;
        int r1 = wOff + wStride, r2 = r1 + wStride, r3 = r2 + wStride;
        if (VECTOR) {
            FloatVector a00 = FloatVector.zero(F), a01 = FloatVector.zero(F), a02 = FloatVector.zero(F), a03 = FloatVector.zero(F);
            FloatVector a10 = FloatVector.zero(F), a11 = FloatVector.zero(F), a12 = FloatVector.zero(F), a13 = FloatVector.zero(F);
            FloatVector a20 = FloatVector.zero(F), a21 = FloatVector.zero(F), a22 = FloatVector.zero(F), a23 = FloatVector.zero(F);
            FloatVector a30 = FloatVector.zero(F), a31 = FloatVector.zero(F), a32 = FloatVector.zero(F), a33 = FloatVector.zero(F);
            for (; c + L <= n; c += L) {
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
            // the lanes through memory, then sum()'s tree in scalar code (16 sums by shuffles measured slower)
            float[] t = LANES.get();
            a00.intoArray(t, 0); a01.intoArray(t, L); a02.intoArray(t, 2 * L); a03.intoArray(t, 3 * L);
            a10.intoArray(t, 4 * L); a11.intoArray(t, 5 * L); a12.intoArray(t, 6 * L); a13.intoArray(t, 7 * L);
            a20.intoArray(t, 8 * L); a21.intoArray(t, 9 * L); a22.intoArray(t, 10 * L); a23.intoArray(t, 11 * L);
            a30.intoArray(t, 12 * L); a31.intoArray(t, 13 * L); a32.intoArray(t, 14 * L); a33.intoArray(t, 15 * L);
            for (int k = 0; k < 16; k++) {
                out[k] = treeSum(t, k * L);
            }
        } else {
            java.util.Arrays.fill(out, 0, 16, 0f);
        }
        int[] ws = {wOff, r1, r2, r3}, xs = {x0, x1, x2, x3};
        for (int i = 0; i < 4; i++) {
            for (int j = 0; j < 4; j++) {
                float p = out[4 * i + j];
                for (int k = c; k < n; k++) {
                    p += w[ws[i] + k] * x[xs[j] + k];
                }
                out[4 * i + j] = p;
            }
        }
    }

    /** One activation row against four dequantized weight rows: out[i] as in {@link #tile4x4} for one token. */
    public static void tile4x1(float[] w, int wOff, int wStride, int n, float[] x, int x0, float[] out) {
        int c = 0;
        int r1 = wOff + wStride, r2 = r1 + wStride, r3 = r2 + wStride;
        if (VECTOR) {
            FloatVector a0 = FloatVector.zero(F), a1 = FloatVector.zero(F), a2 = FloatVector.zero(F), a3 = FloatVector.zero(F);
            for (; c + L <= n; c += L) {
                FloatVector v = FloatVector.fromArray(F, x, x0 + c);
                a0 = FloatVector.fromArray(F, w, wOff + c).fma(v, a0);
                a1 = FloatVector.fromArray(F, w, r1 + c).fma(v, a1);
                a2 = FloatVector.fromArray(F, w, r2 + c).fma(v, a2);
                a3 = FloatVector.fromArray(F, w, r3 + c).fma(v, a3);
            }
            out[0] = sum(a0);
            out[1] = sum(a1);
            out[2] = sum(a2);
            out[3] = sum(a3);
        } else {
            java.util.Arrays.fill(out, 0, 4, 0f);
        }
        int[] ws = {wOff, r1, r2, r3};
        for (int i = 0; i < 4; i++) {
            float p = out[i];
            for (int k = c; k < n; k++) {
                p += w[ws[i] + k] * x[x0 + k];
            }
            out[i] = p;
        }
    }

    /** g[i] = silu(g[i]) · u[i] = g[i] / (1 + e^−g[i]) · u[i] for i &lt; n (SwiGLU). */
    /**
     * g[off+i] = silu(g[off+i]) · u[off+i] for i &lt; n. The exponential is {@link #exp}, never the Vector API's EXP:
     * that one runs Math.exp per lane until C2 compiles it and SVML code after, and the two differ in the last bit —
     * enough to make a row's result depend on when the JIT ran. Call it per row (n = the row's width): the scalar
     * tail then always covers the same columns.
     */
    public static void swiglu(float[] g, float[] u, int off, int n) {
        int i = 0;
        if (VECTOR) {
            for (; i + L <= n; i += L) {
                FloatVector gv = FloatVector.fromArray(F, g, off + i);
                FloatVector e = exp(gv.neg()).add(1f);
                gv.div(e).mul(FloatVector.fromArray(F, u, off + i)).intoArray(g, off + i);
            }
        }
        for (; i < n; i++) {
            float x = g[off + i];
            g[off + i] = x / (1f + exp(-x)) * u[off + i];
        }
    }

    // e^x as Cephes' expf does it: x = n·ln2 + r with |r| <= ln2/2 (ln2 in two parts), a degree-7 polynomial for e^r,
    // times 2^n built from its bits. Every step is one IEEE operation (fma, mul, add, shifts), so the result is the
    // same bits in the interpreter and in compiled code, vector or scalar. Within 2 ulp of e^x; clamped to the
    // normal range (silu needs no more).
    private static final float EXP_HI = 88.3762626647949f, EXP_LO = -87.3365447504f;
    private static final float LOG2E = 1.44269504088896341f, LN2_HI = 0.693359375f, LN2_LO = -2.12194440e-4f;
    private static final float ROUND = 0x1.8p23f;
    private static final float P0 = 1.9875691500E-4f, P1 = 1.3981999507E-3f, P2 = 8.3334519073E-3f,
            P3 = 4.1665795894E-2f, P4 = 1.6666665459E-1f, P5 = 5.0000001201E-1f;

    static FloatVector exp(FloatVector x) {
        x = x.max(EXP_LO).min(EXP_HI);
        FloatVector n = x.fma(LOG2E, ROUND).sub(ROUND);            // round(x·log2 e), ties to even
        FloatVector r = n.fma(FloatVector.broadcast(F, -LN2_HI), x);
        r = n.fma(FloatVector.broadcast(F, -LN2_LO), r);
        FloatVector p = r.fma(P0, P1);
        p = p.fma(r, FloatVector.broadcast(F, P2));
        p = p.fma(r, FloatVector.broadcast(F, P3));
        p = p.fma(r, FloatVector.broadcast(F, P4));
        p = p.fma(r, FloatVector.broadcast(F, P5));
        p = p.mul(r.mul(r)).add(r).add(1f);
        IntVector bits = ((IntVector) n.convert(VectorOperators.F2I, 0)).add(127).lanewise(VectorOperators.LSHL, 23);
        return p.mul(bits.reinterpretAsFloats());
    }

    /** The scalar twin of {@link #exp(FloatVector)}: the same operations, the same bits. */
    static float exp(float x) {
        x = Math.min(Math.max(x, EXP_LO), EXP_HI);
        float n = Math.fma(x, LOG2E, ROUND) - ROUND;
        float r = Math.fma(n, -LN2_HI, x);
        r = Math.fma(n, -LN2_LO, r);
        float p = Math.fma(r, P0, P1);
        p = Math.fma(p, r, P2);
        p = Math.fma(p, r, P3);
        p = Math.fma(p, r, P4);
        p = Math.fma(p, r, P5);
        p = p * (r * r) + r + 1f;
        return p * Float.intBitsToFloat(((int) n + 127) << 23);
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

    /**
     * s[i] = e^(s[i] − max) for i &lt; n (with {@link #exp}), returning their sum in a fixed order: one accumulator per
     * lane over the whole vectors, {@link #sum}'s tree, then the tail one by one — so it depends on n and the values
     * only (the softmax of an attention row is the same whatever the batch).
     */
    public static float expSum(float[] s, int n, float max) {
        int i = 0;
        float sum = 0;
        if (VECTOR) {
            FloatVector acc = FloatVector.zero(F);
            for (; i + L <= n; i += L) {
                FloatVector e = exp(FloatVector.fromArray(F, s, i).sub(max));
                e.intoArray(s, i);
                acc = acc.add(e);
            }
            sum = sum(acc);
        }
        for (; i < n; i++) {
            float e = exp(s[i] - max);
            s[i] = e;
            sum += e;
        }
        return sum;
    }
}
