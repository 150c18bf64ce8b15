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

/** Every matrix-vector kernel × weight type, on sizes that are not multiples of the work-group. */
class MatVecKernelsTest {

    private static void close(float[] expected, float[] actual, String what) {
        assertEquals(expected.length, actual.length);
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], actual[i], 1e-4 * Math.max(1, Math.abs(expected[i])), what + " [" + i + "]");
        }
    }

    static void matvec(Matrix m, FloatArray x, FloatArray y, int local, boolean residual) {
        WorkGroupEmulator.run(m.rows() * local, local, ctx -> {
            switch (m.type()) {
                case F32 -> { if (residual) MatVecKernels.matvecResidualF32(ctx, (FloatArray) m.a(), x, y, m.rows(), m.cols()); else MatVecKernels.matvecF32(ctx, (FloatArray) m.a(), x, y, m.rows(), m.cols()); }
                case F16 -> { if (residual) MatVecKernels.matvecResidualF16(ctx, (HalfFloatArray) m.a(), x, y, m.rows(), m.cols()); else MatVecKernels.matvecF16(ctx, (HalfFloatArray) m.a(), x, y, m.rows(), m.cols()); }
                case F16_BITS -> { if (residual) MatVecKernels.matvecResidualF16Bits(ctx, (ShortArray) m.a(), (FloatArray) m.b(), x, y, m.rows(), m.cols()); else MatVecKernels.matvecF16Bits(ctx, (ShortArray) m.a(), (FloatArray) m.b(), x, y, m.rows(), m.cols()); }
                case Q8_0 -> { if (residual) MatVecKernels.matvecResidualQ8(ctx, (IntArray) m.a(), (FloatArray) m.b(), x, y, m.rows(), m.cols()); else MatVecKernels.matvecQ8(ctx, (IntArray) m.a(), (FloatArray) m.b(), x, y, m.rows(), m.cols()); }
                case Q4_0 -> { if (residual) MatVecKernels.matvecResidualQ4(ctx, (IntArray) m.a(), (FloatArray) m.b(), x, y, m.rows(), m.cols()); else MatVecKernels.matvecQ4(ctx, (IntArray) m.a(), (FloatArray) m.b(), x, y, m.rows(), m.cols()); }
            }
        });
    }

    @ParameterizedTest
    @CsvSource({"F32,37,75,32", "F32,5,300,64", "F16,37,75,16", "F16,9,130,64", "F16_BITS,37,75,16", "F16_BITS,9,130,64", "Q8_0,37,96,32", "Q8_0,11,320,64", "Q4_0,37,96,32", "Q4_0,7,224,64"})
    void plainAndResidualProducts(Type type, int rows, int cols, int local) {
        SplittableRandom r = new SplittableRandom(rows * 1000L + cols);
        Matrix m = matrix(type, rows, cols, r);
        float[] x = randomFloats(r, cols, 1);
        float[] expect = References.matvec(m.values(), x, rows, cols);
        FloatArray y = new FloatArray(rows);
        matvec(m, fa(x), y, local, false);
        close(expect, floats(y), type + " matvec");
        float[] y0 = randomFloats(r, rows, 1);
        FloatArray yr = fa(y0);
        matvec(m, fa(x), yr, local, true);
        for (int i = 0; i < rows; i++) {
            expect[i] += y0[i];
        }
        close(expect, floats(yr), type + " residual");
    }

    @ParameterizedTest
    @CsvSource({"F32,64,32", "F16,64,32", "F16_BITS,96,32", "Q8_0,64,32", "Q4_0,96,64"})
    void fusedQkvAndSwiglu(Type type, int cols, int local) {
        SplittableRandom r = new SplittableRandom(cols);
        int qRows = 48, kvRows = 17;
        Matrix wq = matrix(type, qRows, cols, r), wk = matrix(type, kvRows, cols, r), wv = matrix(type, kvRows, cols, r);
        float[] x = randomFloats(r, cols, 1);
        FloatArray xa = fa(x), q = new FloatArray(qRows), k = new FloatArray(kvRows), v = new FloatArray(kvRows);
        WorkGroupEmulator.run((qRows + 2 * kvRows) * local, local, ctx -> {
            switch (type) {
                case F32 -> MatVecKernels.qkvF32(ctx, (FloatArray) wq.a(), (FloatArray) wk.a(), (FloatArray) wv.a(), xa, q, k, v, qRows, kvRows, cols);
                case F16 -> MatVecKernels.qkvF16(ctx, (HalfFloatArray) wq.a(), (HalfFloatArray) wk.a(), (HalfFloatArray) wv.a(), xa, q, k, v, qRows, kvRows, cols);
                case F16_BITS -> MatVecKernels.qkvF16Bits(ctx, (ShortArray) wq.a(), (ShortArray) wk.a(), (ShortArray) wv.a(), (FloatArray) wq.b(), xa, q, k, v, qRows, kvRows, cols);
                case Q8_0 -> MatVecKernels.qkvQ8(ctx, (IntArray) wq.a(), (FloatArray) wq.b(), (IntArray) wk.a(), (FloatArray) wk.b(), (IntArray) wv.a(), (FloatArray) wv.b(), xa, q, k, v, qRows, kvRows, cols);
                case Q4_0 -> MatVecKernels.qkvQ4(ctx, (IntArray) wq.a(), (FloatArray) wq.b(), (IntArray) wk.a(), (FloatArray) wk.b(), (IntArray) wv.a(), (FloatArray) wv.b(), xa, q, k, v, qRows, kvRows, cols);
            }
        });
        close(References.matvec(wq.values(), x, qRows, cols), floats(q), "q");
        close(References.matvec(wk.values(), x, kvRows, cols), floats(k), "k");
        close(References.matvec(wv.values(), x, kvRows, cols), floats(v), "v");

        int ffn = 41;
        Matrix wg = matrix(type, ffn, cols, r), wu = matrix(type, ffn, cols, r);
        FloatArray h = new FloatArray(ffn);
        WorkGroupEmulator.run(ffn * local, local, ctx -> {
            switch (type) {
                case F32 -> MatVecKernels.swigluF32(ctx, (FloatArray) wg.a(), (FloatArray) wu.a(), xa, h, ffn, cols);
                case F16 -> MatVecKernels.swigluF16(ctx, (HalfFloatArray) wg.a(), (HalfFloatArray) wu.a(), xa, h, ffn, cols);
                case F16_BITS -> MatVecKernels.swigluF16Bits(ctx, (ShortArray) wg.a(), (ShortArray) wu.a(), (FloatArray) wg.b(), xa, h, ffn, cols);
                case Q8_0 -> MatVecKernels.swigluQ8(ctx, (IntArray) wg.a(), (FloatArray) wg.b(), (IntArray) wu.a(), (FloatArray) wu.b(), xa, h, ffn, cols);
                case Q4_0 -> MatVecKernels.swigluQ4(ctx, (IntArray) wg.a(), (FloatArray) wg.b(), (IntArray) wu.a(), (FloatArray) wu.b(), xa, h, ffn, cols);
            }
        });
        close(References.swiglu(wg.values(), wu.values(), x, ffn, cols), floats(h), "swiglu");
    }
}
