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

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * A weight matrix [rows × cols] in the device layout its kernels read, as one type per weight kind; each kind adds its
 * own tasks to a graph: the batched product (plain or residual, with a bias), fused Q/K/V and SwiGLU over matrices
 * stacked row-wise at load ([Wq; Wk; Wv], [Wgate; Wup]: one array per layout, so that a fused kernel stays within
 * TornadoVM's argument limit), and the embedding lookup. F32 (BF16 is widened to it exactly), F16 as raw half bits decoded in the kernel
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

    /**
     * Matrices of one type and width stacked row-wise into one device matrix (the parts' bytes are concatenated, which
     * for every ggml type is the stacked matrix in that type).
     */
    static DeviceWeight stacked(List<TensorData> parts, boolean nativeHalf, FloatArray pow2) {
        TensorData first = parts.getFirst();
        long rows = 0, bytes = 0;
        StringBuilder name = new StringBuilder();
        for (TensorData t : parts) {
            if (t.type() != first.type() || t.rowLength() != first.rowLength()) {
                throw new IllegalArgumentException("a fused TornadoVM product needs matrices of one type and width: " + first.name() + " is " + first.type()
                        + " [" + first.rows() + " × " + first.rowLength() + "], " + t.name() + " is " + t.type() + " [" + t.rows() + " × " + t.rowLength() + "]");
            }
            rows += t.rows();
            bytes += t.data().byteSize();
            name.append(name.isEmpty() ? "" : "+").append(t.name());
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment all = arena.allocate(bytes, 16);
            long at = 0;
            for (TensorData t : parts) {
                MemorySegment.copy(t.data(), 0, all, at, t.data().byteSize());
                at += t.data().byteSize();
            }
            return of(new TensorData(name.toString(), first.type(), new long[] {first.rowLength(), rows}, all), nativeHalf, pow2);
        }
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

    /** y = x·Wᵀ + bias (or y += with {@code residual}) for meta[count] rows; the bias at vec[biasOff…] (biasOff &lt; 0: none). */
    abstract void product(TaskGraph g, String task, KernelContext ctx, FloatArray x, FloatArray y, FloatArray vec, IntArray meta, int count, boolean residual,
                          int biasOff);

    /**
     * Q, K, V = x·[Wq; Wk; Wv]ᵀ (+ bias at vec[biasOff…]) in one launch; this is the stacked matrix. With normOff ≥ 0 the
     * lane path reads the residual stream x through RMSNorm (weight and eps at vec[normOff…]); the tiled path, and the
     * lane path with normOff &lt; 0, read xn.
     */
    abstract void qkv(TaskGraph g, String task, KernelContext ctx, FloatArray x, FloatArray xn, FloatArray vec, FloatArray q, FloatArray k, FloatArray v,
                      IntArray meta, int qRows, int kvRows, int normOff, int biasOff);

    /** h = silu(x·Wgᵀ) ⊙ (x·Wuᵀ) in one launch; this is the stacked [Wg; Wu]; x, xn and normOff as for {@link #qkv}. */
    abstract void swiglu(TaskGraph g, String task, KernelContext ctx, FloatArray x, FloatArray xn, FloatArray vec, FloatArray h, IntArray meta, int normOff);

    /** x[b] = row token_b of this table, for every row of the batch. */
    abstract void embedding(TaskGraph g, String task, KernelContext ctx, IntArray meta, FloatArray x);

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
        void product(TaskGraph g, String task, KernelContext ctx, FloatArray x, FloatArray y, FloatArray vec, IntArray meta, int count, boolean residual, int biasOff) {
            g.task(task, GemmKernels::gemmF32, ctx, w, x, y, vec, meta, count, rows, cols, flag(residual), biasOff);
        }

        @Override
        void qkv(TaskGraph g, String task, KernelContext ctx, FloatArray x, FloatArray xn, FloatArray vec, FloatArray qo, FloatArray ko, FloatArray vo,
                 IntArray meta, int qRows, int kvRows, int normOff, int biasOff) {
            g.task(task, FusedGemmKernels::qkvF32, ctx, w, x, xn, vec, qo, ko, vo, meta, qRows, kvRows, cols, normOff, biasOff);
        }

        @Override
        void swiglu(TaskGraph g, String task, KernelContext ctx, FloatArray x, FloatArray xn, FloatArray vec, FloatArray h, IntArray meta, int normOff) {
            g.task(task, FusedGemmKernels::swigluF32, ctx, w, x, xn, vec, h, meta, rows / 2, cols, normOff);
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
        void product(TaskGraph g, String task, KernelContext ctx, FloatArray x, FloatArray y, FloatArray vec, IntArray meta, int count, boolean residual, int biasOff) {
            g.task(task, GemmKernels::gemmF16Bits, ctx, w, pow2, x, y, vec, meta, count, rows, cols, flag(residual), biasOff);
        }

        @Override
        void qkv(TaskGraph g, String task, KernelContext ctx, FloatArray x, FloatArray xn, FloatArray vec, FloatArray qo, FloatArray ko, FloatArray vo,
                 IntArray meta, int qRows, int kvRows, int normOff, int biasOff) {
            g.task(task, FusedGemmKernels::qkvF16Bits, ctx, w, pow2, x, xn, vec, qo, ko, vo, meta, qRows, kvRows, cols, normOff, biasOff);
        }

        @Override
        void swiglu(TaskGraph g, String task, KernelContext ctx, FloatArray x, FloatArray xn, FloatArray vec, FloatArray h, IntArray meta, int normOff) {
            g.task(task, FusedGemmKernels::swigluF16Bits, ctx, w, pow2, x, xn, vec, h, meta, rows / 2, cols, normOff);
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
        void product(TaskGraph g, String task, KernelContext ctx, FloatArray x, FloatArray y, FloatArray vec, IntArray meta, int count, boolean residual, int biasOff) {
            g.task(task, GemmKernels::gemmF16, ctx, w, x, y, vec, meta, count, rows, cols, flag(residual), biasOff);
        }

        @Override
        void qkv(TaskGraph g, String task, KernelContext ctx, FloatArray x, FloatArray xn, FloatArray vec, FloatArray qo, FloatArray ko, FloatArray vo,
                 IntArray meta, int qRows, int kvRows, int normOff, int biasOff) {
            g.task(task, FusedGemmKernels::qkvF16, ctx, w, x, xn, vec, qo, ko, vo, meta, qRows, kvRows, cols, normOff, biasOff);
        }

        @Override
        void swiglu(TaskGraph g, String task, KernelContext ctx, FloatArray x, FloatArray xn, FloatArray vec, FloatArray h, IntArray meta, int normOff) {
            g.task(task, FusedGemmKernels::swigluF16, ctx, w, x, xn, vec, h, meta, rows / 2, cols, normOff);
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
        void product(TaskGraph g, String task, KernelContext ctx, FloatArray x, FloatArray y, FloatArray vec, IntArray meta, int count, boolean residual, int biasOff) {
            g.task(task, GemmKernels::gemmQ8, ctx, q, s, x, y, vec, meta, count, rows, cols, flag(residual), biasOff);
        }

        @Override
        void qkv(TaskGraph g, String task, KernelContext ctx, FloatArray x, FloatArray xn, FloatArray vec, FloatArray qo, FloatArray ko, FloatArray vo,
                 IntArray meta, int qRows, int kvRows, int normOff, int biasOff) {
            g.task(task, FusedGemmKernels::qkvQ8, ctx, q, s, x, xn, vec, qo, ko, vo, meta, qRows, kvRows, cols, normOff, biasOff);
        }

        @Override
        void swiglu(TaskGraph g, String task, KernelContext ctx, FloatArray x, FloatArray xn, FloatArray vec, FloatArray h, IntArray meta, int normOff) {
            g.task(task, FusedGemmKernels::swigluQ8, ctx, q, s, x, xn, vec, h, meta, rows / 2, cols, normOff);
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
        void product(TaskGraph g, String task, KernelContext ctx, FloatArray x, FloatArray y, FloatArray vec, IntArray meta, int count, boolean residual, int biasOff) {
            g.task(task, GemmKernels::gemmQ4, ctx, q, s, x, y, vec, meta, count, rows, cols, flag(residual), biasOff);
        }

        @Override
        void qkv(TaskGraph g, String task, KernelContext ctx, FloatArray x, FloatArray xn, FloatArray vec, FloatArray qo, FloatArray ko, FloatArray vo,
                 IntArray meta, int qRows, int kvRows, int normOff, int biasOff) {
            g.task(task, FusedGemmKernels::qkvQ4, ctx, q, s, x, xn, vec, qo, ko, vo, meta, qRows, kvRows, cols, normOff, biasOff);
        }

        @Override
        void swiglu(TaskGraph g, String task, KernelContext ctx, FloatArray x, FloatArray xn, FloatArray vec, FloatArray h, IntArray meta, int normOff) {
            g.task(task, FusedGemmKernels::swigluQ4, ctx, q, s, x, xn, vec, h, meta, rows / 2, cols, normOff);
        }

        @Override
        void embedding(TaskGraph g, String task, KernelContext ctx, IntArray meta, FloatArray x) {
            g.task(task, BatchKernels::embedQ4, ctx, q, s, meta, x, cols);
        }
    }
}
