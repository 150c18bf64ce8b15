package internlm.engine.cpu;

import internlm.loader.TensorData;
import internlm.loader.gguf.GgmlType;
import internlm.loader.quant.Quants;
import internlm.loader.synthetic.SyntheticGguf;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.ByteArrayOutputStream;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/** Each weight type's vector dot product, dequantization and batched product against the scalar definitions. */
class VectorKernelsTest {

    @ParameterizedTest
    @CsvSource({"F32,37,5", "F32,64,3", "F16,33,4", "F16,96,7", "BF16,45,3", "BF16,128,2", "Q8_0,32,3", "Q8_0,224,9", "Q4_0,64,5", "Q4_0,96,3",
            // wider than a column tile (2048): two full tiles and a narrow one, odd row counts
            "Q8_0,4192,5", "Q4_0,6208,3", "Q8_0,2048,3", "F16,4160,3", "F32,2080,2", "BF16,4128,2"})
    void matchesScalarDefinition(GgmlType type, int cols, int rows) throws Exception {
        SplittableRandom r = new SplittableRandom(cols * 31L + rows);
        float[] w = new float[cols * rows];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) (r.nextDouble() * 2 - 1);
        }
        ByteArrayOutputStream bo = new ByteArrayOutputStream();
        SyntheticGguf.encode(type, w, bo);
        MemorySegment seg = MemorySegment.ofArray(bo.toByteArray());
        TensorData t = new TensorData("w", type, new long[] {cols, rows}, seg);
        // F16/BF16: copied to the heap in tiles, and read row-major from the tensor's memory
        for (boolean onHeap : new boolean[] {true, false}) {
            Weight weight = Weight.of(t, onHeap);
            if (weight.needsPacking()) {
                weight.pack(t, 0, rows);
            }
            check(weight, type, cols, rows, seg, r);
        }
    }

    private static void check(Weight weight, GgmlType type, int cols, int rows, MemorySegment seg, SplittableRandom r) {
        float[] deq = new float[cols * rows];
        Quants.dequantize(type, seg, 0, deq, 0, deq.length);
        for (int batch : new int[] {6, 17}) { // small batches: fused tiles (Q8_0); wider: dequantized tiles
            checkBatch(weight, type, cols, rows, deq, r, batch);
        }
    }

    private static void checkBatch(Weight weight, GgmlType type, int cols, int rows, float[] deq, SplittableRandom r, int batch) {
        float[] x = new float[batch * cols];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) (r.nextDouble() * 4 - 2);
        }
        float[] row = new float[cols];
        float[] y = new float[batch * rows];
        weight.matmul(x, cols, batch, y, rows, 0, 0, rows, new float[4 * cols]);
        // one token (the decode path), over two row ranges as the threads split it
        float[] y1 = new float[rows + 3];
        weight.matmul(x, cols, 1, y1, 0, 3, 0, rows / 2, null);
        weight.matmul(x, cols, 1, y1, 0, 3, rows / 2, rows, null);
        for (int rr = 0; rr < rows; rr++) {
            weight.dequantizeRow(rr, row, 0);
            for (int c = 0; c < cols; c++) {
                assertEquals(deq[rr * cols + c], row[c], 0f, "dequantized element " + rr + "," + c);
            }
            for (int b = 0; b < batch; b++) {
                double ref = 0;
                for (int c = 0; c < cols; c++) {
                    ref += (double) deq[rr * cols + c] * x[b * cols + c];
                }
                float single = weight.dot(rr, x, b * cols);
                if (b == 0) {
                    // the same sums in the same order: bit for bit
                    assertEquals(Float.floatToRawIntBits(single), Float.floatToRawIntBits(y1[3 + rr]), type + " one-token product row " + rr);
                }
                // a batched product sums every element as the one-token product does (batch invariance)
                assertEquals(Float.floatToRawIntBits(single), Float.floatToRawIntBits(y[b * rows + rr]), type + " batched = one-token, row " + rr + " token " + b);
                assertEquals(ref, single, 1e-4 * cols, type + " dot row " + rr + " token " + b);
                assertEquals(ref, y[b * rows + rr], 1e-4 * cols, type + " batched row " + rr + " token " + b);
            }
        }
    }

    /** The exponential of silu: vector and scalar give the same bits, within 2 ulp of Math.exp over silu's range. */
    @org.junit.jupiter.api.Test
    void exponentialIsDeterministicAndAccurate() {
        SplittableRandom r = new SplittableRandom(11);
        float[] x = new float[4096];
        for (int i = 0; i < x.length; i++) {
            x[i] = i < 8 ? new float[] {0f, -0f, 1f, -1f, 80f, -80f, 88f, -87f}[i] : (float) (r.nextDouble() * 170 - 85);
        }
        float[] v = new float[x.length];
        for (int i = 0; i + VectorKernels.L <= x.length; i += VectorKernels.L) {
            VectorKernels.exp(jdk.incubator.vector.FloatVector.fromArray(VectorKernels.F, x, i)).intoArray(v, i);
        }
        for (int i = 0; i < x.length; i++) {
            float s = VectorKernels.exp(x[i]);
            assertEquals(Float.floatToRawIntBits(s), Float.floatToRawIntBits(v[i]), "exp(" + x[i] + ") vector vs scalar");
            float ref = (float) Math.exp(x[i]);
            assertEquals(ref, s, 2 * Math.ulp(ref), "exp(" + x[i] + ")");
        }
    }

    /** The softmax helper: e^(s - max) in place and their sum, for lengths around the vector width. */
    @org.junit.jupiter.api.Test
    void expSumMatchesMathExp() {
        for (int n : new int[] {1, 7, 16, 17, 45, 130}) {
            float[] s = new float[n];
            for (int i = 0; i < n; i++) {
                s[i] = (float) Math.sin(i * 1.7) * 9;
            }
            float max = Float.NEGATIVE_INFINITY;
            for (float v : s) {
                max = Math.max(max, v);
            }
            float[] e = s.clone();
            float sum = VectorKernels.expSum(e, n, max);
            double ref = 0;
            for (int i = 0; i < n; i++) {
                double x = Math.exp(s[i] - max);
                assertEquals(x, e[i], 3 * Math.ulp((float) x), "n " + n + " element " + i);
                ref += x;
            }
            assertEquals(ref, sum, 1e-5 * ref, "sum, n " + n);
        }
    }

    /** The value half of attention: strided rows weighted and summed, for widths with and without a scalar tail. */
    @org.junit.jupiter.api.Test
    void weightedRowsSumsStridedRows() {
        for (int n : new int[] {3, 16, 64, 72, 128, 133}) {
            int len = 37, stride = n + 11, vOff = 5;
            float[] p = new float[len], v = new float[vOff + len * stride];
            for (int t = 0; t < len; t++) {
                p[t] = 1f / (t + 2);
            }
            for (int i = 0; i < v.length; i++) {
                v[i] = (float) Math.cos(i * 0.37);
            }
            float[] out = new float[n + 4];
            out[n + 3] = 42;
            AttentionKernels.weightedRows(p, len, v, vOff, stride, out, 2, n);
            for (int c = 0; c < n; c++) {
                double ref = 0;
                for (int t = 0; t < len; t++) {
                    ref += (double) p[t] * v[vOff + t * stride + c];
                }
                assertEquals(ref, out[2 + c], 1e-5, "n " + n + " column " + c);
            }
            assertEquals(0f, out[0]);
            assertEquals(0f, out[1]);
            assertEquals(42f, out[n + 3], "nothing written past the columns");
        }
    }
}
