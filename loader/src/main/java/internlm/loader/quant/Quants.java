package internlm.loader.quant;

import internlm.loader.gguf.GgmlType;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Scalar reference (de)quantization of the ggml block formats the engine reads. These are the numerical
 * definitions; the backends' fast kernels are checked against them.
 *
 * <ul>
 *   <li>F32, F16 (IEEE half), BF16 (upper 16 bits of an f32)</li>
 *   <li>Q8_0: 32 values = f16 scale d + 32 int8 q; x = d·q</li>
 *   <li>Q4_0: 32 values = f16 d + 16 bytes; x[j] = d·((b[j] &amp; 15) − 8), x[j+16] = d·((b[j] &gt;&gt; 4) − 8)</li>
 *   <li>Q4_K: 256 values = f16 d, f16 dmin, 12 bytes of packed 6-bit scales/mins, 128 bytes of nibbles</li>
 *   <li>Q6_K: 256 values = 128 bytes low nibbles, 64 bytes high 2-bit pairs, 16 int8 scales, f16 d</li>
 * </ul>
 */
public final class Quants {
    private Quants() {}

    public static final ValueLayout.OfShort F16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    public static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    public static float f16(MemorySegment s, long off) {
        return Float.float16ToFloat(s.get(F16, off));
    }

    public static float bf16ToFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xffff) << 16);
    }

    /** f32 → bf16 with round-to-nearest-even (NaN kept quiet), as PyTorch and ggml do. */
    public static short floatToBf16(float f) {
        int bits = Float.floatToRawIntBits(f);
        if ((bits & 0x7fffffff) > 0x7f800000) {
            return (short) ((bits >>> 16) | 0x40);
        }
        int rounding = 0x7fff + ((bits >>> 16) & 1);
        return (short) ((bits + rounding) >>> 16);
    }

    /** C's roundf: halfway cases away from zero (ggml's quantizers use it). */
    public static int roundf(float v) {
        return (int) (v < 0 ? -Math.floor(-v + 0.5f) : Math.floor(v + 0.5f));
    }

    /**
     * Dequantizes {@code n} values of a tensor of type {@code type} starting at element {@code first} (which must be
     * at a block boundary) into {@code out[outOff..]}.
     */
    public static void dequantize(GgmlType type, MemorySegment src, long first, float[] out, int outOff, int n) {
        if (first % type.blockSize != 0 || n % type.blockSize != 0) {
            throw new IllegalArgumentException("dequantize must start and end at " + type + " block boundaries");
        }
        long off = first / type.blockSize * type.bytesPerBlock;
        switch (type) {
            case F32 -> MemorySegment.copy(src, F32, off, out, outOff, n);
            case F16 -> {
                for (int i = 0; i < n; i++) {
                    out[outOff + i] = f16(src, off + 2L * i);
                }
            }
            case BF16 -> {
                for (int i = 0; i < n; i++) {
                    out[outOff + i] = bf16ToFloat(src.get(F16, off + 2L * i));
                }
            }
            case Q8_0 -> {
                for (int b = 0; b < n / 32; b++, off += 34) {
                    float d = f16(src, off);
                    for (int j = 0; j < 32; j++) {
                        out[outOff + b * 32 + j] = d * src.get(ValueLayout.JAVA_BYTE, off + 2 + j);
                    }
                }
            }
            case Q4_0 -> {
                for (int b = 0; b < n / 32; b++, off += 18) {
                    float d = f16(src, off);
                    for (int j = 0; j < 16; j++) {
                        int q = src.get(ValueLayout.JAVA_BYTE, off + 2 + j) & 0xff;
                        out[outOff + b * 32 + j] = d * ((q & 0x0f) - 8);
                        out[outOff + b * 32 + j + 16] = d * ((q >> 4) - 8);
                    }
                }
            }
            case Q4_K -> {
                for (int b = 0; b < n / 256; b++, off += 144) {
                    dequantizeQ4K(src, off, out, outOff + b * 256);
                }
            }
            case Q6_K -> {
                for (int b = 0; b < n / 256; b++, off += 210) {
                    dequantizeQ6K(src, off, out, outOff + b * 256);
                }
            }
            default -> throw new UnsupportedOperationException("no dequantization for " + type);
        }
    }

    private static int u8(MemorySegment s, long off) {
        return s.get(ValueLayout.JAVA_BYTE, off) & 0xff;
    }

    /** Q4_K block: d(f16) dmin(f16) scales[12] qs[128]. */
    static void dequantizeQ4K(MemorySegment s, long off, float[] y, int yo) {
        float d = f16(s, off);
        float dmin = f16(s, off + 2);
        long scales = off + 4;
        long q = off + 16;
        int is = 0;
        for (int j = 0; j < 256; j += 64) {
            int[] sm0 = scaleMinK4(s, scales, is);
            int[] sm1 = scaleMinK4(s, scales, is + 1);
            float d1 = d * sm0[0], m1 = dmin * sm0[1];
            float d2 = d * sm1[0], m2 = dmin * sm1[1];
            for (int l = 0; l < 32; l++) {
                y[yo + j + l] = d1 * (u8(s, q + l) & 0x0f) - m1;
            }
            for (int l = 0; l < 32; l++) {
                y[yo + j + 32 + l] = d2 * (u8(s, q + l) >> 4) - m2;
            }
            q += 32;
            is += 2;
        }
    }

    /** The 6-bit scale and min number {@code j} (0..7) of a Q4_K block's packed 12 bytes. */
    static int[] scaleMinK4(MemorySegment s, long scales, int j) {
        if (j < 4) {
            return new int[] {u8(s, scales + j) & 63, u8(s, scales + j + 4) & 63};
        }
        int sc = (u8(s, scales + j + 4) & 0x0f) | ((u8(s, scales + j - 4) >> 6) << 4);
        int m = (u8(s, scales + j + 4) >> 4) | ((u8(s, scales + j) >> 6) << 4);
        return new int[] {sc, m};
    }

    /** Q6_K block: ql[128] qh[64] scales[16] (int8) d(f16). */
    static void dequantizeQ6K(MemorySegment s, long off, float[] y, int yo) {
        float d = f16(s, off + 208);
        long ql = off, qh = off + 128, sc = off + 192;
        for (int n = 0; n < 256; n += 128) {
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int q1 = ((u8(s, ql + l) & 0x0f) | (((u8(s, qh + l) >> 0) & 3) << 4)) - 32;
                int q2 = ((u8(s, ql + l + 32) & 0x0f) | (((u8(s, qh + l) >> 2) & 3) << 4)) - 32;
                int q3 = ((u8(s, ql + l) >> 4) | (((u8(s, qh + l) >> 4) & 3) << 4)) - 32;
                int q4 = ((u8(s, ql + l + 32) >> 4) | (((u8(s, qh + l) >> 6) & 3) << 4)) - 32;
                y[yo + n + l] = d * s.get(ValueLayout.JAVA_BYTE, sc + is) * q1;
                y[yo + n + l + 32] = d * s.get(ValueLayout.JAVA_BYTE, sc + is + 2) * q2;
                y[yo + n + l + 64] = d * s.get(ValueLayout.JAVA_BYTE, sc + is + 4) * q3;
                y[yo + n + l + 96] = d * s.get(ValueLayout.JAVA_BYTE, sc + is + 6) * q4;
            }
            ql += 64;
            qh += 32;
            sc += 8;
        }
    }

    /** ggml's reference Q8_0 quantization of 32·k floats into {@code dst} at byte offset {@code dstOff}. */
    public static void quantizeQ8_0(float[] x, int xOff, int n, MemorySegment dst, long dstOff) {
        for (int b = 0; b < n / 32; b++) {
            float amax = 0;
            for (int j = 0; j < 32; j++) {
                amax = Math.max(amax, Math.abs(x[xOff + b * 32 + j]));
            }
            float d = amax / 127f;
            float id = d != 0 ? 1f / d : 0f;
            long o = dstOff + 34L * b;
            dst.set(F16, o, Float.floatToFloat16(d));
            for (int j = 0; j < 32; j++) {
                dst.set(ValueLayout.JAVA_BYTE, o + 2 + j, (byte) roundf(x[xOff + b * 32 + j] * id));
            }
        }
    }

    /** ggml's reference Q4_0 quantization (scale from the signed value of largest magnitude, d = max / −8). */
    public static void quantizeQ4_0(float[] x, int xOff, int n, MemorySegment dst, long dstOff) {
        for (int b = 0; b < n / 32; b++) {
            float amax = 0, max = 0;
            for (int j = 0; j < 32; j++) {
                float v = x[xOff + b * 32 + j];
                if (amax < Math.abs(v)) {
                    amax = Math.abs(v);
                    max = v;
                }
            }
            float d = max / -8f;
            float id = d != 0 ? 1f / d : 0f;
            long o = dstOff + 18L * b;
            dst.set(F16, o, Float.floatToFloat16(d));
            for (int j = 0; j < 16; j++) {
                float x0 = x[xOff + b * 32 + j] * id;
                float x1 = x[xOff + b * 32 + 16 + j] * id;
                int q0 = Math.min(15, (int) (x0 + 8.5f));
                int q1 = Math.min(15, (int) (x1 + 8.5f));
                dst.set(ValueLayout.JAVA_BYTE, o + 2 + j, (byte) (q0 | (q1 << 4)));
            }
        }
    }
}
