package internlm.engine.tornado;

import internlm.kernels.DeviceLayouts;
import internlm.loader.TensorData;
import internlm.loader.gguf.GgmlType;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.HalfFloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;
import uk.ac.manchester.tornado.api.types.arrays.ShortArray;

/**
 * A weight matrix in the device layout its kernels read: F32 (also BF16, widened exactly) as a FloatArray, F16 as
 * raw half bits in a ShortArray (decoded in the kernel; works on OpenCL devices without cl_khr_fp16) or, with
 * {@code nativeHalf}, as a HalfFloatArray, Q8_0 / Q4_0 as quants (IntArray) + scales (FloatArray). {@code data} is
 * the first array, {@code scales} the second (null for float types).
 */
record DeviceMatrix(Kind kind, Object data, FloatArray scales, int rows, int cols) {
    enum Kind { F32, F16, F16_BITS, Q8, Q4 }

    static DeviceMatrix of(TensorData t, boolean nativeHalf) {
        long rows = t.rows(), cols = t.rowLength(), n = t.elements();
        if (rows > Integer.MAX_VALUE || cols > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("tensor " + t.name() + " is too large for the TornadoVM backend");
        }
        return switch (t.type()) {
            case F32 -> new DeviceMatrix(Kind.F32, DeviceLayouts.packF32(t.data(), n), null, (int) rows, (int) cols);
            case BF16 -> new DeviceMatrix(Kind.F32, DeviceLayouts.packBF16(t.data(), n), null, (int) rows, (int) cols);
            case F16 -> nativeHalf
                    ? new DeviceMatrix(Kind.F16, DeviceLayouts.packF16(t.data(), n), null, (int) rows, (int) cols)
                    : new DeviceMatrix(Kind.F16_BITS, DeviceLayouts.packF16Bits(t.data(), n), null, (int) rows, (int) cols);
            case Q8_0 -> {
                DeviceLayouts.Quantized q = DeviceLayouts.packQ8(t.data(), n);
                yield new DeviceMatrix(Kind.Q8, q.quants(), q.scales(), (int) rows, (int) cols);
            }
            case Q4_0 -> {
                DeviceLayouts.Quantized q = DeviceLayouts.packQ4(t.data(), n);
                yield new DeviceMatrix(Kind.Q4, q.quants(), q.scales(), (int) rows, (int) cols);
            }
            default -> throw new IllegalArgumentException("tensor " + t.name() + " has type " + t.type() + ", which the TornadoVM backend does not run");
        };
    }

    /** Device bytes this matrix will take, computed from the tensor without packing it. */
    static long deviceBytes(TensorData t) {
        long n = t.elements();
        return switch (t.type()) {
            case F32, BF16 -> 4 * n;
            case F16 -> 2 * n;
            case Q8_0 -> n + n / 32 * 4;
            case Q4_0 -> n / 2 + n / 32 * 4;
            default -> GgmlType.F32.byteSize(n);
        };
    }

    boolean quantized() {
        return kind == Kind.Q8 || kind == Kind.Q4;
    }

    IntArray quants() {
        return (IntArray) data;
    }

    FloatArray floats() {
        return (FloatArray) data;
    }

    HalfFloatArray halves() {
        return (HalfFloatArray) data;
    }

    ShortArray bits() {
        return (ShortArray) data;
    }

    /** The arrays to transfer to the device. */
    Object[] arrays() {
        return scales == null ? new Object[] {data} : new Object[] {data, scales};
    }
}
