package internlm.engine.cpu;

import internlm.loader.gguf.GgmlType;

/**
 * llama.cpp-compatible rounding of a matmul's input vector. ggml does not multiply quantized weights with float
 * activations: it first converts the activations to the weight type's "vec_dot" type — Q8_0 blocks for Q8_0 and
 * Q4_0 weights — and multiplies those. (For F16 weights the generic CPU path rounds activations to F16 too, but the
 * AMX/F16C paths of x86 servers keep them in F32, so F16 inputs are left exact.) Rounding our float input to the same grid
 * (then multiplying in float, which is exact up to summation order) makes our logits agree with llama.cpp's to
 * ~1e-4 instead of ~1e-1 for quantized models, so the two can be compared tightly. Disable it for "exact" float
 * activations.
 */
public final class ActivationRounding {
    private ActivationRounding() {}

    /** Whether inputs to matrices of this type are rounded. */
    public static boolean applies(GgmlType weightType) {
        return weightType == GgmlType.Q8_0 || weightType == GgmlType.Q4_0;
    }

    /** Writes the rounded copy of x[off..off+n) to out[off..off+n). */
    public static void round(GgmlType weightType, float[] x, int off, int n, float[] out) {
        switch (weightType) {
            case Q8_0, Q4_0 -> {
                // ggml-cpu's x86 quantize_row_q8_0 (the vec_dot_type conversion its kernels use, AMX included):
                // d = max|x| / 127 stored as f16, q = round-half-even(x · (127 / max|x|))
                int b = 0;
                for (; b + 32 <= n; b += 32) {
                    float amax = VectorKernels.absMax(x, off + b, 32);
                    float id = amax != 0 ? 127f / amax : 0f;
                    float dh = Float.float16ToFloat(Float.floatToFloat16(amax / 127f));
                    for (int j = 0; j < 32; j++) {
                        out[off + b + j] = dh * (float) Math.rint(x[off + b + j] * id);
                    }
                }
                System.arraycopy(x, off + b, out, off + b, n - b);
            }
            default -> System.arraycopy(x, off, out, off, n);
        }
    }
}
