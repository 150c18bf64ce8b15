package internlm.kernels;

import internlm.kernels.KernelTestData.Matrix;
import internlm.kernels.KernelTestData.Type;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.HalfFloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;
import uk.ac.manchester.tornado.api.types.arrays.ShortArray;

import java.util.SplittableRandom;

import static internlm.kernels.KernelTestData.*;
import static org.junit.jupiter.api.Assertions.*;

class LayerKernelsTest {

    @ParameterizedTest
    @EnumSource(Type.class)
    void embeddingLookupDequantizesTheTokensRow(Type type) {
        SplittableRandom r = new SplittableRandom(3);
        int vocab = 13, dim = 96;
        Matrix table = matrix(type, vocab, dim, r);
        FloatArray x = new FloatArray(dim);
        IntArray state = state(11, 0);
        WorkGroupEmulator.run(WorkGroupEmulator.global(dim, 32), 32, ctx -> {
            switch (type) {
                case F32 -> LayerKernels.embedF32(ctx, (FloatArray) table.a(), state, x, dim);
                case F16 -> LayerKernels.embedF16(ctx, (HalfFloatArray) table.a(), state, x, dim);
                case F16_BITS -> LayerKernels.embedF16Bits(ctx, (ShortArray) table.a(), (FloatArray) table.b(), state, x, dim);
                case Q8_0 -> LayerKernels.embedQ8(ctx, (IntArray) table.a(), (FloatArray) table.b(), state, x, dim);
                case Q4_0 -> LayerKernels.embedQ4(ctx, (IntArray) table.a(), (FloatArray) table.b(), state, x, dim);
            }
        });
        for (int i = 0; i < dim; i++) {
            assertEquals(table.values()[11 * dim + i], x.get(i), 0f, "element " + i);
        }
    }

    @ParameterizedTest
    @CsvSource({"1000,64", "77,32", "4096,256"})
    void rmsNormOneGroupAndTwoPhase(int n, int local) {
        SplittableRandom r = new SplittableRandom(n);
        float[] x = randomFloats(r, n, 3), w = randomFloats(r, n, 1);
        float[] expect = References.rmsNorm(x, w, 1e-5f);
        FloatArray out = new FloatArray(n);
        WorkGroupEmulator.run(local, local, ctx -> LayerKernels.rmsNorm(ctx, fa(x), fa(w), out, n, 1e-5f));
        float[] got = floats(out);
        for (int i = 0; i < n; i++) {
            assertEquals(expect[i], got[i], 1e-5 * Math.max(1, Math.abs(expect[i])), "one-group " + i);
        }
        int groups = 5;
        FloatArray partials = new FloatArray(groups), out2 = new FloatArray(n);
        FloatArray xa = fa(x), wa = fa(w);
        WorkGroupEmulator.run(groups * local, local, ctx -> LayerKernels.rmsPartials(ctx, xa, partials, n));
        WorkGroupEmulator.run(groups * local, local, ctx -> LayerKernels.rmsApply(ctx, xa, wa, out2, partials, groups, n, 1e-5f));
        got = floats(out2);
        for (int i = 0; i < n; i++) {
            assertEquals(expect[i], got[i], 1e-5 * Math.max(1, Math.abs(expect[i])), "two-phase " + i);
        }
    }

    @Test
    void roundQ8MatchesGgmlsActivationQuantizationBitForBit() {
        SplittableRandom r = new SplittableRandom(9);
        int n = 32 * 7 + 5;
        float[] x = randomFloats(r, n, 4);
        x[32] = 127f; x[33] = 2.5f; x[34] = -3.5f; x[35] = 0.5f; // max 127: id = 1, exact ties round half to even
        java.util.Arrays.fill(x, 64, 96, 0f); // an all-zero block
        for (int i = 96; i < 128; i++) {
            x[i] = (float) (r.nextDouble() * 1e-6); // d in the f16 subnormal range
        }
        float[] expect = References.roundQ8(x);
        FloatArray out = new FloatArray(n);
        FloatArray xa = fa(x);
        WorkGroupEmulator.run(WorkGroupEmulator.global(n / 32 + 1, 8), 8, ctx -> LayerKernels.roundQ8(ctx, xa, out, n));
        for (int i = 0; i < n; i++) {
            assertEquals(expect[i], out.get(i), 0f, "element " + i);
        }
    }

    @Test
    void ropeRotatesQAndKAndWritesTheCache() {
        SplittableRandom r = new SplittableRandom(4);
        int hd = 16, heads = 6, kvHeads = 2, qDim = heads * hd, kvDim = kvHeads * hd, pos = 5, ctxLen = 8;
        float[] q = randomFloats(r, qDim, 1), k = randomFloats(r, kvDim, 1), v = randomFloats(r, kvDim, 1);
        float[] table = References.ropeTable(pos, 5e7, hd);
        FloatArray qa = fa(q), ka = fa(k), va = fa(v), kc = new FloatArray(ctxLen * kvDim), vc = new FloatArray(ctxLen * kvDim);
        ShortArray kh = new ShortArray(ctxLen * kvDim), vh = new ShortArray(ctxLen * kvDim);
        FloatArray qa2 = fa(q), ka2 = fa(k);
        IntArray state = state(0, pos);
        WorkGroupEmulator.run(WorkGroupEmulator.global(qDim / 2, 32), 32, ctx -> LayerKernels.ropeKv(ctx, qa, ka, va, kc, vc, fa(table), state, qDim, kvDim, hd));
        WorkGroupEmulator.run(WorkGroupEmulator.global(qDim / 2, 32), 32, ctx -> LayerKernels.ropeKvF16(ctx, qa2, ka2, fa(v), kh, vh, fa(table), state, qDim, kvDim, hd));
        float[] rq = References.rope(q, table, hd), rk = References.rope(k, table, hd);
        for (int i = 0; i < qDim; i++) {
            assertEquals(rq[i], qa.get(i), 1e-6, "q " + i);
            assertEquals(rq[i], qa2.get(i), 1e-6, "q (f16 cache kernel) " + i);
        }
        for (int i = 0; i < kvDim; i++) {
            assertEquals(rk[i], ka.get(i), 1e-6, "k " + i);
            assertEquals(rk[i], kc.get(pos * kvDim + i), 1e-6, "cached k " + i);
            assertEquals(v[i], vc.get(pos * kvDim + i), 0f, "cached v " + i);
            assertEquals(Float.floatToFloat16(ka2.get(i)), kh.get(pos * kvDim + i), "f16 cached k bits " + i);
            assertEquals(Float.floatToFloat16(v[i]), vh.get(pos * kvDim + i), "f16 cached v bits " + i);
            assertEquals(0f, kc.get((pos - 1) * kvDim + i), 0f, "other positions untouched");
        }
    }

    @ParameterizedTest(name = "heads {0} / kv heads {1}, head dim {2}, position {3}")
    @CsvSource({"4,4,16,0", "4,4,16,37", "8,4,32,20", "16,2,16,33", "16,1,32,47", "32,2,16,15", "6,3,16,16"})
    void attentionForGroupedQueryRatios(int heads, int kvHeads, int hd, int pos) {
        SplittableRandom r = new SplittableRandom(heads * 100 + kvHeads + pos);
        int kvDim = kvHeads * hd, len = pos + 1, local = Math.max(32, Integer.highestOneBit(hd - 1) << 1);
        float[] q = randomFloats(r, heads * hd, 2), keys = randomFloats(r, (len + 3) * kvDim, 2), values = randomFloats(r, (len + 3) * kvDim, 1);
        float[] expect = References.attention(q, keys, values, len, heads, kvHeads, hd);
        FloatArray out = new FloatArray(heads * hd);
        IntArray state = state(0, pos);
        WorkGroupEmulator.run(heads * local, local, ctx -> LayerKernels.attention(ctx, fa(q), fa(keys), fa(values), out, state, heads, kvHeads, hd));
        for (int i = 0; i < heads * hd; i++) {
            assertEquals(expect[i], out.get(i), 1e-5, "f32 cache, output " + i);
        }
        // the same with a half-precision cache: compare with the reference on f16-rounded keys and values
        ShortArray kh = new ShortArray(keys.length), vh = new ShortArray(values.length);
        float[] kr = keys.clone(), vr = values.clone();
        for (int i = 0; i < keys.length; i++) {
            kh.set(i, Float.floatToFloat16(keys[i]));
            vh.set(i, Float.floatToFloat16(values[i]));
            kr[i] = Float.float16ToFloat(Float.floatToFloat16(keys[i]));
            vr[i] = Float.float16ToFloat(Float.floatToFloat16(values[i]));
        }
        float[] expectH = References.attention(q, kr, vr, len, heads, kvHeads, hd);
        FloatArray outH = new FloatArray(heads * hd);
        WorkGroupEmulator.run(heads * local, local, ctx -> LayerKernels.attentionF16(ctx, fa(q), kh, vh, KernelSupport.halfTable(), outH, state, heads, kvHeads, hd));
        for (int i = 0; i < heads * hd; i++) {
            assertEquals(expectH[i], outH.get(i), 1e-4, "f16 cache, output " + i);
        }
    }

    @Test
    void argmaxTakesTheFirstMaximum() {
        SplittableRandom r = new SplittableRandom(5);
        int n = 1003;
        float[] v = randomFloats(r, n, 10);
        v[700] = 50f;
        v[301] = 50f; // tie: the lower index wins
        FloatArray va = fa(v), pv = new FloatArray(4);
        IntArray pi = new IntArray(4), result = new IntArray(1);
        WorkGroupEmulator.run(4 * 64, 64, ctx -> LayerKernels.argmaxPartial(ctx, va, pv, pi, n));
        WorkGroupEmulator.run(64, 64, ctx -> LayerKernels.argmaxFinal(ctx, pv, pi, result, 4));
        assertEquals(References.argmax(v), result.get(0));
        assertEquals(301, result.get(0));
    }

    @Test
    void halfPrecisionConversionsAreExactForEveryValue() {
        FloatArray table = KernelSupport.halfTable();
        for (int bits = 0; bits < 65536; bits++) {
            short h = (short) bits;
            float f = Float.float16ToFloat(h);
            if (Float.isNaN(f) || Float.isInfinite(f)) {
                continue;
            }
            assertEquals(f, KernelSupport.halfToFloat(h, table), 0f, "decode " + bits);
            if (f != 0f || (bits & 0x8000) == 0) {
                assertEquals(h, KernelSupport.floatToHalf(f), "encode " + f);
            }
        }
        SplittableRandom r = new SplittableRandom(1);
        for (int i = 0; i < 200_000; i++) {
            float f = (float) ((r.nextDouble() * 2 - 1) * Math.scalb(1.0, r.nextInt(-26, 17)));
            assertEquals(Float.floatToFloat16(f), KernelSupport.floatToHalf(f), "encode " + f);
            if (f >= 0 && f <= 65504f) {
                assertEquals(Float.float16ToFloat(Float.floatToFloat16(f)), KernelSupport.roundToHalf(f), 0f, "round " + f);
            }
        }
    }

    @Test
    void biasAdd() {
        float[] y = {1, 2, 3}, b = {0.5f, -1, 2};
        FloatArray ya = fa(y);
        WorkGroupEmulator.run(32, 32, ctx -> LayerKernels.addBias(ctx, ya, fa(b), 3));
        assertArrayEquals(new float[] {1.5f, 1, 5}, floats(ya), 0f);
    }
}
