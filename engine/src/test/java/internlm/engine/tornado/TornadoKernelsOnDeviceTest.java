package internlm.engine.tornado;

import internlm.kernels.BatchKernels;
import internlm.kernels.BatchLayout;
import internlm.kernels.DeviceLayouts;
import internlm.kernels.GemmKernels;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import uk.ac.manchester.tornado.api.GridScheduler;
import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.TaskGraph;
import uk.ac.manchester.tornado.api.TornadoExecutionPlan;
import uk.ac.manchester.tornado.api.WorkerGrid1D;
import uk.ac.manchester.tornado.api.enums.DataTransferMode;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** The batched kernels compiled by TornadoVM and run on its default device, against plain Java sums. */
class TornadoKernelsOnDeviceTest {
    /** Per test, so that without TornadoVM every test is reported as skipped (an assumption in @BeforeAll reports none). */
    @BeforeEach
    void needsTornado() {
        assumeTrue(TornadoSupport.available(), "TornadoVM is not available in this JVM");
    }

    @Test
    void batchedF32ProductAndNormOnTheDevice() throws Exception {
        int rows = 37, cols = 130, n = 5, local = 64;
        SplittableRandom r = new SplittableRandom(1);
        float[] w = new float[rows * cols], x = new float[n * cols], nw = new float[cols + 1];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) r.nextDouble(-1, 1);
        }
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) r.nextDouble(-1, 1);
        }
        for (int i = 0; i < cols; i++) {
            nw[i] = (float) r.nextDouble(0.5, 1.5);
        }
        nw[cols] = 1e-5f; // the norm's eps follows its weight
        IntArray meta = new IntArray(BatchLayout.SIZE);
        meta.set(BatchLayout.ROWS, n);
        meta.set(BatchLayout.LANES, 16); // 4 output rows per work-group of 64
        FloatArray wa = DeviceLayouts.floats(w), xa = DeviceLayouts.floats(x), y = new FloatArray(n * rows), nwa = DeviceLayouts.floats(nw), xn = new FloatArray(n * cols), xr = new FloatArray(n * cols);
        KernelContext ctx = new KernelContext();
        TaskGraph g = new TaskGraph("t").transferToDevice(DataTransferMode.EVERY_EXECUTION, meta, xa)
                .transferToDevice(DataTransferMode.FIRST_EXECUTION, wa, y, nwa, xn, xr)
                .task("gemm", GemmKernels::gemmF32, ctx, wa, xa, y, nwa, meta, BatchLayout.ROWS, rows, cols, 0, -1)
                .task("norm", BatchKernels::rmsNorm, ctx, xa, nwa, xn, xr, meta, BatchLayout.ROWS, cols, 0, 0)
                .transferToHost(DataTransferMode.EVERY_EXECUTION, y, xn);
        GridScheduler grid = new GridScheduler();
        WorkerGrid1D gw = new WorkerGrid1D(GemmKernels.laneGroups(rows, 16, local) * local);
        gw.setLocalWork(local, 1, 1);
        grid.addWorkerGrid("t.gemm", gw);
        WorkerGrid1D nwg = new WorkerGrid1D(8 * 256);
        nwg.setLocalWork(256, 1, 1);
        grid.addWorkerGrid("t.norm", nwg);
        try (TornadoExecutionPlan plan = new TornadoExecutionPlan(g.snapshot())) {
            plan.withGridScheduler(grid).execute();
            for (int b = 0; b < n; b++) {
                double ss = 0;
                for (int k = 0; k < cols; k++) {
                    ss += (double) x[b * cols + k] * x[b * cols + k];
                }
                double scale = 1 / Math.sqrt(ss / cols + 1e-5);
                for (int k = 0; k < cols; k++) {
                    assertEquals(x[b * cols + k] * scale * nw[k], xn.get(b * cols + k), 1e-4, "norm row " + b + " col " + k);
                }
                for (int o = 0; o < rows; o++) {
                    double s = 0;
                    for (int k = 0; k < cols; k++) {
                        s += (double) w[o * cols + k] * x[b * cols + k];
                    }
                    assertEquals(s, y.get(b * rows + o), 1e-4 * Math.max(1, Math.abs(s)), "product row " + b + " output " + o);
                }
            }
        }
    }
}
