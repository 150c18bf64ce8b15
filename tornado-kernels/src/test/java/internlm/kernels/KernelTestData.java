package internlm.kernels;

import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;

import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;

/** Random test tensors in every weight type, with their float values per ggml's definitions. */
final class KernelTestData {
    private KernelTestData() {}

    enum Type { F32, F16, F16_BITS, Q8_0, Q4_0 }

    /** A weight matrix in device layout plus its exact float values. */
    record Matrix(Type type, Object a, Object b, float[] values, int rows, int cols) {}

    static float[] randomFloats(SplittableRandom r, int n, double scale) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) ((r.nextDouble() * 2 - 1) * scale);
        }
        return v;
    }

    static FloatArray fa(float[] v) {
        return DeviceLayouts.floats(v);
    }

    static float[] floats(FloatArray a) {
        float[] v = new float[a.getSize()];
        for (int i = 0; i < v.length; i++) {
            v[i] = a.get(i);
        }
        return v;
    }

    static Matrix matrix(Type t, int rows, int cols, SplittableRandom r) {
        int n = rows * cols;
        switch (t) {
            case F32 -> {
                float[] v = randomFloats(r, n, 1);
                return new Matrix(t, fa(v), null, v, rows, cols);
            }
            case F16, F16_BITS -> {
                float[] v = randomFloats(r, n, 1);
                byte[] b = new byte[2 * n];
                for (int i = 0; i < n; i++) {
                    short h = Float.floatToFloat16(v[i]);
                    b[2 * i] = (byte) h;
                    b[2 * i + 1] = (byte) (h >> 8);
                    v[i] = Float.float16ToFloat(h);
                }
                Object a = t == Type.F16 ? DeviceLayouts.packF16(MemorySegment.ofArray(b), n) : DeviceLayouts.packF16Bits(MemorySegment.ofArray(b), n);
                return new Matrix(t, a, t == Type.F16 ? null : KernelSupport.halfTable(), v, rows, cols);
            }
            case Q8_0 -> {
                byte[] blocks = new byte[n / 32 * 34];
                for (int b = 0; b < n / 32; b++) {
                    short d = Float.floatToFloat16((float) (0.001 + r.nextDouble() * 0.02));
                    blocks[34 * b] = (byte) d;
                    blocks[34 * b + 1] = (byte) (d >> 8);
                    for (int j = 0; j < 32; j++) {
                        blocks[34 * b + 2 + j] = (byte) (r.nextInt(255) - 127);
                    }
                }
                DeviceLayouts.Quantized q = DeviceLayouts.packQ8(MemorySegment.ofArray(blocks), n);
                return new Matrix(t, q.quants(), q.scales(), References.dequantQ8(blocks, n), rows, cols);
            }
            case Q4_0 -> {
                byte[] blocks = new byte[n / 32 * 18];
                for (int b = 0; b < n / 32; b++) {
                    short d = Float.floatToFloat16((float) (0.01 + r.nextDouble() * 0.1));
                    blocks[18 * b] = (byte) d;
                    blocks[18 * b + 1] = (byte) (d >> 8);
                    for (int j = 0; j < 16; j++) {
                        blocks[18 * b + 2 + j] = (byte) r.nextInt(256);
                    }
                }
                DeviceLayouts.Quantized q = DeviceLayouts.packQ4(MemorySegment.ofArray(blocks), n);
                return new Matrix(t, q.quants(), q.scales(), References.dequantQ4(blocks, n), rows, cols);
            }
        }
        throw new IllegalArgumentException();
    }

    static IntArray state(int token, int pos) {
        IntArray s = new IntArray(2);
        s.set(0, token);
        s.set(1, pos);
        return s;
    }
}
