package internlm.kernels;

import internlm.kernels.KernelTestData.Matrix;
import internlm.kernels.KernelTestData.Type;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.HalfFloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;
import uk.ac.manchester.tornado.api.types.arrays.ShortArray;

import java.util.SplittableRandom;

import static internlm.kernels.KernelTestData.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * The batched products of every weight type against the scalar reference: the lane path (decode batches) with one or
 * several rows per work-group, biases, RMSNorm read on the fly (the same floats as a norm pass), the stacked Q/K/V and
 * gate/up matrices, and both tiled paths (work-group tiles and item tiles) with their batch invariance.
 */
class GemmKernelsTest {

    static IntArray meta(int rows, int mode) {
        return meta(rows, mode, 0);
    }

    static IntArray meta(int rows, int mode, int lanes) {
        return meta(rows, mode, lanes, BatchLayout.TILES_GROUPS);
    }

    static IntArray meta(int rows, int mode, int lanes, int tiles) {
        IntArray m = new IntArray(BatchLayout.SIZE);
        m.set(BatchLayout.ROWS, rows);
        m.set(BatchLayout.OUT_ROWS, rows);
        m.set(BatchLayout.MODE, mode);
        m.set(BatchLayout.LANES, lanes);
        m.set(BatchLayout.TILES, tiles);
        return m;
    }

    static final int[] TILE_VARIANTS = {BatchLayout.TILES_GROUPS, BatchLayout.TILES_ITEMS};

    /**
     * Groups for a product of {@code rows} output rows from {@code matrixRows} matrix rows: enough for the lane path
     * with meta's lanes and for both tiled paths.
     */
    static int groups(int rows, int matrixRows, IntArray meta, int local) {
        int lanes = meta.get(BatchLayout.LANES);
        return Math.max(GemmKernels.laneGroups(rows, lanes <= 0 ? local : lanes, local), Math.max(GemmKernels.tiles(rows), GemmKernels.itemGroups(matrixRows)));
    }

    static void gemm(Matrix m, FloatArray x, FloatArray y, FloatArray vec, IntArray meta, int local, boolean residual, int biasOff) {
        int res = residual ? 1 : 0, rows = m.rows(), cols = m.cols();
        WorkGroupEmulator.run(groups(rows, rows, meta, local) * local, local, ctx -> {
            switch (m.type()) {
                case F32 -> GemmKernels.gemmF32(ctx, (FloatArray) m.a(), x, y, vec, meta, BatchLayout.ROWS, rows, cols, res, biasOff);
                case F16 -> GemmKernels.gemmF16(ctx, (HalfFloatArray) m.a(), x, y, vec, meta, BatchLayout.ROWS, rows, cols, res, biasOff);
                case F16_BITS -> GemmKernels.gemmF16Bits(ctx, (ShortArray) m.a(), (FloatArray) m.b(), x, y, vec, meta, BatchLayout.ROWS, rows, cols, res, biasOff);
                case Q8_0 -> GemmKernels.gemmQ8(ctx, (IntArray) m.a(), (FloatArray) m.b(), x, y, vec, meta, BatchLayout.ROWS, rows, cols, res, biasOff);
                case Q4_0 -> GemmKernels.gemmQ4(ctx, (IntArray) m.a(), (FloatArray) m.b(), x, y, vec, meta, BatchLayout.ROWS, rows, cols, res, biasOff);
            }
        });
    }

    static void gemm(Matrix m, FloatArray x, FloatArray y, IntArray meta, int local, boolean residual) {
        gemm(m, x, y, new FloatArray(1), meta, local, residual, -1);
    }

    static float[] row(float[] x, int b, int width) {
        return java.util.Arrays.copyOfRange(x, b * width, (b + 1) * width);
    }

    static void close(float[] expected, float[] actual, int off, String what) {
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], actual[off + i], 1e-4 * Math.max(1, Math.abs(expected[i])), what + " [" + i + "]");
        }
    }

    @ParameterizedTest
    @CsvSource({"F32,37,75,3,64", "F32,70,130,40,64", "F16,13,96,5,128", "F16_BITS,37,75,2,64", "F16_BITS,9,130,33,64",
            "Q8_0,67,96,3,64", "Q8_0,11,160,35,128", "Q4_0,37,96,4,64", "Q4_0,7,224,17,64", "Q8_0,5,64,1,64",
            "Q8_0,21,288,13,64", "F16_BITS,9,300,9,64", "Q4_0,19,352,10,64", "F16,6,260,64,64"})
    void batchedProductsMatchTheReferenceRowByRowAndAreBatchInvariant(Type type, int rows, int cols, int n, int local) {
        SplittableRandom r = new SplittableRandom(rows * 1000L + cols + n);
        Matrix m = matrix(type, rows, cols, r);
        float[] x = randomFloats(r, n * cols, 1);
        float[] y0 = randomFloats(r, n * rows, 1);
        float[] bias = randomFloats(r, rows + 3, 1);
        for (int tiles : TILE_VARIANTS) {
            for (boolean residual : new boolean[] {false, true}) {
                FloatArray y = fa(y0);
                gemm(m, fa(x), y, fa(bias), meta(n, BatchLayout.MODE_INVARIANT, 0, tiles), local, residual, residual ? 3 : -1);
                float[] got = floats(y);
                for (int b = 0; b < n; b++) {
                    float[] expect = References.matvec(m.values(), row(x, b, cols), rows, cols);
                    if (residual) {
                        for (int i = 0; i < rows; i++) {
                            expect[i] += y0[b * rows + i] + bias[3 + i];
                        }
                    }
                    close(expect, got, b * rows, type + " tiles=" + tiles + " residual+bias=" + residual + " batch row " + b);
                }
                // each row alone (one-row batches in invariant mode) gives the very same floats
                for (int b : new int[] {0, n - 1}) {
                    FloatArray y1 = fa(row(y0, b, rows));
                    gemm(m, fa(row(x, b, cols)), y1, fa(bias), meta(1, BatchLayout.MODE_INVARIANT, 0, tiles), local, residual, residual ? 3 : -1);
                    for (int i = 0; i < rows; i++) {
                        assertEquals(got[b * rows + i], y1.get(i), 0f, "batch invariance, tiles=" + tiles + ", row " + b + " output " + i);
                    }
                }
            }
        }
        // default mode: one row alone matches the reference; a decode-sized batch gives every row exactly its floats alone
        FloatArray one = new FloatArray(rows);
        gemm(m, fa(row(x, 0, cols)), one, meta(1, 0), local, false);
        close(References.matvec(m.values(), row(x, 0, cols), rows, cols), floats(one), 0, type + " one-row path");
        if (n <= GemmKernels.LANE_BATCH) {
            FloatArray yl = new FloatArray(n * rows);
            gemm(m, fa(x), yl, meta(n, 0), local, false);
            for (int b : new int[] {0, n - 1}) {
                FloatArray alone = new FloatArray(rows);
                gemm(m, fa(row(x, b, cols)), alone, meta(1, 0), local, false);
                for (int i = 0; i < rows; i++) {
                    assertEquals(alone.get(i), yl.get(b * rows + i), 0f, "lane path, row " + b + " output " + i);
                }
            }
        }
    }

    @ParameterizedTest
    @CsvSource({"F32,37,75,3,64,8", "F16,13,96,2,128,32", "F16_BITS,37,75,1,64,16", "Q8_0,67,96,3,64,32", "Q8_0,11,160,8,128,4",
            "Q4_0,37,96,4,64,8", "Q4_0,7,224,1,64,64"})
    void severalRowsPerWorkGroupInTheLanePath(Type type, int rows, int cols, int n, int local, int lanes) {
        SplittableRandom r = new SplittableRandom(rows * 31L + cols + lanes);
        Matrix m = matrix(type, rows, cols, r);
        float[] x = randomFloats(r, n * cols, 1), y0 = randomFloats(r, n * rows, 1), bias = randomFloats(r, rows, 1);
        FloatArray y = fa(y0);
        gemm(m, fa(x), y, fa(bias), meta(n, 0, lanes), local, true, 0);
        for (int b = 0; b < n; b++) {
            float[] expect = References.matvec(m.values(), row(x, b, cols), rows, cols);
            for (int i = 0; i < rows; i++) {
                expect[i] += y0[b * rows + i] + bias[i];
            }
            close(expect, floats(y), b * rows, type + " lanes " + lanes + " batch row " + b);
        }
        // lanes = the whole group is the one-row-per-group product, bit for bit
        FloatArray whole = new FloatArray(n * rows), same = new FloatArray(n * rows);
        gemm(m, fa(x), whole, meta(n, 0, 0), local, false);
        gemm(m, fa(x), same, meta(n, 0, local), local, false);
        assertArrayEquals(floats(whole), floats(same), 0f);
    }

    @org.junit.jupiter.api.Test
    void itemTilesFitTheKernelsLocalArrays() {
        assertTrue(GemmKernels.ITEM_ROWS * GemmKernels.ITEM_DEPTH <= GemmKernels.WT_LOCAL, "staged slice in wt");
        assertTrue(GemmKernels.ITEM_BATCH * GemmKernels.ITEM_DEPTH <= GemmKernels.XS_LOCAL, "activation rows in xs");
        assertTrue(GemmKernels.ITEM_ROWS * BatchLayout.MAX_ROWS <= GemmKernels.ACC_LOCAL, "sums for every batch row in acc");
        assertEquals(0, GemmKernels.ITEM_ROWS % (2 * GemmKernels.ITEM_STEP), "SwiGLU: gate and up halves in whole register tiles");
        assertEquals(0, GemmKernels.ITEM_DEPTH % 32, "slices of whole Q8_0/Q4_0 blocks");
    }

    /** Rows [from, from + count) of a matrix's values. */
    static float[] rows(Matrix m, int from, int count) {
        return java.util.Arrays.copyOfRange(m.values(), from * m.cols(), (from + count) * m.cols());
    }

    @ParameterizedTest
    @CsvSource({"F32,64,3,64,0", "F16,64,3,64,16", "F16,64,2,64,0", "F16_BITS,96,33,64,0", "Q8_0,64,5,128,32", "Q4_0,96,18,64,0", "Q8_0,64,1,64,8",
            "F16_BITS,96,1,64,64", "Q4_0,64,1,128,16", "F32,160,12,64,0", "Q8_0,288,21,64,0", "F16_BITS,320,9,64,0"})
    void stackedQkvAndSwigluWithBiasAndTheNormReadOnTheFly(Type type, int cols, int n, int local, int lanes) {
        SplittableRandom r = new SplittableRandom(cols * 7L + n + lanes);
        int qRows = 80, kvRows = 17, total = qRows + 2 * kvRows, mode = n % 2 == 1 ? 0 : BatchLayout.MODE_INVARIANT;
        Matrix w = matrix(type, total, cols, r);
        float[] x = randomFloats(r, n * cols, 2), normW = randomFloats(r, cols, 1), bias = randomFloats(r, total, 1);
        // the layer vector as the graph builder lays it out: [norm weight, eps | biases]
        float[] vec = new float[cols + 1 + total];
        System.arraycopy(normW, 0, vec, 0, cols);
        vec[cols] = 1e-5f;
        System.arraycopy(bias, 0, vec, cols + 1, total);
        FloatArray va = fa(vec), xa = fa(x), xn = new FloatArray(n * cols), unused = new FloatArray(n * cols);
        int ffn = 70;
        Matrix gu = matrix(type, 2 * ffn, cols, r);
        for (int tiles : TILE_VARIANTS) {
            IntArray meta = meta(n, mode, lanes, tiles);
            // the norm pass (what the tiled path, and the lane path without the fused norm, read)
            WorkGroupEmulator.run(n * local, local, ctx -> BatchKernels.rmsNorm(ctx, xa, va, xn, unused, meta, BatchLayout.ROWS, cols, 0, 0));
            FloatArray[] viaPass = qkv(type, w, xa, xn, va, meta, qRows, kvRows, cols, -1, cols + 1, n, local);
            float[] xs = floats(xn);
            for (int b = 0; b < n; b++) {
                float[] xb = row(xs, b, cols);
                float[] eq = References.matvec(rows(w, 0, qRows), xb, qRows, cols), ek = References.matvec(rows(w, qRows, kvRows), xb, kvRows, cols);
                float[] ev = References.matvec(rows(w, qRows + kvRows, kvRows), xb, kvRows, cols);
                for (int i = 0; i < qRows; i++) {
                    eq[i] += bias[i];
                }
                for (int i = 0; i < kvRows; i++) {
                    ek[i] += bias[qRows + i];
                    ev[i] += bias[qRows + kvRows + i];
                }
                close(eq, floats(viaPass[0]), b * qRows, "tiles=" + tiles + " q row " + b);
                close(ek, floats(viaPass[1]), b * kvRows, "tiles=" + tiles + " k row " + b);
                close(ev, floats(viaPass[2]), b * kvRows, "tiles=" + tiles + " v row " + b);
            }
            // the norm read on the fly by the lane path (the tiled path still reads xn): the very same floats
            FloatArray[] fused = qkv(type, w, xa, xn, va, meta, qRows, kvRows, cols, 0, cols + 1, n, local);
            for (int i = 0; i < 3; i++) {
                assertArrayEquals(floats(viaPass[i]), floats(fused[i]), 0f, "fused norm, output " + i);
            }
            FloatArray h = swiglu(type, gu, xa, xn, va, meta, ffn, cols, -1, n, local), hf = swiglu(type, gu, xa, xn, va, meta, ffn, cols, 0, n, local);
            for (int b = 0; b < n; b++) {
                close(References.swiglu(rows(gu, 0, ffn), rows(gu, ffn, ffn), row(xs, b, cols), ffn, cols), floats(h), b * ffn, "tiles=" + tiles + " swiglu row " + b);
            }
            assertArrayEquals(floats(h), floats(hf), 0f, "fused norm, swiglu");
        }
    }

    static FloatArray[] qkv(Type type, Matrix w, FloatArray x, FloatArray xn, FloatArray vec, IntArray meta, int qRows, int kvRows, int cols, int normOff,
                            int biasOff, int n, int local) {
        FloatArray q = new FloatArray(n * qRows), k = new FloatArray(n * kvRows), v = new FloatArray(n * kvRows);
        int groups = Math.max(groups(qRows + 2 * kvRows, qRows + 2 * kvRows, meta, local),
                Math.max(GemmKernels.tiles(qRows) + 2 * GemmKernels.tiles(kvRows), GemmKernels.itemGroups(qRows) + 2 * GemmKernels.itemGroups(kvRows)));
        WorkGroupEmulator.run(groups * local, local, ctx -> {
            switch (type) {
                case F32 -> FusedGemmKernels.qkvF32(ctx, (FloatArray) w.a(), x, xn, vec, q, k, v, meta, qRows, kvRows, cols, normOff, biasOff);
                case F16 -> FusedGemmKernels.qkvF16(ctx, (HalfFloatArray) w.a(), x, xn, vec, q, k, v, meta, qRows, kvRows, cols, normOff, biasOff);
                case F16_BITS -> FusedGemmKernels.qkvF16Bits(ctx, (ShortArray) w.a(), (FloatArray) w.b(), x, xn, vec, q, k, v, meta, qRows, kvRows, cols, normOff, biasOff);
                case Q8_0 -> FusedGemmKernels.qkvQ8(ctx, (IntArray) w.a(), (FloatArray) w.b(), x, xn, vec, q, k, v, meta, qRows, kvRows, cols, normOff, biasOff);
                case Q4_0 -> FusedGemmKernels.qkvQ4(ctx, (IntArray) w.a(), (FloatArray) w.b(), x, xn, vec, q, k, v, meta, qRows, kvRows, cols, normOff, biasOff);
            }
        });
        return new FloatArray[] {q, k, v};
    }

    static FloatArray swiglu(Type type, Matrix gu, FloatArray x, FloatArray xn, FloatArray vec, IntArray meta, int ffn, int cols, int normOff, int n, int local) {
        FloatArray h = new FloatArray(n * ffn);
        WorkGroupEmulator.run(groups(ffn, 2 * ffn, meta, local) * local, local, ctx -> {
            switch (type) {
                case F32 -> FusedGemmKernels.swigluF32(ctx, (FloatArray) gu.a(), x, xn, vec, h, meta, ffn, cols, normOff);
                case F16 -> FusedGemmKernels.swigluF16(ctx, (HalfFloatArray) gu.a(), x, xn, vec, h, meta, ffn, cols, normOff);
                case F16_BITS -> FusedGemmKernels.swigluF16Bits(ctx, (ShortArray) gu.a(), (FloatArray) gu.b(), x, xn, vec, h, meta, ffn, cols, normOff);
                case Q8_0 -> FusedGemmKernels.swigluQ8(ctx, (IntArray) gu.a(), (FloatArray) gu.b(), x, xn, vec, h, meta, ffn, cols, normOff);
                case Q4_0 -> FusedGemmKernels.swigluQ4(ctx, (IntArray) gu.a(), (FloatArray) gu.b(), x, xn, vec, h, meta, ffn, cols, normOff);
            }
        });
        return h;
    }
}
