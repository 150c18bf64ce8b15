package internlm.engine.tornado;

import internlm.kernels.GemmKernels;
import internlm.kernels.KernelSupport;
import uk.ac.manchester.tornado.api.common.TornadoDevice;

import java.lang.reflect.Method;
import java.util.Locale;

/**
 * Launch shapes and kernel choices for a device, from what TornadoVM reports about it — backend, device type, largest
 * work-group, compute units, local memory, OpenCL extensions — never from its name; each can be overridden by a
 * system property ({@code internlm.tornado.local}, {@code .lanes}, {@code .attentionLocal}, {@code .attentionSplits},
 * {@code .attentionSplitPositions}, {@code .fuseNorm}, {@code .nativeHalf}, {@code .tiles}).
 *
 * <ul>
 *   <li>{@code local}, work-items per group of the products and norms: 128 on GPUs, 64 on CPU devices (PoCL's
 *       vectoriser ran the one-row products fastest with 64 on most shapes), never above the device's largest
 *       work-group; a power of two between {@link GemmKernels#TILE_ROWS} and {@link KernelSupport#MAX_LOCAL}.</li>
 *   <li>{@code lanes}, work-items per output row of the lane products: 32 on GPUs (a row's loads are then 128-byte
 *       runs of one warp, and a group of 128 computes 4 rows, so the RMSNorm statistics and the tree reduction are
 *       shared by 4 rows), the whole group on CPU devices (one row per group).</li>
 *   <li>{@code attLocal}, work-items per attention head: the head dimension rounded up to a power of two, at least 32.</li>
 *   <li>{@code splits}, chunks of the context the attention is split into (flash-decoding, then a merge): on GPUs
 *       enough for two work-groups per compute unit with one decoding row (heads · splits ≥ 2 · compute units), at
 *       most one per {@value #SPLIT_MIN_POSITIONS} positions of the context; 1 (one pass, no merge) on CPU devices and
 *       for short contexts. Per pass only as many splits run as the longest row needs.</li>
 *   <li>{@code fuseNorm}: the lane products read the residual stream through RMSNorm themselves (no norm pass in
 *       decode) on GPUs; on CPU devices a separate pass is cheaper (each group would recompute the statistics on a
 *       compute-bound device).</li>
 *   <li>{@code nativeHalf}: F16 weights as half loads where the device has fp16 — PTX always, OpenCL with
 *       {@code cl_khr_fp16} in its extensions; else raw bits decoded with integer operations (PoCL has no fp16).</li>
 *   <li>{@code itemTiles}, the variant of the tiled products (batches of more than
 *       {@link GemmKernels#LANE_BATCH} rows, see {@link GemmKernels}): work-group tiles in local memory on GPUs, item
 *       tiles (a CPU micro-kernel per work-item, which PoCL vectorises) on CPU devices;
 *       {@code internlm.tornado.tiles=items|groups} overrides.</li>
 * </ul>
 */
final class DeviceTuning {
    private DeviceTuning() {}

    /** What TornadoVM reports about a device (the inputs of the choice). */
    record Facts(String backend, boolean gpu, int maxWorkGroup, int computeUnits, long localMemory, String extensions) {
        boolean fp16() {
            return backend.equalsIgnoreCase("PTX") || extensions.contains("cl_khr_fp16");
        }

        String describe() {
            return String.format(Locale.ROOT, "%s %s, %d compute units, work-groups up to %d, %d KiB local memory, fp16 %s", backend, gpu ? "GPU" : "non-GPU",
                    computeUnits, maxWorkGroup, localMemory >> 10, fp16() ? "yes" : "no");
        }
    }

    static Facts facts(TornadoDevice d) {
        String backend = String.valueOf(d.getTornadoVMBackend());
        boolean gpu = String.valueOf(d.getDeviceType()).toUpperCase(Locale.ROOT).contains("GPU") || backend.equalsIgnoreCase("PTX");
        int maxWg = KernelSupport.MAX_LOCAL, units = 0;
        long localMem = 0;
        String ext = "";
        try {
            long[] dims = d.getDeviceMaxWorkgroupDimensions();
            if (dims != null && dims.length > 0 && dims[0] > 0) {
                maxWg = (int) Math.min(Integer.MAX_VALUE, dims[0]);
            }
        } catch (RuntimeException | LinkageError e) {
            // keep the default
        }
        try {
            var phys = d.getPhysicalDevice();
            units = phys.getDeviceMaxComputeUnits();
            long[] wg = phys.getDeviceMaxWorkGroupSize();
            if (wg != null && wg.length > 0 && wg[0] > 0) {
                maxWg = (int) Math.min(maxWg, wg[0]);
            }
            localMem = phys.getDeviceLocalMemorySize();
            ext = extensions(phys);
        } catch (RuntimeException | LinkageError e) {
            // a backend that does not report these keeps the defaults
        }
        return new Facts(backend, gpu, maxWg, units, localMem, ext);
    }

    /** The device's OpenCL extensions: getDeviceExtensions() where the runtime has it, else the "Extensions:" part of its description. */
    private static String extensions(Object phys) {
        try {
            Method m = phys.getClass().getMethod("getDeviceExtensions");
            m.setAccessible(true);
            Object v = m.invoke(phys);
            if (v != null) {
                return v.toString();
            }
        } catch (ReflectiveOperationException | RuntimeException e) {
            // not an OpenCL device, or a runtime without it
        }
        try {
            String info = ((uk.ac.manchester.tornado.api.TornadoTargetDevice) phys).getDeviceInfo();
            int i = info == null ? -1 : info.indexOf("Extensions:");
            return i < 0 ? "" : info.substring(i);
        } catch (RuntimeException | LinkageError e) {
            return "";
        }
    }

    /** Fewest cached positions per split of the flash-decoding attention: shorter contexts run in fewer splits. */
    static final int SPLIT_MIN_POSITIONS = 128;

    static GraphBuilder.Tuning choose(Facts f, int headDim, int heads, int capacity, boolean fixedGrids) {
        int cap = Math.min(KernelSupport.MAX_LOCAL, Integer.highestOneBit(Math.max(1, f.maxWorkGroup())));
        int local = Integer.getInteger("internlm.tornado.local", Math.min(cap, f.gpu() ? 128 : 64));
        if (Integer.bitCount(local) != 1 || local > KernelSupport.MAX_LOCAL || local < GemmKernels.TILE_ROWS) {
            throw new IllegalArgumentException("internlm.tornado.local must be a power of two between " + GemmKernels.TILE_ROWS + " and " + KernelSupport.MAX_LOCAL);
        }
        int lanes = Integer.getInteger("internlm.tornado.lanes", f.gpu() ? Math.min(32, local) : local);
        if (Integer.bitCount(lanes) != 1 || lanes > local) {
            throw new IllegalArgumentException("internlm.tornado.lanes must be a power of two no larger than the work-group size " + local);
        }
        int att = Integer.getInteger("internlm.tornado.attentionLocal", Math.max(32, GraphBuilder.pow2AtLeast(headDim)));
        if (Integer.bitCount(att) != 1 || att > KernelSupport.MAX_LOCAL || att < headDim) {
            throw new IllegalArgumentException("internlm.tornado.attentionLocal must be a power of two between the head dimension " + headDim + " and "
                    + KernelSupport.MAX_LOCAL);
        }
        // flash-decoding: enough (row, head, chunk) work-groups for two per compute unit when one row decodes; none on
        // CPU devices or for contexts that hold fewer than two chunks
        int splitsDefault = 1;
        if (f.gpu() && capacity >= 2 * SPLIT_MIN_POSITIONS) {
            int want = GraphBuilder.pow2AtLeast((2 * Math.max(1, f.computeUnits()) + heads - 1) / heads);
            splitsDefault = Math.max(1, Math.min(Math.min(MAX_SPLITS, want), GraphBuilder.pow2AtLeast(capacity / SPLIT_MIN_POSITIONS)));
        }
        int splits = Integer.getInteger("internlm.tornado.attentionSplits", splitsDefault);
        if (splits < 1 || splits > MAX_SPLITS) {
            throw new IllegalArgumentException("internlm.tornado.attentionSplits must be between 1 and " + MAX_SPLITS);
        }
        int splitPositions = Integer.getInteger("internlm.tornado.attentionSplitPositions", SPLIT_MIN_POSITIONS);
        if (splitPositions < 1) {
            throw new IllegalArgumentException("internlm.tornado.attentionSplitPositions must be at least 1");
        }
        boolean fuseNorm = flag("internlm.tornado.fuseNorm", f.gpu());
        boolean nativeHalf = flag("internlm.tornado.nativeHalf", f.fp16());
        String tiles = System.getProperty("internlm.tornado.tiles", f.gpu() ? "groups" : "items");
        if (!tiles.equals("items") && !tiles.equals("groups")) {
            throw new IllegalArgumentException("internlm.tornado.tiles must be items or groups, got '" + tiles + "'");
        }
        return new GraphBuilder.Tuning(local, lanes, att, splits, splitPositions, fuseNorm, nativeHalf, fixedGrids, tiles.equals("items"));
    }

    /** Most context splits of the flash-decoding attention. */
    static final int MAX_SPLITS = 64;

    private static boolean flag(String key, boolean dflt) {
        String v = System.getProperty(key);
        return v == null ? dflt : Boolean.parseBoolean(v);
    }
}
