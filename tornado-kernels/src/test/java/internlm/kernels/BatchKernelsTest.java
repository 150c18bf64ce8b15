package internlm.kernels;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;
import uk.ac.manchester.tornado.api.types.arrays.HalfFloatArray;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;
import uk.ac.manchester.tornado.api.types.arrays.ShortArray;

import java.util.SplittableRandom;

import static internlm.kernels.KernelTestData.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * The batched layer kernels: two sequences in separate cache slots, one a causal prompt chunk, the other a single
 * decode row, against the scalar references row by row.
 */
class BatchKernelsTest {
    static final int HEADS = 8, KV_HEADS = 2, CAP = 40;

    /** Rows: sequence A (slot 1) positions 5..9 as a chunk, sequence B (slot 0) position 20. */
    static IntArray meta() {
        IntArray m = GemmKernelsTest.meta(6, 0);
        int[][] rows = {{1, 5}, {1, 6}, {1, 7}, {1, 8}, {1, 9}, {0, 20}};
        for (int b = 0; b < rows.length; b++) {
            m.set(BatchLayout.TOKEN + b, 3 + b);
            m.set(BatchLayout.CACHE_BASE + b, rows[b][0] * CAP);
            m.set(BatchLayout.POSITION + b, rows[b][1]);
        }
        m.set(BatchLayout.OUT_ROWS, 2);
        m.set(BatchLayout.OUT_ROW, 4);
        m.set(BatchLayout.OUT_ROW + 1, 5);
        return m;
    }

    @ParameterizedTest
    @CsvSource({"false,16", "true,16", "false,64", "true,32"})
    void ropeKvThenAttentionOverAChunkAndADecodeRowInTwoSlots(boolean f16, int HD) {
        SplittableRandom r = new SplittableRandom(f16 ? 2 : 1);
        IntArray meta = meta();
        int n = 6, qDim = HEADS * HD, kvDim = KV_HEADS * HD;
        float[] q = randomFloats(r, n * qDim, 1), k = randomFloats(r, n * kvDim, 1), v = randomFloats(r, n * kvDim, 1);
        float[] keys = randomFloats(r, 2 * CAP * kvDim, 1), values = randomFloats(r, 2 * CAP * kvDim, 1);
        if (f16) {
            for (int i = 0; i < keys.length; i++) {
                keys[i] = Float.float16ToFloat(Float.floatToFloat16(keys[i]));
                values[i] = Float.float16ToFloat(Float.floatToFloat16(values[i]));
            }
        }
        float[] tables = new float[n * HD];
        for (int b = 0; b < n; b++) {
            System.arraycopy(References.ropeTable(meta.get(BatchLayout.POSITION + b), 1e4 * (b + 1), HD), 0, tables, b * HD, HD);
        }
        FloatArray qa = fa(q), ka = fa(k), va = fa(v), rope = fa(tables), out = new FloatArray(n * qDim);
        FloatArray kc = fa(keys), vc = fa(values);
        ShortArray kh = new ShortArray(keys.length), vh = new ShortArray(values.length);
        for (int i = 0; i < keys.length; i++) {
            kh.set(i, Float.floatToFloat16(keys[i]));
            vh.set(i, Float.floatToFloat16(values[i]));
        }
        FloatArray pow2 = KernelSupport.halfTable();
        WorkGroupEmulator.run(WorkGroupEmulator.global(qDim / 2, 16), 16, ctx -> {
            if (f16) {
                BatchKernels.ropeKvF16(ctx, qa, ka, va, kh, vh, rope, meta, qDim, kvDim, HD);
            } else {
                BatchKernels.ropeKv(ctx, qa, ka, va, kc, vc, rope, meta, qDim, kvDim, HD);
            }
        });
        int att = Math.max(32, HD);
        WorkGroupEmulator.run(n * HEADS * att, att, ctx -> {
            if (f16) {
                AttentionKernels.attentionF16(ctx, qa, kh, vh, pow2, out, meta, HEADS, KV_HEADS, HD, 0);
            } else {
                AttentionKernels.attention(ctx, qa, kc, vc, out, meta, HEADS, KV_HEADS, HD, 0);
            }
        });
        if (HD % 32 == 0) {
            // llama.cpp's rounding of the output in the same pass: exactly roundQ8 of the unrounded output
            FloatArray rounded = new FloatArray(n * qDim);
            WorkGroupEmulator.run(n * HEADS * att, att, ctx -> {
                if (f16) {
                    AttentionKernels.attentionF16(ctx, qa, kh, vh, pow2, rounded, meta, HEADS, KV_HEADS, HD, 1);
                } else {
                    AttentionKernels.attention(ctx, qa, kc, vc, rounded, meta, HEADS, KV_HEADS, HD, 1);
                }
            });
            float[] expect = References.roundQ8(floats(out));
            assertArrayEquals(expect, floats(rounded), 0f, "rounded attention output");
        }
        // split over the context (flash-decoding, 4 splits of which 1, 3 or 4 active): the same attention within float
        // rounding; the merge's rounding is roundQ8 of its unrounded output
        int splits = 4;
        for (int active : new int[] {1, 3, 4}) {
            meta.set(BatchLayout.SPLITS, active);
            FloatArray part = new FloatArray(n * HEADS * splits * (HD + 2)), merged = new FloatArray(n * qDim), mergedRounded = new FloatArray(n * qDim);
            WorkGroupEmulator.run(n * HEADS * splits * att, att, ctx -> {
                if (f16) {
                    AttentionKernels.attentionPartialF16(ctx, qa, kh, vh, pow2, part, meta, HEADS, KV_HEADS, HD, splits);
                } else {
                    AttentionKernels.attentionPartial(ctx, qa, kc, vc, part, meta, HEADS, KV_HEADS, HD, splits);
                }
            });
            WorkGroupEmulator.run(n * HEADS * att, att, ctx -> AttentionKernels.attentionMerge(ctx, part, merged, meta, HEADS, HD, splits, 0));
            for (int i = 0; i < n * qDim; i++) {
                assertEquals(out.get(i), merged.get(i), 2e-6 * Math.max(1, Math.abs(out.get(i))), active + " active splits, output " + i);
            }
            if (HD % 32 == 0) {
                WorkGroupEmulator.run(n * HEADS * att, att, ctx -> AttentionKernels.attentionMerge(ctx, part, mergedRounded, meta, HEADS, HD, splits, 1));
                assertArrayEquals(References.roundQ8(floats(merged)), floats(mergedRounded), 0f, "rounded merge");
            }
        }
        // reference: write every row's rotated K and V into the slots, then attend row by row
        float[][] rq = new float[n][];
        for (int b = 0; b < n; b++) {
            float[] t = java.util.Arrays.copyOfRange(tables, b * HD, (b + 1) * HD);
            rq[b] = References.rope(java.util.Arrays.copyOfRange(q, b * qDim, (b + 1) * qDim), t, HD);
            float[] rk = References.rope(java.util.Arrays.copyOfRange(k, b * kvDim, (b + 1) * kvDim), t, HD);
            int base = (meta.get(BatchLayout.CACHE_BASE + b) + meta.get(BatchLayout.POSITION + b)) * kvDim;
            for (int i = 0; i < kvDim; i++) {
                keys[base + i] = f16 ? Float.float16ToFloat(Float.floatToFloat16(rk[i])) : rk[i];
                values[base + i] = f16 ? Float.float16ToFloat(Float.floatToFloat16(v[b * kvDim + i])) : v[b * kvDim + i];
            }
        }
        for (int b = 0; b < n; b++) {
            int slot = meta.get(BatchLayout.CACHE_BASE + b) * kvDim, len = meta.get(BatchLayout.POSITION + b) + 1;
            float[] ks = java.util.Arrays.copyOfRange(keys, slot, slot + CAP * kvDim), vs = java.util.Arrays.copyOfRange(values, slot, slot + CAP * kvDim);
            float[] expect = References.attention(rq[b], ks, vs, len, HEADS, KV_HEADS, HD);
            for (int i = 0; i < qDim; i++) {
                assertEquals(expect[i], out.get(b * qDim + i), 1e-4, "row " + b + " attention " + i);
            }
        }
    }

    @ParameterizedTest
    @EnumSource(KernelTestData.Type.class)
    void embeddingOfEveryRowInEveryWeightType(KernelTestData.Type type) {
        SplittableRandom r = new SplittableRandom(8);
        IntArray meta = meta();
        int n = 6, vocab = 16, dim = 96;
        KernelTestData.Matrix table = matrix(type, vocab, dim, r);
        FloatArray x = new FloatArray(n * dim);
        WorkGroupEmulator.run(WorkGroupEmulator.global(dim, 32), 32, ctx -> {
            switch (type) {
                case F32 -> BatchKernels.embedF32(ctx, (FloatArray) table.a(), meta, x, dim);
                case F16 -> BatchKernels.embedF16(ctx, (HalfFloatArray) table.a(), meta, x, dim);
                case F16_BITS -> BatchKernels.embedF16Bits(ctx, (ShortArray) table.a(), (FloatArray) table.b(), meta, x, dim);
                case Q8_0 -> BatchKernels.embedQ8(ctx, (IntArray) table.a(), (FloatArray) table.b(), meta, x, dim);
                case Q4_0 -> BatchKernels.embedQ4(ctx, (IntArray) table.a(), (FloatArray) table.b(), meta, x, dim);
            }
        });
        for (int b = 0; b < n; b++) {
            int token = meta.get(BatchLayout.TOKEN + b);
            for (int i = 0; i < dim; i++) {
                assertEquals(table.values()[token * dim + i], x.get(b * dim + i), 0f, type + " row " + b + " element " + i);
            }
        }
    }

    @Test
    void normRoundGatherEmbedAndArgmaxPerRow() {
        SplittableRandom r = new SplittableRandom(5);
        IntArray meta = meta();
        int n = 6, dim = 96 + 5;
        float[] x = randomFloats(r, n * dim, 3), w = randomFloats(r, dim, 1);
        float[] vec = new float[3 + dim + 1];
        System.arraycopy(w, 0, vec, 3, dim);
        vec[3 + dim] = 1e-5f;
        FloatArray xa = fa(x), va = fa(vec), out = new FloatArray(n * dim), normRounded = new FloatArray(n * dim), rounded = new FloatArray(n * dim);
        WorkGroupEmulator.run(BatchLayout.MAX_ROWS * 32, 32, ctx -> BatchKernels.rmsNorm(ctx, xa, va, out, normRounded, meta, BatchLayout.ROWS, dim, 3,
                BatchKernels.NORM_ROUND));
        WorkGroupEmulator.run(WorkGroupEmulator.global(dim / 32 + 1, 8), 8, ctx -> BatchKernels.roundQ8(ctx, xa, rounded, meta, BatchLayout.ROWS, dim));
        for (int b = 0; b < n; b++) {
            float[] xb = java.util.Arrays.copyOfRange(x, b * dim, (b + 1) * dim);
            float[] e = References.rmsNorm(xb, w, 1e-5f), q = References.roundQ8(xb);
            float[] nq = References.roundQ8(java.util.Arrays.copyOfRange(floats(out), b * dim, (b + 1) * dim));
            for (int i = 0; i < dim; i++) {
                assertEquals(e[i], out.get(b * dim + i), 1e-5 * Math.max(1, Math.abs(e[i])), "norm row " + b);
                assertEquals(nq[i], normRounded.get(b * dim + i), 0f, "norm and round row " + b);
                assertEquals(q[i], rounded.get(b * dim + i), 0f, "round row " + b);
            }
        }
        // the output rows gathered by the norm (meta's OUT_ROW: rows 4 and 5)
        FloatArray gnorm = new FloatArray(2 * dim);
        WorkGroupEmulator.run(BatchLayout.MAX_ROWS * 32, 32, ctx -> BatchKernels.rmsNorm(ctx, xa, va, gnorm, normRounded, meta, BatchLayout.OUT_ROWS, dim, 3,
                BatchKernels.NORM_GATHER));
        for (int i = 0; i < 2 * dim; i++) {
            assertEquals(out.get(4 * dim + i), gnorm.get(i), 0f, "gathered norm " + i);
        }
        // a norm pass for tiled passes only writes nothing in a decode-sized pass (the lane products normalise themselves)
        FloatArray skipped = new FloatArray(n * dim), kept = new FloatArray(n * dim);
        WorkGroupEmulator.run(n * 32, 32, ctx -> BatchKernels.rmsNorm(ctx, xa, va, skipped, rounded, meta, BatchLayout.ROWS, dim, 3, BatchKernels.NORM_SKIP_LANES));
        IntArray invariant = GemmKernelsTest.meta(n, BatchLayout.MODE_INVARIANT);
        WorkGroupEmulator.run(n * 32, 32, ctx -> BatchKernels.rmsNorm(ctx, xa, va, kept, rounded, invariant, BatchLayout.ROWS, dim, 3, BatchKernels.NORM_SKIP_LANES));
        assertArrayEquals(new float[n * dim], floats(skipped), 0f);
        assertArrayEquals(floats(out), floats(kept), 0f);
        KernelTestData.Matrix table = matrix(KernelTestData.Type.Q8_0, 16, 96, r);
        FloatArray emb = new FloatArray(n * 96);
        WorkGroupEmulator.run(WorkGroupEmulator.global(96, 32), 32, ctx -> BatchKernels.embedQ8(ctx, (IntArray) table.a(), (FloatArray) table.b(), meta, emb, 96));
        for (int b = 0; b < n; b++) {
            for (int i = 0; i < 96; i++) {
                assertEquals(table.values()[(3 + b) * 96 + i], emb.get(b * 96 + i), 0f, "embedding row " + b);
            }
        }
        int vocab = 1000, groups = 4;
        float[] logits = randomFloats(r, 2 * vocab, 5);
        logits[vocab + 700] = 9f;
        logits[vocab + 3] = 9f; // a tie: the lower index wins
        FloatArray la = fa(logits), pv = new FloatArray(2 * groups), result = new FloatArray(0);
        IntArray pi = new IntArray(2 * groups), ids = new IntArray(2);
        WorkGroupEmulator.run(groups * 64, 64, ctx -> BatchKernels.argmaxPartial(ctx, la, pv, pi, meta, vocab));
        WorkGroupEmulator.run(64, 64, ctx -> BatchKernels.argmaxFinal(ctx, pv, pi, ids, meta, groups));
        assertEquals(References.argmax(java.util.Arrays.copyOf(logits, vocab)), ids.get(0));
        assertEquals(3, ids.get(1));
        assertEquals(0, result.getSize());
    }
}
