package internlm.engine.tornado;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** Launch shapes from what TornadoVM reports about a device (no TornadoVM needed: the facts are given). */
class DeviceTuningTest {
    static final DeviceTuning.Facts H100_PTX = new DeviceTuning.Facts("PTX", true, 1024, 132, 48 << 10, "");
    static final DeviceTuning.Facts H100_OPENCL = new DeviceTuning.Facts("OPENCL", true, 1024, 132, 48 << 10, "cl_khr_global_int32_base_atomics cl_khr_fp64 cl_khr_fp16");
    static final DeviceTuning.Facts OLD_GPU_NO_FP16 = new DeviceTuning.Facts("OPENCL", true, 256, 20, 32 << 10, "cl_khr_fp64");
    static final DeviceTuning.Facts POCL = new DeviceTuning.Facts("OPENCL", false, 4096, 2, 4 << 20, "cl_khr_fp64 cl_khr_int64_base_atomics");

    @Test
    void gpusGetSeveralRowsPerGroupFusedNormsAndSplitAttention() {
        // 1.8B: 16 heads; 2 · 132 compute units / 16 heads → 17 → 32 splits, capped by one per 128 positions of 4096
        GraphBuilder.Tuning t = DeviceTuning.choose(H100_PTX, 128, 16, 4096, true);
        assertEquals(new GraphBuilder.Tuning(128, 32, 128, 32, DeviceTuning.SPLIT_MIN_POSITIONS, true, true, true, false), t);
        // a short context: at most one split per 128 positions
        assertEquals(4, DeviceTuning.choose(H100_PTX, 128, 16, 512, false).splits());
        assertEquals(1, DeviceTuning.choose(H100_PTX, 128, 16, 255, false).splits());
        // 7B: 32 heads → 9 → 16 splits; native half from cl_khr_fp16 on OpenCL
        GraphBuilder.Tuning o = DeviceTuning.choose(H100_OPENCL, 128, 32, 32768, false);
        assertEquals(16, o.splits());
        assertTrue(o.nativeHalf() && o.fuseNorm());
        assertFalse(DeviceTuning.choose(OLD_GPU_NO_FP16, 128, 32, 4096, false).nativeHalf(), "no cl_khr_fp16: raw half bits");
    }

    @Test
    void cpuDevicesGetOneRowPerGroupANormPassAndOnePassAttention() {
        GraphBuilder.Tuning t = DeviceTuning.choose(POCL, 64, 8, 32768, false);
        assertEquals(new GraphBuilder.Tuning(64, 64, 64, 1, DeviceTuning.SPLIT_MIN_POSITIONS, false, false, false, true), t);
        assertTrue(POCL.describe().contains("non-GPU") && POCL.describe().contains("fp16 no"), POCL.describe());
    }

    @Test
    void propertiesOverrideAndBadValuesAreRefused() {
        String[] keys = {"internlm.tornado.local", "internlm.tornado.lanes", "internlm.tornado.attentionSplits", "internlm.tornado.fuseNorm",
                "internlm.tornado.nativeHalf", "internlm.tornado.attentionLocal", "internlm.tornado.tiles"};
        try {
            System.setProperty(keys[0], "256");
            System.setProperty(keys[1], "8");
            System.setProperty(keys[2], "3");
            System.setProperty(keys[3], "true");
            System.setProperty(keys[4], "true");
            GraphBuilder.Tuning t = DeviceTuning.choose(POCL, 64, 8, 1024, false);
            assertEquals(256, t.local());
            assertEquals(8, t.lanes());
            assertEquals(3, t.splits());
            assertTrue(t.fuseNorm() && t.nativeHalf());
            assertTrue(t.itemTiles(), "item tiles on a CPU device by default");
            System.setProperty(keys[6], "groups");
            assertFalse(DeviceTuning.choose(POCL, 64, 8, 1024, false).itemTiles());
            System.setProperty(keys[6], "items");
            assertTrue(DeviceTuning.choose(H100_PTX, 128, 16, 1024, false).itemTiles());
            System.setProperty(keys[6], "warps");
            IllegalArgumentException bad = assertThrows(IllegalArgumentException.class, () -> DeviceTuning.choose(POCL, 64, 8, 1024, false));
            assertTrue(bad.getMessage().contains("internlm.tornado.tiles"), bad.getMessage());
            System.clearProperty(keys[6]);
            System.setProperty(keys[1], "512");
            assertThrows(IllegalArgumentException.class, () -> DeviceTuning.choose(POCL, 64, 8, 1024, false), "more lanes than work-items");
            System.setProperty(keys[1], "8");
            System.setProperty(keys[0], "96");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> DeviceTuning.choose(POCL, 64, 8, 1024, false));
            assertTrue(e.getMessage().contains("internlm.tornado.local"), e.getMessage());
            System.clearProperty(keys[0]);
            System.setProperty(keys[5], "64");
            assertThrows(IllegalArgumentException.class, () -> DeviceTuning.choose(POCL, 128, 8, 1024, false), "attention groups smaller than a head");
            System.clearProperty(keys[5]);
            System.setProperty(keys[2], "0");
            assertThrows(IllegalArgumentException.class, () -> DeviceTuning.choose(POCL, 64, 8, 1024, false));
        } finally {
            for (String k : keys) {
                System.clearProperty(k);
            }
        }
    }

    @Test
    void cudaGraphsOnlyOnPtxAndOnlyWhenNotTurnedOff() {
        assertNull(CudaGraphs.wanted(H100_OPENCL), "TornadoVM refuses capture on OpenCL devices");
        // on PTX: the runtime's method when it has one (the 1.1.2-dev API classes used in tests do not)
        assertEquals(CudaGraphs.method(), CudaGraphs.wanted(H100_PTX));
        System.setProperty(CudaGraphs.PROPERTY, "false");
        try {
            assertNull(CudaGraphs.wanted(H100_PTX));
        } finally {
            System.clearProperty(CudaGraphs.PROPERTY);
        }
    }
}
