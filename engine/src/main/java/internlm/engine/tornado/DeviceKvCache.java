package internlm.engine.tornado;

import internlm.kernels.AttentionKernels;
import internlm.kernels.BatchKernels;
import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.TaskGraph;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;
import uk.ac.manchester.tornado.api.types.arrays.ShortArray;

/**
 * One layer's keys and values for every sequence slot: [slots × capacity × kvDim] each, slot s starting at position
 * s·capacity. Each precision adds its own RoPE/KV-write and attention tasks.
 */
sealed interface DeviceKvCache {

    static DeviceKvCache create(boolean f16, int elements, FloatArray pow2) {
        return f16 ? new F16(new ShortArray(elements), new ShortArray(elements), pow2) : new F32(new FloatArray(elements), new FloatArray(elements));
    }

    /** Bytes per cached element. */
    static int elementBytes(boolean f16) {
        return f16 ? 2 : 4;
    }

    Object[] arrays();

    void ropeKv(TaskGraph g, String task, KernelContext ctx, FloatArray q, FloatArray k, FloatArray v, FloatArray rope, IntArray meta, int qDim, int kvDim, int headDim);

    /** Attention of every row over its slot; {@code round}: the output rounded to the Q8_0 grid (head dimension a multiple of 32). */
    void attention(TaskGraph g, String task, KernelContext ctx, FloatArray q, FloatArray out, IntArray meta, int heads, int kvHeads, int headDim, boolean round);

    /** The first phase of the attention split over the context into {@code splits} chunks (partial results into part). */
    void attentionPartial(TaskGraph g, String task, KernelContext ctx, FloatArray q, FloatArray part, IntArray meta, int heads, int kvHeads, int headDim, int splits);

    record F32(FloatArray keys, FloatArray values) implements DeviceKvCache {
        @Override
        public Object[] arrays() {
            return new Object[] {keys, values};
        }

        @Override
        public void ropeKv(TaskGraph g, String task, KernelContext ctx, FloatArray q, FloatArray k, FloatArray v, FloatArray rope, IntArray meta, int qDim, int kvDim, int headDim) {
            g.task(task, BatchKernels::ropeKv, ctx, q, k, v, keys, values, rope, meta, qDim, kvDim, headDim);
        }

        @Override
        public void attention(TaskGraph g, String task, KernelContext ctx, FloatArray q, FloatArray out, IntArray meta, int heads, int kvHeads, int headDim, boolean round) {
            g.task(task, AttentionKernels::attention, ctx, q, keys, values, out, meta, heads, kvHeads, headDim, round ? 1 : 0);
        }

        @Override
        public void attentionPartial(TaskGraph g, String task, KernelContext ctx, FloatArray q, FloatArray part, IntArray meta, int heads, int kvHeads, int headDim, int splits) {
            g.task(task, AttentionKernels::attentionPartial, ctx, q, keys, values, part, meta, heads, kvHeads, headDim, splits);
        }
    }

    record F16(ShortArray keys, ShortArray values, FloatArray pow2) implements DeviceKvCache {
        @Override
        public Object[] arrays() {
            return new Object[] {keys, values, pow2};
        }

        @Override
        public void ropeKv(TaskGraph g, String task, KernelContext ctx, FloatArray q, FloatArray k, FloatArray v, FloatArray rope, IntArray meta, int qDim, int kvDim, int headDim) {
            g.task(task, BatchKernels::ropeKvF16, ctx, q, k, v, keys, values, rope, meta, qDim, kvDim, headDim);
        }

        @Override
        public void attention(TaskGraph g, String task, KernelContext ctx, FloatArray q, FloatArray out, IntArray meta, int heads, int kvHeads, int headDim, boolean round) {
            g.task(task, AttentionKernels::attentionF16, ctx, q, keys, values, pow2, out, meta, heads, kvHeads, headDim, round ? 1 : 0);
        }

        @Override
        public void attentionPartial(TaskGraph g, String task, KernelContext ctx, FloatArray q, FloatArray part, IntArray meta, int heads, int kvHeads, int headDim, int splits) {
            g.task(task, AttentionKernels::attentionPartialF16, ctx, q, keys, values, pow2, part, meta, heads, kvHeads, headDim, splits);
        }
    }
}
