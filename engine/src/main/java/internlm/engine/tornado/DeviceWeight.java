package internlm.engine.tornado;

import internlm.kernels.DeviceLayouts;
import internlm.kernels.FusedGemmKernels;
import internlm.kernels.GemmKernels;
import internlm.kernels.BatchKernels;
import internlm.loader.TensorData;
import internlm.loader.gguf.GgmlType;
import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.TaskGraph;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.HalfFloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;
import uk.ac.manchester.tornado.api.types.arrays.ShortArray;
import uk.ac.manchester.tornado.api.types.arrays.TornadoNativeArray;

/**
 * A weight matrix [rows × cols] in the device layout its kernels read, as one type per weight kind; each kind adds its
 * own tasks to a graph: the batched product (plain or residual), fused Q/K/V and SwiGLU with partners of the same
 * kind, and the embedding lookup. F32 (BF16 is widened to it exactly), F16 as raw half bits decoded in the kernel
 * (works on OpenCL devices without cl_khr_fp16), F16 as native half ({@code nativeHalf}: CUDA/PTX or OpenCL with
 * fp16), Q8_0 and Q4_0 as quants (IntArray) + f32 scales.
 */
abstract sealed class DeviceWeight permits DeviceWeight.F32, DeviceWeight.F16Bits, DeviceWeight.F16, DeviceWeight.Q8, DeviceWeight.Q4 {
    final int rows, cols;

    DeviceWeight(int rows, int cols) {
        this.rows = rows;
        this.cols = cols;
    }

    static DeviceWeight of(TensorData t, boolean nativeHalf, FloatArray pow2) {
        long rows = t.rows(), cols = t.rowLength(), n = t.elements();
        if (rows > Integer.MAX_VALUE || cols > Integer.MAX_VALUE || n > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("tensor " + t.name() + " is too large for the TornadoVM backend");
        }
        int r = (int) rows, c = (int) cols;
        return switch (t.type()) {
            case F32 -> new F32(DeviceLayouts.packF32(t.data(), n), r, c);
            case BF16 -> new F32(DeviceLayouts.packBF16(t.data(), n), r, c);
            case F16 -> nativeHalf ? new F16(DeviceLayouts.packF16(t.data(), n), r, c) : new F16Bits(DeviceLayouts.packF16Bits(t.data(), n), pow2, r, c);
            case Q8_0 -> new Q8(DeviceLayouts.packQ8(t.data(), n), r, c);
            case Q4_0 -> new Q4(DeviceLayouts.packQ4(t.data(), n), r, c);
            default -> throw new IllegalArgumentException("tensor " + t.name() + " has type " + t.type() + ", which the TornadoVM backend does not run");
        };
    }

    /** Device bytes a matrix will take, computed from the tensor without packing it. */
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

    /** Device bytes of the matrix (what a product reads once). */
    long bytes() {
        long b = 0;
        for (Object a : arrays()) {
            b += a == pow2Table() ? 0 : ((TornadoNativeArray) a).getNumBytesOfSegment();
        }
        return b;
    }

    /** The shared half-decoding table among {@link #arrays()}, if any (not part of the matrix). */
    Object pow2Table() {
        return null;
    }

    /** The arrays its tasks read (to copy to the device once). */
    abstract Object[] arrays();

    /** Whether its products take Q8_0-rounded activations in llama.cpp's mode. */
    boolean quantized() {
        return false;
    }

    /** y = x·Wᵀ (or y += with {@code residual}) for meta[count] rows. */
    abstract void product(TaskGraph g, String task, KernelContext ctx, FloatArray x, FloatArray y, IntArray meta, int count, boolean residual);

    /** Q, K, V = x·Wqᵀ, x·Wkᵀ, x·Wvᵀ in one launch (this is Wq). */
    abstract void qkv(TaskGraph g, String task, KernelContext ctx, DeviceWeight wk, DeviceWeight wv, FloatArray x,
                      FloatArray q, FloatArray k, FloatArray v, IntArray meta);

    /** h = silu(x·Wgᵀ) ⊙ (x·Wuᵀ) in one launch (this is Wg). */
    abstract void swiglu(TaskGraph g, String task, KernelContext ctx, DeviceWeight up, FloatArray x, FloatArray h, IntArray meta);

    /** x[b] = row token_b of this table, for every row of the batch. */
    abstract void embedding(TaskGraph g, String task, KernelContext ctx, IntArray meta, FloatArray x);

    /** The partner of a fused product, of this same kind. */
    final <W extends DeviceWeight> W partner(DeviceWeight other, Class<W> kind) {
        if (!kind.isInstance(other) || other.cols != cols) {
            throw new IllegalArgumentException("a fused TornadoVM product needs matrices of one type and width: " + describe() + " with " + other.describe());
        }
        return kind.cast(other);
    }

    String describe() {
        return getClass().getSimpleName() + " [" + rows + " × " + cols + "]";
    }

    static int flag(boolean b) {
        return b ? 1 : 0;
    }

    static final class F32 extends DeviceWeight {
        final FloatArray w;

        F32(FloatArray w, int rows, int cols) {
            super(rows, cols);
            this.w = w;
        }

        @Override
        Object[] arrays() {
            return new Object[] {w};
        }

        @Override
        void product(TaskGraph g, String task, KernelContext ctx, FloatArray x, FloatArray y, IntArray meta, int count, boolean residual) {
            g.task(task, GemmKernels::gemmF32, ctx, w, x, y, meta, count, rows, cols, flag(residual));
        }

        @Override
        void qkv(TaskGraph g, String task, KernelContext ctx, DeviceWeight wk, DeviceWeight wv, FloatArray x, FloatArray q, FloatArray k, FloatArray v, IntArray meta) {
            g.task(task, FusedGemmKernels::qkvF32, ctx, w, partner(wk, F32.class).w, partner(wv, F32.class).w, x, q, k, v, meta, rows, wk.rows, cols);
        }

        @Override
        void swiglu(TaskGraph g, String task, KernelContext ctx, DeviceWeight up, FloatArray x, FloatArray h, IntArray meta) {
            g.task(task, FusedGemmKernels::swigluF32, ctx, w, partner(up, F32.class).w, x, h, meta, rows, cols);
        }

        @Override
        void embedding(TaskGraph g, String task, KernelContext ctx, IntArray meta, FloatArray x) {
            g.task(task, BatchKernels::embedF32, ctx, w, meta, x, cols);
        }
    }

    static final class F16Bits extends DeviceWeight {
        final ShortArray w;
        final FloatArray pow2;

        F16Bits(ShortArray w, FloatArray pow2, int rows, int cols) {
            super(rows, cols);
            this.w = w;
            this.pow2 = pow2;
        }

        @Override
        Object[] arrays() {
            return new Object[] {w, pow2};
        }

        @Override
        Object pow2Table() {
            return pow2;
        }

        @Override
        void product(TaskGraph g, String task, KernelContext ctx, FloatArray x, FloatArray y, IntArray meta, int count, boolean residual) {
            g.task(task, GemmKernels::gemmF16Bits, ctx, w, pow2, x, y, meta, count, rows, cols, flag(residual));
        }

        @Override
        void qkv(TaskGraph g, String task, KernelContext ctx, DeviceWeight wk, DeviceWeight wv, FloatArray x, FloatArray q, FloatArray k, FloatArray v, IntArray meta) {
            g.task(task, FusedGemmKernels::qkvF16Bits, ctx, w, partner(wk, F16Bits.class).w, partner(wv, F16Bits.class).w, pow2, x, q, k, v, meta, rows, wk.rows, cols);
        }

        @Override
        void swiglu(TaskGraph g, String task, KernelContext ctx, DeviceWeight up, FloatArray x, FloatArray h, IntArray meta) {
            g.task(task, FusedGemmKernels::swigluF16Bits, ctx, w, partner(up, F16Bits.class).w, pow2, x, h, meta, rows, cols);
        }

        @Override
        void embedding(TaskGraph g, String task, KernelContext ctx, IntArray meta, FloatArray x) {
            g.task(task, BatchKernels::embedF16Bits, ctx, w, pow2, meta, x, cols);
        }
    }

    static final class F16 extends DeviceWeight {
        final HalfFloatArray w;

        F16(HalfFloatArray w, int rows, int cols) {
            super(rows, cols);
            this.w = w;
        }

        @Override
        Object[] arrays() {
            return new Object[] {w};
        }

        @Override
        void product(TaskGraph g, String task, KernelContext ctx, FloatArray x, FloatArray y, IntArray meta, int count, boolean residual) {
            g.task(task, GemmKernels::gemmF16, ctx, w, x, y, meta, count, rows, cols, flag(residual));
        }

        @Override
        void qkv(TaskGraph g, String task, KernelContext ctx, DeviceWeight wk, DeviceWeight wv, FloatArray x, FloatArray q, FloatArray k, FloatArray v, IntArray meta) {
            g.task(task, FusedGemmKernels::qkvF16, ctx, w, partner(wk, F16.class).w, partner(wv, F16.class).w, x, q, k, v, meta, rows, wk.rows, cols);
        }

        @Override
        void swiglu(TaskGraph g, String task, KernelContext ctx, DeviceWeight up, FloatArray x, FloatArray h, IntArray meta) {
            g.task(task, FusedGemmKernels::swigluF16, ctx, w, partner(up, F16.class).w, x, h, meta, rows, cols);
        }

        @Override
        void embedding(TaskGraph g, String task, KernelContext ctx, IntArray meta, FloatArray x) {
            g.task(task, BatchKernels::embedF16, ctx, w, meta, x, cols);
        }
    }

    static final class Q8 extends DeviceWeight {
        final IntArray q;
        final FloatArray s;

        Q8(DeviceLayouts.Quantized p, int rows, int cols) {
            super(rows, cols);
            this.q = p.quants();
            this.s = p.scales();
        }

        @Override
        Object[] arrays() {
            return new Object[] {q, s};
        }

        @Override
        boolean quantized() {
            return true;
        }

        @Override
        void product(TaskGraph g, String task, KernelContext ctx, FloatArray x, FloatArray y, IntArray meta, int count, boolean residual) {
            g.task(task, GemmKernels::gemmQ8, ctx, q, s, x, y, meta, count, rows, cols, flag(residual));
        }

        @Override
        void qkv(TaskGraph g, String task, KernelContext ctx, DeviceWeight wk, DeviceWeight wv, FloatArray x, FloatArray qo, FloatArray ko, FloatArray vo, IntArray meta) {
            Q8 k = partner(wk, Q8.class), v = partner(wv, Q8.class);
            g.task(task, FusedGemmKernels::qkvQ8, ctx, q, s, k.q, k.s, v.q, v.s, x, qo, ko, vo, meta, rows, k.rows, cols);
        }

        @Override
        void swiglu(TaskGraph g, String task, KernelContext ctx, DeviceWeight up, FloatArray x, FloatArray h, IntArray meta) {
            Q8 u = partner(up, Q8.class);
            g.task(task, FusedGemmKernels::swigluQ8, ctx, q, s, u.q, u.s, x, h, meta, rows, cols);
        }

        @Override
        void embedding(TaskGraph g, String task, KernelContext ctx, IntArray meta, FloatArray x) {
            g.task(task, BatchKernels::embedQ8, ctx, q, s, meta, x, cols);
        }
    }

    static final class Q4 extends DeviceWeight {
        final IntArray q;
        final FloatArray s;

        Q4(DeviceLayouts.Quantized p, int rows, int cols) {
            super(rows, cols);
            this.q = p.quants();
            this.s = p.scales();
        }

        @Override
        Object[] arrays() {
            return new Object[] {q, s};
        }

        @Override
        boolean quantized() {
            return true;
        }

        @Override
        void product(TaskGraph g, String task, KernelContext ctx, FloatArray x, FloatArray y, IntArray meta, int count, boolean residual) {
            g.task(task, GemmKernels::gemmQ4, ctx, q, s, x, y, meta, count, rows, cols, flag(residual));
        }

        @Override
        void qkv(TaskGraph g, String task, KernelContext ctx, DeviceWeight wk, DeviceWeight wv, FloatArray x, FloatArray qo, FloatArray ko, FloatArray vo, IntArray meta) {
            Q4 k = partner(wk, Q4.class), v = partner(wv, Q4.class);
            g.task(task, FusedGemmKernels::qkvQ4, ctx, q, s, k.q, k.s, v.q, v.s, x, qo, ko, vo, meta, rows, k.rows, cols);
        }

        @Override
        void swiglu(TaskGraph g, String task, KernelContext ctx, DeviceWeight up, FloatArray x, FloatArray h, IntArray meta) {
            Q4 u = partner(up, Q4.class);
            g.task(task, FusedGemmKernels::swigluQ4, ctx, q, s, u.q, u.s, x, h, meta, rows, cols);
        }

        @Override
        void embedding(TaskGraph g, String task, KernelContext ctx, IntArray meta, FloatArray x) {
            g.task(task, BatchKernels::embedQ4, ctx, q, s, meta, x, cols);
        }
    }
}
