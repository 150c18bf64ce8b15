package internlm.kernels;

import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.math.TornadoMath;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;

/**
 * Pieces shared by the kernels (inlined by TornadoVM's compiler): the work-group tree reduction and the limits on
 * local-memory sizes, which must be compile-time constants.
 *
 * <p>Besides the local-array note below: TornadoVM 5.2's OpenCL code generation miscompiled a short-circuit condition
 * of the form {@code if (a && (b || c))} in {@link SamplingKernels} (the generated C let the path where c is false
 * fall through into the then-block); conditions with several terms are safest as non-short-circuit {@code &} / {@code |}
 * on booleans. PoCL compiles loops of barriers nested inside other loops slowly (tens of seconds for one kernel).
 */
public final class KernelSupport {
    private KernelSupport() {}

    /** Largest work-group size the kernels support (local reduction arrays are this long). Must be a power of two. */
    public static final int MAX_LOCAL = 256;
    /**
     * Length of a local array that is handed to a helper method (such as {@link #reduceSum}). TornadoVM 5.2's OpenCL code
     * generation (seen on PoCL) indexes a local array passed to an inlined helper like a Java heap array: element i at
     * [4·i + 16] (byte offset plus array header) instead of [i], while a local array used in the kernel method itself is
     * indexed [i]. The accesses stay consistent, so a helper's local array is allocated 4·n + 16 long; with a fixed
     * code generator the extra space is unused.
     */
    public static final int REDUCE_LOCAL = 4 * MAX_LOCAL + 16;
    /** Largest head dimension the attention kernels support. */
    public static final int MAX_HEAD_DIM = 256;
    /** Key/value positions per attention tile held in local memory. */
    public static final int ATTENTION_TILE = 16;

    /**
     * One value of a block rounded to llama.cpp's Q8_0 grid: v·id rounded to the nearest integer (ties to even), times
     * the block's scale dh (id = 127 / amax, dh = amax / 127 rounded to half precision; see {@link BatchKernels#roundQ8}).
     */
    public static float roundQ8(float v, float id, float dh) {
        float q = v * id;
        float fl = TornadoMath.floor(q);
        float diff = q - fl;
        if (diff > 0.5f || (diff == 0.5f && (((int) fl) & 1) != 0)) {
            fl += 1f;
        }
        return dh * fl;
    }

    /** SiLU, as the SwiGLU products apply it to the gate. */
    public static float silu(float g) {
        return g / (1.0f + TornadoMath.exp(-g));
    }

    /** The table {@link #halfToFloat} needs: entry e = 2^(e−25), e &lt; 32. */
    public static FloatArray halfTable() {
        FloatArray t = new FloatArray(32);
        for (int e = 0; e < 32; e++) {
            t.set(e, (float) Math.scalb(1.0, e - 25));
        }
        return t;
    }

    /**
     * Decodes IEEE half-precision bits with integer operations and one table look-up (exact for zeros, subnormals
     * and normals; no half type, no bit reinterpretation): value = ±(e = 0 ? m : 1024 + m) · 2^(max(e,1) − 25).
     */
    public static float halfToFloat(short bits, FloatArray pow2) {
        int h = bits & 0xFFFF;
        int e = (h >> 10) & 31;
        int m = h & 1023;
        float v = (e == 0 ? m : (m | 1024)) * pow2.get(e == 0 ? 1 : e);
        return (h & 0x8000) != 0 ? -v : v;
    }

    /**
     * Encodes a float as IEEE half-precision bits (round to nearest even; beyond the half range: infinity) with exact
     * arithmetic only.
     */
    public static short floatToHalf(float f) {
        int sign = f < 0f ? 0x8000 : 0;
        float a = TornadoMath.abs(f);
        if (a >= 65520f) {
            return (short) (sign | 0x7C00);
        }
        float r = roundToHalf(a);
        int bits;
        if (r < 6.103515625e-05f) {
            bits = (int) (r * 16777216f); // subnormal: multiples of 2^-24
        } else {
            float p = 6.103515625e-05f;
            int e = 1;
            for (int i = 0; i < 31 && p * 2f <= r; i++) {
                p *= 2f;
                e++;
            }
            bits = (e << 10) | ((int) (r / p * 1024f) - 1024);
        }
        return (short) (sign | bits);
    }

    /**
     * The float nearest to d among IEEE half-precision values, ties to even (d ≥ 0, finite, ≤ 65504), with exact
     * arithmetic only: scaling by powers of two is exact, so no bit reinterpretation is needed (OpenCL code
     * generation for it is not available in every TornadoVM backend).
     */
    public static float roundToHalf(float d) {
        float step;
        if (d < 6.103515625e-05f) {
            step = 5.9604645e-08f; // 2^-24: spacing of the subnormal halves
        } else {
            float p = 6.103515625e-05f; // 2^-14, the smallest normal half
            for (int i = 0; i < 31 && p * 2f <= d; i++) {
                p *= 2f;
            }
            step = p * 9.765625e-04f; // p · 2^-10
        }
        float r = d / step;
        float fl = TornadoMath.floor(r);
        float diff = r - fl;
        if (diff > 0.5f || (diff == 0.5f && (((int) fl) & 1) == 1)) {
            fl += 1f;
        }
        return fl * step;
    }

    /**
     * Sums {@code v} over each segment of {@code lanes} consecutive work-items (a power of two dividing the group size):
     * every item gets its segment's total, added in the same tree as {@link #reduceSum} (which is the one-segment
     * case). Ends with a barrier.
     */
    public static float reduceSegments(KernelContext ctx, float[] red, float v, int lanes) {
        int lid = ctx.localIdx;
        int t = lid & (lanes - 1);
        red[lid] = v;
        ctx.localBarrier();
        for (int s = lanes / 2; s > 0; s >>= 1) {
            if (t < s) {
                red[lid] += red[lid + s];
            }
            ctx.localBarrier();
        }
        float total = red[lid - t];
        ctx.localBarrier();
        return total;
    }

    /**
     * Sums {@code v} over the work-group: every work-item passes its value, all get the total. The work-group size
     * must be a power of two. Ends with a barrier, so {@code red} may be reused right after.
     */
    public static float reduceSum(KernelContext ctx, float[] red, float v) {
        int lid = ctx.localIdx;
        red[lid] = v;
        ctx.localBarrier();
        for (int s = ctx.localGroupSizeX / 2; s > 0; s >>= 1) {
            if (lid < s) {
                red[lid] += red[lid + s];
            }
            ctx.localBarrier();
        }
        float total = red[0];
        ctx.localBarrier();
        return total;
    }
}
