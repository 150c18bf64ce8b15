package internlm.kernels;

import uk.ac.manchester.tornado.api.KernelContext;

/**
 * Pieces shared by the kernels (inlined by TornadoVM's compiler): the work-group tree reduction and the limits on
 * local-memory sizes, which must be compile-time constants.
 */
public final class KernelSupport {
    private KernelSupport() {}

    /** Largest work-group size the kernels support (local reduction arrays are this long). Must be a power of two. */
    public static final int MAX_LOCAL = 256;
    /** Largest head dimension the attention kernels support. */
    public static final int MAX_HEAD_DIM = 256;
    /** Key/value positions per attention tile held in local memory. */
    public static final int ATTENTION_TILE = 16;

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
