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

/** The batched products of every weight type against the scalar reference, and their batch invariance. */
class GemmKernelsTest {

    static IntArray meta(int rows, int mode) {
        return meta(rows, mode, BatchLayout.TILES_GROUPS);
    }

    static IntArray meta(int rows, int mode, int tiles) {
        IntArray m = new IntArray(BatchLayout.SIZE);
        m.set(BatchLayout.ROWS, rows);
        m.set(BatchLayout.OUT_ROWS, rows);
        m.set(BatchLayout.MODE, mode);
        m.set(BatchLayout.TILES, tiles);
        return m;
    }

    static final int[] TILE_VARIANTS = {BatchLayout.TILES_GROUPS, BatchLayout.TILES_ITEMS};

    static void gemm(Matrix m, FloatArray x, FloatArray y, IntArray meta, int local, boolean residual) {
        int res = residual ? 1 : 0, rows = m.rows(), cols = m.cols();
        WorkGroupEmulator.run(rows * local, local, ctx -> {
            switch (m.type()) {
                case F32 -> GemmKernels.gemmF32(ctx, (FloatArray) m.a(), x, y, meta, BatchLayout.ROWS, rows, cols, res);
                case F16 -> GemmKernels.gemmF16(ctx, (HalfFloatArray) m.a(), x, y, meta, BatchLayout.ROWS, rows, cols, res);
                case F16_BITS -> GemmKernels.gemmF16Bits(ctx, (ShortArray) m.a(), (FloatArray) m.b(), x, y, meta, BatchLayout.ROWS, rows, cols, res);
                case Q8_0 -> GemmKernels.gemmQ8(ctx, (IntArray) m.a(), (FloatArray) m.b(), x, y, meta, BatchLayout.ROWS, rows, cols, res);
                case Q4_0 -> GemmKernels.gemmQ4(ctx, (IntArray) m.a(), (FloatArray) m.b(), x, y, meta, BatchLayout.ROWS, rows, cols, res);
            }
        });
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
        for (int tiles : TILE_VARIANTS) {
            for (boolean residual : new boolean[] {false, true}) {
                FloatArray y = fa(y0);
                gemm(m, fa(x), y, meta(n, BatchLayout.MODE_INVARIANT, tiles), local, residual);
                float[] got = floats(y);
                for (int b = 0; b < n; b++) {
                    float[] expect = References.matvec(m.values(), row(x, b, cols), rows, cols);
                    if (residual) {
                        for (int i = 0; i < rows; i++) {
                            expect[i] += y0[b * rows + i];
                        }
                    }
                    close(expect, got, b * rows, type + " tiles=" + tiles + " residual=" + residual + " batch row " + b);
                }
                // each row alone (one-row batches in invariant mode) gives the very same floats
                for (int b : new int[] {0, n - 1}) {
                    FloatArray y1 = fa(row(y0, b, rows));
                    gemm(m, fa(row(x, b, cols)), y1, meta(1, BatchLayout.MODE_INVARIANT, tiles), local, residual);
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
    @CsvSource({"F32,64,3,64", "F16,64,2,64", "F16_BITS,96,33,64", "Q8_0,64,5,128", "Q4_0,96,18,64", "Q8_0,64,1,64", "F32,160,12,64",
            "Q8_0,288,21,64"})
    void batchedQkvAndSwiglu(Type type, int cols, int n, int local) {
        SplittableRandom r = new SplittableRandom(cols * 7L + n);
        int qRows = 80, kvRows = 17, mode = n % 2 == 1 ? 0 : BatchLayout.MODE_INVARIANT;
        Matrix wq = matrix(type, qRows, cols, r), wk = matrix(type, kvRows, cols, r), wv = matrix(type, kvRows, cols, r);
        float[] x = randomFloats(r, n * cols, 1);
        FloatArray xa = fa(x);
        int ffn = 70;
        Matrix wg = matrix(type, ffn, cols, r), wu = matrix(type, ffn, cols, r);
        for (int tiles : TILE_VARIANTS) {
            IntArray meta = meta(n, mode, tiles);
            FloatArray q = new FloatArray(n * qRows), k = new FloatArray(n * kvRows), v = new FloatArray(n * kvRows), h = new FloatArray(n * ffn);
            WorkGroupEmulator.run((qRows + 2 * kvRows) * local, local, ctx -> {
                switch (type) {
                    case F32 -> FusedGemmKernels.qkvF32(ctx, (FloatArray) wq.a(), (FloatArray) wk.a(), (FloatArray) wv.a(), xa, q, k, v, meta, qRows, kvRows, cols);
                    case F16 -> FusedGemmKernels.qkvF16(ctx, (HalfFloatArray) wq.a(), (HalfFloatArray) wk.a(), (HalfFloatArray) wv.a(), xa, q, k, v, meta, qRows, kvRows, cols);
                    case F16_BITS -> FusedGemmKernels.qkvF16Bits(ctx, (ShortArray) wq.a(), (ShortArray) wk.a(), (ShortArray) wv.a(), (FloatArray) wq.b(), xa, q, k, v, meta, qRows, kvRows, cols);
                    case Q8_0 -> FusedGemmKernels.qkvQ8(ctx, (IntArray) wq.a(), (FloatArray) wq.b(), (IntArray) wk.a(), (FloatArray) wk.b(), (IntArray) wv.a(), (FloatArray) wv.b(), xa, q, k, v, meta, qRows, kvRows, cols);
                    case Q4_0 -> FusedGemmKernels.qkvQ4(ctx, (IntArray) wq.a(), (FloatArray) wq.b(), (IntArray) wk.a(), (FloatArray) wk.b(), (IntArray) wv.a(), (FloatArray) wv.b(), xa, q, k, v, meta, qRows, kvRows, cols);
                }
            });
            WorkGroupEmulator.run(ffn * local, local, ctx -> {
                switch (type) {
                    case F32 -> FusedGemmKernels.swigluF32(ctx, (FloatArray) wg.a(), (FloatArray) wu.a(), xa, h, meta, ffn, cols);
                    case F16 -> FusedGemmKernels.swigluF16(ctx, (HalfFloatArray) wg.a(), (HalfFloatArray) wu.a(), xa, h, meta, ffn, cols);
                    case F16_BITS -> FusedGemmKernels.swigluF16Bits(ctx, (ShortArray) wg.a(), (ShortArray) wu.a(), (FloatArray) wg.b(), xa, h, meta, ffn, cols);
                    case Q8_0 -> FusedGemmKernels.swigluQ8(ctx, (IntArray) wg.a(), (FloatArray) wg.b(), (IntArray) wu.a(), (FloatArray) wu.b(), xa, h, meta, ffn, cols);
                    case Q4_0 -> FusedGemmKernels.swigluQ4(ctx, (IntArray) wg.a(), (FloatArray) wg.b(), (IntArray) wu.a(), (FloatArray) wu.b(), xa, h, meta, ffn, cols);
                }
            });
            float[] qs = floats(q), ks = floats(k), vs = floats(v), hs = floats(h);
            for (int b = 0; b < n; b++) {
                float[] xb = row(x, b, cols);
                close(References.matvec(wq.values(), xb, qRows, cols), qs, b * qRows, "tiles=" + tiles + " q row " + b);
                close(References.matvec(wk.values(), xb, kvRows, cols), ks, b * kvRows, "tiles=" + tiles + " k row " + b);
                close(References.matvec(wv.values(), xb, kvRows, cols), vs, b * kvRows, "tiles=" + tiles + " v row " + b);
                close(References.swiglu(wg.values(), wu.values(), xb, ffn, cols), hs, b * ffn, "tiles=" + tiles + " swiglu row " + b);
            }
        }
    }
}
