package internlm.kernels;

import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.math.TornadoMath;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;

/** Kernels that measure the device rather than compute the model. */
public final class ProbeKernels {
    private ProbeKernels() {}

    /**
     * Streaming read for the bandwidth probe: work-item i sums a[i], a[i + G], a[i + 2G], … (G = global size, so
     * neighbouring work-items read neighbouring words: coalesced), then each work-group reduces its sums in local
     * memory and writes one partial sum. The partials are checked by the caller, so the reads cannot be optimised away.
     */
    public static void probeStreamRead(KernelContext ctx, FloatArray a, FloatArray partial, int n) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.MAX_LOCAL);
        float s = 0f;
        for (int i = ctx.globalIdx; i < n; i += ctx.globalGroupSizeX) {
            s += a.get(i);
        }
        float t = KernelSupport.reduceSum(ctx, red, s);
        if (ctx.localIdx == 0) {
            partial.set(ctx.groupIdx, t);
        }
    }

    /**
     * The same sum with each work-item reading one contiguous chunk (the layout CPU OpenCL devices stream fastest,
     * where neighbouring work-items run on one core one after another).
     */
    public static void probeBlockedRead(KernelContext ctx, FloatArray a, FloatArray partial, int n) {
        float[] red = ctx.allocateFloatLocalArray(KernelSupport.MAX_LOCAL);
        int items = ctx.globalGroupSizeX;
        int chunk = (n + items - 1) / items;
        int from = ctx.globalIdx * chunk;
        int to = TornadoMath.min(n, from + chunk);
        float s = 0f;
        for (int i = from; i < to; i++) {
            s += a.get(i);
        }
        float t = KernelSupport.reduceSum(ctx, red, s);
        if (ctx.localIdx == 0) {
            partial.set(ctx.groupIdx, t);
        }
    }
}
