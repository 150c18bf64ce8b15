package internlm.kernels;

import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.HalfFloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;
import uk.ac.manchester.tornado.api.types.arrays.ShortArray;

/**
 * The per-work-item part of the lane products (decode batches of up to {@link GemmKernels#LANE_BATCH} rows): lane
 * {@code t} of the {@code lanes} work-items that share one output row sums the row's columns t, t + lanes, … against
 * the activation row at {@code xo} (consecutive lanes read consecutive words, so loads coalesce; F32 and F16 rows of
 * even width are read two values per lane and step — 8 or 4 bytes, whole rows aligned —, Q8_0 and Q4_0 a 32-bit word
 * of 4 or 8 weights); the lanes' sums are
 * then added in a fixed tree ({@link KernelSupport#reduceSegments}). The {@code Norm} variants read the activation
 * through RMSNorm — x · scale · weight, the very floats {@link BatchKernels#rmsNorm} writes — so that a product can
 * consume the residual stream directly, without a normalisation pass of its own.
 *
 * <p>Device layouts (repacked once at load by {@link DeviceLayouts}):
 * <ul>
 *   <li>F32: FloatArray, row-major [rows × cols].</li>
 *   <li>F16: ShortArray of the raw half-precision bits, row-major, decoded with integer operations and a 32-entry
 *       table of powers of two ({@link KernelSupport#halfToFloat}) — for OpenCL devices without cl_khr_fp16 (PoCL);
 *       or HalfFloatArray (native half loads) for devices that have it.</li>
 *   <li>Q8_0: quants as an IntArray, four int8 per int (little-endian, element c of a row in byte c), row-major
 *       [rows × cols/4]; scales as a FloatArray [rows × cols/32] (f32, converted from the blocks' f16).</li>
 *   <li>Q4_0: quants as an IntArray, a block's 16 bytes in 4 ints (byte j: element j in the low nibble, element j+16
 *       in the high nibble, values biased by 8), row-major [rows × cols/8]; scales FloatArray [rows × cols/32].</li>
 * </ul>
 */
public final class LaneProducts {
    private LaneProducts() {}

    /** Σ x² over the activation row at xo, this work-item's share (stride {@code stride}). */
    static float sumSquares(FloatArray x, int xo, int cols, int lid, int stride) {
        float ss = 0f;
        for (int i = lid; i < cols; i += stride) {
            float v = x.get(xo + i);
            ss += v * v;
        }
        return ss;
    }

    // ------------------------------------------------------------------ F32

    static float dotF32(FloatArray w, FloatArray x, int xo, int row, int cols, int t, int lanes) {
        int base = row * cols;
        float sum = 0f;
        if ((cols & 1) == 0) {
            for (int c = t << 1; c < cols; c += lanes << 1) {
                sum += w.get(base + c) * x.get(xo + c) + w.get(base + c + 1) * x.get(xo + c + 1);
            }
        } else {
            for (int c = t; c < cols; c += lanes) {
                sum += w.get(base + c) * x.get(xo + c);
            }
        }
        return sum;
    }

    static float dotF32Norm(FloatArray w, FloatArray x, int xo, FloatArray vec, int no, float scale, int row, int cols, int t, int lanes) {
        int base = row * cols;
        float sum = 0f;
        if ((cols & 1) == 0) {
            for (int c = t << 1; c < cols; c += lanes << 1) {
                sum += w.get(base + c) * (x.get(xo + c) * scale * vec.get(no + c)) + w.get(base + c + 1) * (x.get(xo + c + 1) * scale * vec.get(no + c + 1));
            }
        } else {
            for (int c = t; c < cols; c += lanes) {
                sum += w.get(base + c) * (x.get(xo + c) * scale * vec.get(no + c));
            }
        }
        return sum;
    }

    // ------------------------------------------------------------------ F16, native half

    static float dotF16(HalfFloatArray w, FloatArray x, int xo, int row, int cols, int t, int lanes) {
        int base = row * cols;
        float sum = 0f;
        if ((cols & 1) == 0) {
            for (int c = t << 1; c < cols; c += lanes << 1) {
                sum += w.get(base + c).getFloat32() * x.get(xo + c) + w.get(base + (c + 1)).getFloat32() * x.get(xo + c + 1);
            }
        } else {
            for (int c = t; c < cols; c += lanes) {
                sum += w.get(base + c).getFloat32() * x.get(xo + c);
            }
        }
        return sum;
    }

    static float dotF16Norm(HalfFloatArray w, FloatArray x, int xo, FloatArray vec, int no, float scale, int row, int cols, int t, int lanes) {
        int base = row * cols;
        float sum = 0f;
        if ((cols & 1) == 0) {
            for (int c = t << 1; c < cols; c += lanes << 1) {
                sum += w.get(base + c).getFloat32() * (x.get(xo + c) * scale * vec.get(no + c)) + w.get(base + (c + 1)).getFloat32() * (x.get(xo + c + 1) * scale * vec.get(no + c + 1));
            }
        } else {
            for (int c = t; c < cols; c += lanes) {
                sum += w.get(base + c).getFloat32() * (x.get(xo + c) * scale * vec.get(no + c));
            }
        }
        return sum;
    }

    // ------------------------------------------------------------------ F16, raw bits

    static float dotF16Bits(ShortArray w, FloatArray pow2, FloatArray x, int xo, int row, int cols, int t, int lanes) {
        int base = row * cols;
        float sum = 0f;
        if ((cols & 1) == 0) {
            for (int c = t << 1; c < cols; c += lanes << 1) {
                sum += KernelSupport.halfToFloat(w.get(base + c), pow2) * x.get(xo + c) + KernelSupport.halfToFloat(w.get(base + (c + 1)), pow2) * x.get(xo + c + 1);
            }
        } else {
            for (int c = t; c < cols; c += lanes) {
                sum += KernelSupport.halfToFloat(w.get(base + c), pow2) * x.get(xo + c);
            }
        }
        return sum;
    }

    static float dotF16BitsNorm(ShortArray w, FloatArray pow2, FloatArray x, int xo, FloatArray vec, int no, float scale, int row, int cols, int t, int lanes) {
        int base = row * cols;
        float sum = 0f;
        if ((cols & 1) == 0) {
            for (int c = t << 1; c < cols; c += lanes << 1) {
                sum += KernelSupport.halfToFloat(w.get(base + c), pow2) * (x.get(xo + c) * scale * vec.get(no + c)) + KernelSupport.halfToFloat(w.get(base + (c + 1)), pow2) * (x.get(xo + c + 1) * scale * vec.get(no + c + 1));
            }
        } else {
            for (int c = t; c < cols; c += lanes) {
                sum += KernelSupport.halfToFloat(w.get(base + c), pow2) * (x.get(xo + c) * scale * vec.get(no + c));
            }
        }
        return sum;
    }

    // ------------------------------------------------------------------ Q8_0: a word of four int8 per load

    static float dotQ8(IntArray q, FloatArray s, FloatArray x, int xo, int row, int cols, int t, int lanes) {
        int words = cols >> 2;
        int base = row * words;
        int sBase = row * (cols >> 5);
        float sum = 0f;
        for (int w = t; w < words; w += lanes) {
            int v = q.get(base + w);
            int c = xo + (w << 2);
            float part = ((v << 24) >> 24) * x.get(c) + ((v << 16) >> 24) * x.get(c + 1)
                    + ((v << 8) >> 24) * x.get(c + 2) + (v >> 24) * x.get(c + 3);
            sum += part * s.get(sBase + (w >> 3));
        }
        return sum;
    }

    static float dotQ8Norm(IntArray q, FloatArray s, FloatArray x, int xo, FloatArray vec, int no, float scale, int row, int cols, int t, int lanes) {
        int words = cols >> 2;
        int base = row * words;
        int sBase = row * (cols >> 5);
        float sum = 0f;
        for (int w = t; w < words; w += lanes) {
            int v = q.get(base + w);
            int c = w << 2;
            float x0 = x.get(xo + c) * scale * vec.get(no + c), x1 = x.get(xo + c + 1) * scale * vec.get(no + c + 1);
            float x2 = x.get(xo + c + 2) * scale * vec.get(no + c + 2), x3 = x.get(xo + c + 3) * scale * vec.get(no + c + 3);
            float part = ((v << 24) >> 24) * x0 + ((v << 16) >> 24) * x1 + ((v << 8) >> 24) * x2 + (v >> 24) * x3;
            sum += part * s.get(sBase + (w >> 3));
        }
        return sum;
    }

    // ------------------------------------------------------------------ Q4_0: a word of eight nibbles per load

    static float dotQ4(IntArray q, FloatArray s, FloatArray x, int xo, int row, int cols, int t, int lanes) {
        int words = cols >> 3;
        int base = row * words;
        int sBase = row * (cols >> 5);
        float sum = 0f;
        for (int w = t; w < words; w += lanes) {
            int v = q.get(base + w);
            int c = xo + ((w >> 2) << 5) + ((w & 3) << 2);
            float lo = ((v & 15) - 8) * x.get(c) + (((v >> 8) & 15) - 8) * x.get(c + 1)
                    + (((v >> 16) & 15) - 8) * x.get(c + 2) + (((v >> 24) & 15) - 8) * x.get(c + 3);
            float hi = (((v >> 4) & 15) - 8) * x.get(c + 16) + (((v >> 12) & 15) - 8) * x.get(c + 17)
                    + (((v >> 20) & 15) - 8) * x.get(c + 18) + (((v >> 28) & 15) - 8) * x.get(c + 19);
            sum += (lo + hi) * s.get(sBase + (w >> 2));
        }
        return sum;
    }

    static float dotQ4Norm(IntArray q, FloatArray s, FloatArray x, int xo, FloatArray vec, int no, float scale, int row, int cols, int t, int lanes) {
        int words = cols >> 3;
        int base = row * words;
        int sBase = row * (cols >> 5);
        float sum = 0f;
        for (int w = t; w < words; w += lanes) {
            int v = q.get(base + w);
            int c = ((w >> 2) << 5) + ((w & 3) << 2);
            float lo = ((v & 15) - 8) * (x.get(xo + c) * scale * vec.get(no + c))
                    + (((v >> 8) & 15) - 8) * (x.get(xo + c + 1) * scale * vec.get(no + c + 1))
                    + (((v >> 16) & 15) - 8) * (x.get(xo + c + 2) * scale * vec.get(no + c + 2))
                    + (((v >> 24) & 15) - 8) * (x.get(xo + c + 3) * scale * vec.get(no + c + 3));
            float hi = (((v >> 4) & 15) - 8) * (x.get(xo + c + 16) * scale * vec.get(no + c + 16))
                    + (((v >> 12) & 15) - 8) * (x.get(xo + c + 17) * scale * vec.get(no + c + 17))
                    + (((v >> 20) & 15) - 8) * (x.get(xo + c + 18) * scale * vec.get(no + c + 18))
                    + (((v >> 28) & 15) - 8) * (x.get(xo + c + 19) * scale * vec.get(no + c + 19));
            sum += (lo + hi) * s.get(sBase + (w >> 2));
        }
        return sum;
    }
}
