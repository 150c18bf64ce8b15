package internlm.kernels;

import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.math.TornadoMath;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.HalfFloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;
import uk.ac.manchester.tornado.api.types.arrays.ShortArray;

/**
 * Matrix-vector products, one work-group per output row: the work-items stride over the row (consecutive items read
 * consecutive words, so loads coalesce), then reduce their partial sums in local memory.
 *
 * <p>Device layouts (repacked once at load, see the engine's TornadoWeights):
 * <ul>
 *   <li>F32: FloatArray, row-major [rows × cols].</li>
 *   <li>F16: ShortArray of the raw half-precision bits, row-major, decoded in the kernel with a 32-entry table of
 *       powers of two ({@link KernelSupport#halfToFloat}) — portable to OpenCL devices without cl_khr_fp16 (PoCL);
 *       or HalfFloatArray (native half loads) for devices that have it.</li>
 *   <li>Q8_0: quants as an IntArray, four int8 per int (little-endian, element c of a row in byte c), row-major
 *       [rows × cols/4]; scales as a FloatArray [rows × cols/32] (f32, converted from the blocks' f16).</li>
 *   <li>Q4_0: quants as an IntArray, a block's 16 bytes in 4 ints (byte j: element j in the low nibble, element j+16
 *       in the high nibble, values biased by 8), row-major [rows × cols/8]; scales FloatArray [rows × cols/32].</li>
 * </ul>
 * Each product exists plain (y = W·x), with residual (y += W·x), as fused Q/K/V (three matrices, one launch) and as
 * fused SwiGLU gate/up (h = silu(Wg·x) ⊙ Wu·x). The kernel tests compare them with scalar references (test code).
 */
public final class MatVecKernels {
    private MatVecKernels() {}

    // ------------------------------------------------------------------ per-work-item partial dot products

    static float partialF32(FloatArray w, FloatArray x, int xo, int row, int cols, int lid, int wg) {
        int base = row * cols;
        float sum = 0f;
        for (int c = lid; c < cols; c += wg) {
            sum += w.get(base + c) * x.get(xo + c);
        }
        return sum;
    }

    static float partialF16(HalfFloatArray w, FloatArray x, int xo, int row, int cols, int lid, int wg) {
        int base = row * cols;
        float sum = 0f;
        for (int c = lid; c < cols; c += wg) {
            sum += w.get(base + c).getFloat32() * x.get(xo + c);
        }
        return sum;
    }

    static float partialF16Bits(ShortArray w, FloatArray pow2, FloatArray x, int xo, int row, int cols, int lid, int wg) {
        int base = row * cols;
        float sum = 0f;
        for (int c = lid; c < cols; c += wg) {
            sum += KernelSupport.halfToFloat(w.get(base + c), pow2) * x.get(xo + c);
        }
        return sum;
    }

    static float partialQ8(IntArray q, FloatArray s, FloatArray x, int xo, int row, int cols, int lid, int wg) {
        int words = cols >> 2;
        int base = row * words;
        int sBase = row * (cols >> 5);
        float sum = 0f;
        for (int w = lid; w < words; w += wg) {
            int v = q.get(base + w);
            int c = w << 2;
            float part = ((v << 24) >> 24) * x.get(xo + c) + ((v << 16) >> 24) * x.get(xo + c + 1)
                    + ((v << 8) >> 24) * x.get(xo + c + 2) + (v >> 24) * x.get(xo + c + 3);
            sum += part * s.get(sBase + (w >> 3));
        }
        return sum;
    }

    static float partialQ4(IntArray q, FloatArray s, FloatArray x, int xo, int row, int cols, int lid, int wg) {
        int words = cols >> 3;
        int base = row * words;
        int sBase = row * (cols >> 5);
        float sum = 0f;
        for (int w = lid; w < words; w += wg) {
            int v = q.get(base + w);
            int c = ((w >> 2) << 5) + ((w & 3) << 2);
            float lo = ((v & 15) - 8) * x.get(xo + c) + (((v >> 8) & 15) - 8) * x.get(xo + c + 1)
                    + (((v >> 16) & 15) - 8) * x.get(xo + c + 2) + (((v >> 24) & 15) - 8) * x.get(xo + c + 3);
            float hi = (((v >> 4) & 15) - 8) * x.get(xo + c + 16) + (((v >> 12) & 15) - 8) * x.get(xo + c + 17)
                    + (((v >> 20) & 15) - 8) * x.get(xo + c + 18) + (((v >> 28) & 15) - 8) * x.get(xo + c + 19);
            sum += (lo + hi) * s.get(sBase + (w >> 2));
        }
        return sum;
    }

    // ------------------------------------------------------------------ y = W·x

    public static void matvecF32(KernelContext ctx, FloatArray w, FloatArray x, FloatArray y, int rows, int cols) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        int row = ctx.groupIdx;
        float p = row < rows ? partialF32(w, x, 0, row, cols, ctx.localIdx, ctx.localGroupSizeX) : 0f;
        float t = KernelSupport.reduceSum(ctx, red, p);
        if (ctx.localIdx == 0 && row < rows) {
            y.set(row, t);
        }
    }

    public static void matvecF16(KernelContext ctx, HalfFloatArray w, FloatArray x, FloatArray y, int rows, int cols) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        int row = ctx.groupIdx;
        float p = row < rows ? partialF16(w, x, 0, row, cols, ctx.localIdx, ctx.localGroupSizeX) : 0f;
        float t = KernelSupport.reduceSum(ctx, red, p);
        if (ctx.localIdx == 0 && row < rows) {
            y.set(row, t);
        }
    }

    public static void matvecQ8(KernelContext ctx, IntArray q, FloatArray s, FloatArray x, FloatArray y, int rows, int cols) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        int row = ctx.groupIdx;
        float p = row < rows ? partialQ8(q, s, x, 0, row, cols, ctx.localIdx, ctx.localGroupSizeX) : 0f;
        float t = KernelSupport.reduceSum(ctx, red, p);
        if (ctx.localIdx == 0 && row < rows) {
            y.set(row, t);
        }
    }

    public static void matvecQ4(KernelContext ctx, IntArray q, FloatArray s, FloatArray x, FloatArray y, int rows, int cols) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        int row = ctx.groupIdx;
        float p = row < rows ? partialQ4(q, s, x, 0, row, cols, ctx.localIdx, ctx.localGroupSizeX) : 0f;
        float t = KernelSupport.reduceSum(ctx, red, p);
        if (ctx.localIdx == 0 && row < rows) {
            y.set(row, t);
        }
    }

    public static void matvecF16Bits(KernelContext ctx, ShortArray w, FloatArray pow2, FloatArray x, FloatArray y, int rows, int cols) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        int row = ctx.groupIdx;
        float p = row < rows ? partialF16Bits(w, pow2, x, 0, row, cols, ctx.localIdx, ctx.localGroupSizeX) : 0f;
        float t = KernelSupport.reduceSum(ctx, red, p);
        if (ctx.localIdx == 0 && row < rows) {
            y.set(row, t);
        }
    }

    // ------------------------------------------------------------------ y += W·x (output projection, down projection)

    public static void matvecResidualF16Bits(KernelContext ctx, ShortArray w, FloatArray pow2, FloatArray x, FloatArray y, int rows, int cols) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        int row = ctx.groupIdx;
        float p = row < rows ? partialF16Bits(w, pow2, x, 0, row, cols, ctx.localIdx, ctx.localGroupSizeX) : 0f;
        float t = KernelSupport.reduceSum(ctx, red, p);
        if (ctx.localIdx == 0 && row < rows) {
            y.set(row, y.get(row) + t);
        }
    }

    public static void matvecResidualF32(KernelContext ctx, FloatArray w, FloatArray x, FloatArray y, int rows, int cols) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        int row = ctx.groupIdx;
        float p = row < rows ? partialF32(w, x, 0, row, cols, ctx.localIdx, ctx.localGroupSizeX) : 0f;
        float t = KernelSupport.reduceSum(ctx, red, p);
        if (ctx.localIdx == 0 && row < rows) {
            y.set(row, y.get(row) + t);
        }
    }

    public static void matvecResidualF16(KernelContext ctx, HalfFloatArray w, FloatArray x, FloatArray y, int rows, int cols) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        int row = ctx.groupIdx;
        float p = row < rows ? partialF16(w, x, 0, row, cols, ctx.localIdx, ctx.localGroupSizeX) : 0f;
        float t = KernelSupport.reduceSum(ctx, red, p);
        if (ctx.localIdx == 0 && row < rows) {
            y.set(row, y.get(row) + t);
        }
    }

    public static void matvecResidualQ8(KernelContext ctx, IntArray q, FloatArray s, FloatArray x, FloatArray y, int rows, int cols) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        int row = ctx.groupIdx;
        float p = row < rows ? partialQ8(q, s, x, 0, row, cols, ctx.localIdx, ctx.localGroupSizeX) : 0f;
        float t = KernelSupport.reduceSum(ctx, red, p);
        if (ctx.localIdx == 0 && row < rows) {
            y.set(row, y.get(row) + t);
        }
    }

    public static void matvecResidualQ4(KernelContext ctx, IntArray q, FloatArray s, FloatArray x, FloatArray y, int rows, int cols) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        int row = ctx.groupIdx;
        float p = row < rows ? partialQ4(q, s, x, 0, row, cols, ctx.localIdx, ctx.localGroupSizeX) : 0f;
        float t = KernelSupport.reduceSum(ctx, red, p);
        if (ctx.localIdx == 0 && row < rows) {
            y.set(row, y.get(row) + t);
        }
    }

    // ------------------------------------------------------------------ fused Q/K/V: groups [0, qRows) → q, then k, then v

    public static void qkvF32(KernelContext ctx, FloatArray wq, FloatArray wk, FloatArray wv, FloatArray x,
                              FloatArray q, FloatArray k, FloatArray v, int qRows, int kvRows, int cols) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        int g = ctx.groupIdx, lid = ctx.localIdx, wg = ctx.localGroupSizeX;
        float p = 0f;
        if (g < qRows) {
            p = partialF32(wq, x, 0, g, cols, lid, wg);
        } else if (g < qRows + kvRows) {
            p = partialF32(wk, x, 0, g - qRows, cols, lid, wg);
        } else if (g < qRows + 2 * kvRows) {
            p = partialF32(wv, x, 0, g - qRows - kvRows, cols, lid, wg);
        }
        float t = KernelSupport.reduceSum(ctx, red, p);
        if (lid == 0) {
            if (g < qRows) {
                q.set(g, t);
            } else if (g < qRows + kvRows) {
                k.set(g - qRows, t);
            } else if (g < qRows + 2 * kvRows) {
                v.set(g - qRows - kvRows, t);
            }
        }
    }

    public static void qkvF16(KernelContext ctx, HalfFloatArray wq, HalfFloatArray wk, HalfFloatArray wv, FloatArray x,
                              FloatArray q, FloatArray k, FloatArray v, int qRows, int kvRows, int cols) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        int g = ctx.groupIdx, lid = ctx.localIdx, wg = ctx.localGroupSizeX;
        float p = 0f;
        if (g < qRows) {
            p = partialF16(wq, x, 0, g, cols, lid, wg);
        } else if (g < qRows + kvRows) {
            p = partialF16(wk, x, 0, g - qRows, cols, lid, wg);
        } else if (g < qRows + 2 * kvRows) {
            p = partialF16(wv, x, 0, g - qRows - kvRows, cols, lid, wg);
        }
        float t = KernelSupport.reduceSum(ctx, red, p);
        if (lid == 0) {
            if (g < qRows) {
                q.set(g, t);
            } else if (g < qRows + kvRows) {
                k.set(g - qRows, t);
            } else if (g < qRows + 2 * kvRows) {
                v.set(g - qRows - kvRows, t);
            }
        }
    }

    public static void qkvF16Bits(KernelContext ctx, ShortArray wq, ShortArray wk, ShortArray wv, FloatArray pow2, FloatArray x,
                                  FloatArray q, FloatArray k, FloatArray v, int qRows, int kvRows, int cols) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        int g = ctx.groupIdx, lid = ctx.localIdx, wg = ctx.localGroupSizeX;
        float p = 0f;
        if (g < qRows) {
            p = partialF16Bits(wq, pow2, x, 0, g, cols, lid, wg);
        } else if (g < qRows + kvRows) {
            p = partialF16Bits(wk, pow2, x, 0, g - qRows, cols, lid, wg);
        } else if (g < qRows + 2 * kvRows) {
            p = partialF16Bits(wv, pow2, x, 0, g - qRows - kvRows, cols, lid, wg);
        }
        float t = KernelSupport.reduceSum(ctx, red, p);
        if (lid == 0) {
            if (g < qRows) {
                q.set(g, t);
            } else if (g < qRows + kvRows) {
                k.set(g - qRows, t);
            } else if (g < qRows + 2 * kvRows) {
                v.set(g - qRows - kvRows, t);
            }
        }
    }

    public static void qkvQ8(KernelContext ctx, IntArray wq, FloatArray sq, IntArray wk, FloatArray sk, IntArray wv, FloatArray sv,
                             FloatArray x, FloatArray q, FloatArray k, FloatArray v, int qRows, int kvRows, int cols) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        int g = ctx.groupIdx, lid = ctx.localIdx, wg = ctx.localGroupSizeX;
        float p = 0f;
        if (g < qRows) {
            p = partialQ8(wq, sq, x, 0, g, cols, lid, wg);
        } else if (g < qRows + kvRows) {
            p = partialQ8(wk, sk, x, 0, g - qRows, cols, lid, wg);
        } else if (g < qRows + 2 * kvRows) {
            p = partialQ8(wv, sv, x, 0, g - qRows - kvRows, cols, lid, wg);
        }
        float t = KernelSupport.reduceSum(ctx, red, p);
        if (lid == 0) {
            if (g < qRows) {
                q.set(g, t);
            } else if (g < qRows + kvRows) {
                k.set(g - qRows, t);
            } else if (g < qRows + 2 * kvRows) {
                v.set(g - qRows - kvRows, t);
            }
        }
    }

    public static void qkvQ4(KernelContext ctx, IntArray wq, FloatArray sq, IntArray wk, FloatArray sk, IntArray wv, FloatArray sv,
                             FloatArray x, FloatArray q, FloatArray k, FloatArray v, int qRows, int kvRows, int cols) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        int g = ctx.groupIdx, lid = ctx.localIdx, wg = ctx.localGroupSizeX;
        float p = 0f;
        if (g < qRows) {
            p = partialQ4(wq, sq, x, 0, g, cols, lid, wg);
        } else if (g < qRows + kvRows) {
            p = partialQ4(wk, sk, x, 0, g - qRows, cols, lid, wg);
        } else if (g < qRows + 2 * kvRows) {
            p = partialQ4(wv, sv, x, 0, g - qRows - kvRows, cols, lid, wg);
        }
        float t = KernelSupport.reduceSum(ctx, red, p);
        if (lid == 0) {
            if (g < qRows) {
                q.set(g, t);
            } else if (g < qRows + kvRows) {
                k.set(g - qRows, t);
            } else if (g < qRows + 2 * kvRows) {
                v.set(g - qRows - kvRows, t);
            }
        }
    }

    // ------------------------------------------------------------------ fused SwiGLU: h[r] = silu(Wg[r]·x) · (Wu[r]·x)

    static float silu(float g) {
        return g / (1.0f + TornadoMath.exp(-g));
    }

    public static void swigluF32(KernelContext ctx, FloatArray wg, FloatArray wu, FloatArray x, FloatArray h, int rows, int cols) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        int row = ctx.groupIdx, lid = ctx.localIdx, n = ctx.localGroupSizeX;
        float g = KernelSupport.reduceSum(ctx, red, row < rows ? partialF32(wg, x, 0, row, cols, lid, n) : 0f);
        float u = KernelSupport.reduceSum(ctx, red, row < rows ? partialF32(wu, x, 0, row, cols, lid, n) : 0f);
        if (lid == 0 && row < rows) {
            h.set(row, silu(g) * u);
        }
    }

    public static void swigluF16(KernelContext ctx, HalfFloatArray wg, HalfFloatArray wu, FloatArray x, FloatArray h, int rows, int cols) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        int row = ctx.groupIdx, lid = ctx.localIdx, n = ctx.localGroupSizeX;
        float g = KernelSupport.reduceSum(ctx, red, row < rows ? partialF16(wg, x, 0, row, cols, lid, n) : 0f);
        float u = KernelSupport.reduceSum(ctx, red, row < rows ? partialF16(wu, x, 0, row, cols, lid, n) : 0f);
        if (lid == 0 && row < rows) {
            h.set(row, silu(g) * u);
        }
    }

    public static void swigluF16Bits(KernelContext ctx, ShortArray wg, ShortArray wu, FloatArray pow2, FloatArray x, FloatArray h, int rows, int cols) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        int row = ctx.groupIdx, lid = ctx.localIdx, n = ctx.localGroupSizeX;
        float g = KernelSupport.reduceSum(ctx, red, row < rows ? partialF16Bits(wg, pow2, x, 0, row, cols, lid, n) : 0f);
        float u = KernelSupport.reduceSum(ctx, red, row < rows ? partialF16Bits(wu, pow2, x, 0, row, cols, lid, n) : 0f);
        if (lid == 0 && row < rows) {
            h.set(row, silu(g) * u);
        }
    }

    public static void swigluQ8(KernelContext ctx, IntArray wg, FloatArray sg, IntArray wu, FloatArray su, FloatArray x, FloatArray h, int rows, int cols) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        int row = ctx.groupIdx, lid = ctx.localIdx, n = ctx.localGroupSizeX;
        float g = KernelSupport.reduceSum(ctx, red, row < rows ? partialQ8(wg, sg, x, 0, row, cols, lid, n) : 0f);
        float u = KernelSupport.reduceSum(ctx, red, row < rows ? partialQ8(wu, su, x, 0, row, cols, lid, n) : 0f);
        if (lid == 0 && row < rows) {
            h.set(row, silu(g) * u);
        }
    }

    public static void swigluQ4(KernelContext ctx, IntArray wg, FloatArray sg, IntArray wu, FloatArray su, FloatArray x, FloatArray h, int rows, int cols) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.REDUCE_LOCAL);
        int row = ctx.groupIdx, lid = ctx.localIdx, n = ctx.localGroupSizeX;
        float g = KernelSupport.reduceSum(ctx, red, row < rows ? partialQ4(wg, sg, x, 0, row, cols, lid, n) : 0f);
        float u = KernelSupport.reduceSum(ctx, red, row < rows ? partialQ4(wu, su, x, 0, row, cols, lid, n) : 0f);
        if (lid == 0 && row < rows) {
            h.set(row, silu(g) * u);
        }
    }
}
