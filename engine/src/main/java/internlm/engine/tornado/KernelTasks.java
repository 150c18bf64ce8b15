package internlm.engine.tornado;

import internlm.kernels.MatVecKernels;
import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.TaskGraph;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;

/**
 * The one place that picks the mat-vec, fused-QKV and SwiGLU kernel for a matrix's device layout (used by the kernel
 * benchmark; the backend's graph builder has the same choice inline).
 */
final class KernelTasks {
    private KernelTasks() {}

    static void matvec(TaskGraph g, String task, KernelContext ctx, DeviceMatrix w, FloatArray pow2, FloatArray in, FloatArray out) {
        int r = w.rows(), c = w.cols();
        switch (w.kind()) {
            case F32 -> g.task(task, MatVecKernels::matvecF32, ctx, w.floats(), in, out, r, c);
            case F16 -> g.task(task, MatVecKernels::matvecF16, ctx, w.halves(), in, out, r, c);
            case F16_BITS -> g.task(task, MatVecKernels::matvecF16Bits, ctx, w.bits(), pow2, in, out, r, c);
            case Q8 -> g.task(task, MatVecKernels::matvecQ8, ctx, w.quants(), w.scales(), in, out, r, c);
            case Q4 -> g.task(task, MatVecKernels::matvecQ4, ctx, w.quants(), w.scales(), in, out, r, c);
        }
    }

    static void qkv(TaskGraph g, String task, KernelContext ctx, DeviceMatrix wq, DeviceMatrix wk, DeviceMatrix wv, FloatArray pow2,
                    FloatArray in, FloatArray q, FloatArray k, FloatArray v) {
        int qd = wq.rows(), kvd = wk.rows(), dim = wq.cols();
        switch (wq.kind()) {
            case F32 -> g.task(task, MatVecKernels::qkvF32, ctx, wq.floats(), wk.floats(), wv.floats(), in, q, k, v, qd, kvd, dim);
            case F16 -> g.task(task, MatVecKernels::qkvF16, ctx, wq.halves(), wk.halves(), wv.halves(), in, q, k, v, qd, kvd, dim);
            case F16_BITS -> g.task(task, MatVecKernels::qkvF16Bits, ctx, wq.bits(), wk.bits(), wv.bits(), pow2, in, q, k, v, qd, kvd, dim);
            case Q8 -> g.task(task, MatVecKernels::qkvQ8, ctx, wq.quants(), wq.scales(), wk.quants(), wk.scales(), wv.quants(), wv.scales(), in, q, k, v, qd, kvd, dim);
            case Q4 -> g.task(task, MatVecKernels::qkvQ4, ctx, wq.quants(), wq.scales(), wk.quants(), wk.scales(), wv.quants(), wv.scales(), in, q, k, v, qd, kvd, dim);
        }
    }

    static void swiglu(TaskGraph g, String task, KernelContext ctx, DeviceMatrix gate, DeviceMatrix up, FloatArray pow2, FloatArray in, FloatArray h) {
        int r = gate.rows(), c = gate.cols();
        switch (gate.kind()) {
            case F32 -> g.task(task, MatVecKernels::swigluF32, ctx, gate.floats(), up.floats(), in, h, r, c);
            case F16 -> g.task(task, MatVecKernels::swigluF16, ctx, gate.halves(), up.halves(), in, h, r, c);
            case F16_BITS -> g.task(task, MatVecKernels::swigluF16Bits, ctx, gate.bits(), up.bits(), pow2, in, h, r, c);
            case Q8 -> g.task(task, MatVecKernels::swigluQ8, ctx, gate.quants(), gate.scales(), up.quants(), up.scales(), in, h, r, c);
            case Q4 -> g.task(task, MatVecKernels::swigluQ4, ctx, gate.quants(), gate.scales(), up.quants(), up.scales(), in, h, r, c);
        }
    }
}
