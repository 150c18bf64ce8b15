package internlm.kernels;

import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.HalfFloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;
import uk.ac.manchester.tornado.api.types.arrays.ShortArray;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Host-side packing of ggml tensors into the device layouts the kernels read (see {@link LaneProducts}).
 * Q8_0/Q4_0 blocks are split into an int array of quants (four bytes per int, so a work-item loads 4 or 8 weights
 * with one coalesced 32-bit read) and an f32 scale per block; the information is unchanged.
 */
public final class DeviceLayouts {
    private DeviceLayouts() {}

    private static final ValueLayout.OfShort F16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** Quants and scales of a quantized matrix in device layout. */
    public record Quantized(IntArray quants, FloatArray scales) {}

    /** Q8_0 blocks (34 bytes: f16 d, 32 int8) of {@code elements} values → device layout. */
    public static Quantized packQ8(MemorySegment blocks, long elements) {
        int nBlocks = checked(elements / 32, "blocks");
        IntArray q = new IntArray(checked(elements / 4, "quant words"));
        FloatArray s = new FloatArray(nBlocks);
        for (int b = 0; b < nBlocks; b++) {
            long o = 34L * b;
            s.set(b, Float.float16ToFloat(blocks.get(F16, o)));
            for (int w = 0; w < 8; w++) {
                q.set(8 * b + w, blocks.get(I32, o + 2 + 4L * w));
            }
        }
        return new Quantized(q, s);
    }

    /** Q4_0 blocks (18 bytes: f16 d, 16 bytes of nibbles) → device layout. */
    public static Quantized packQ4(MemorySegment blocks, long elements) {
        int nBlocks = checked(elements / 32, "blocks");
        IntArray q = new IntArray(checked(elements / 8, "quant words"));
        FloatArray s = new FloatArray(nBlocks);
        for (int b = 0; b < nBlocks; b++) {
            long o = 18L * b;
            s.set(b, Float.float16ToFloat(blocks.get(F16, o)));
            for (int w = 0; w < 4; w++) {
                q.set(4 * b + w, blocks.get(I32, o + 2 + 4L * w));
            }
        }
        return new Quantized(q, s);
    }

    /** F16 values → HalfFloatArray (a copy). */
    public static HalfFloatArray packF16(MemorySegment halves, long elements) {
        int n = checked(elements, "elements");
        HalfFloatArray a = new HalfFloatArray(n);
        MemorySegment.copy(halves, 0, a.getSegment(), 0, 2L * n);
        return a;
    }

    /** F16 values → ShortArray of their raw bits (a copy), for the bit-decoding kernels. */
    public static ShortArray packF16Bits(MemorySegment halves, long elements) {
        int n = checked(elements, "elements");
        ShortArray a = new ShortArray(n);
        MemorySegment.copy(halves, 0, a.getSegment(), 0, 2L * n);
        return a;
    }

    /** F32 values → FloatArray (a copy). */
    public static FloatArray packF32(MemorySegment floats, long elements) {
        int n = checked(elements, "elements");
        FloatArray a = new FloatArray(n);
        MemorySegment.copy(floats, 0, a.getSegment(), 0, 4L * n);
        return a;
    }

    /** BF16 values → FloatArray (exact: bf16 is the upper half of an f32). */
    public static FloatArray packBF16(MemorySegment halves, long elements) {
        int n = checked(elements, "elements");
        FloatArray a = new FloatArray(n);
        for (int i = 0; i < n; i++) {
            a.set(i, Float.intBitsToFloat((halves.get(F16, 2L * i) & 0xffff) << 16));
        }
        return a;
    }

    /** Floats → FloatArray. */
    public static FloatArray floats(float[] v) {
        FloatArray a = new FloatArray(v.length);
        for (int i = 0; i < v.length; i++) {
            a.set(i, v[i]);
        }
        return a;
    }

    private static int checked(long n, String what) {
        if (n > Integer.MAX_VALUE - 64) {
            throw new IllegalArgumentException("tensor too large for a TornadoVM array (" + n + " " + what + ")");
        }
        return (int) n;
    }

    static {
        // the layouts assume little-endian words, as GGUF and every supported device are
        if (ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN) {
            throw new ExceptionInInitializerError("big-endian hosts are not supported");
        }
    }

    static float f32(MemorySegment s, long off) {
        return s.get(F32, off);
    }
}
