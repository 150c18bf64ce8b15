package internlm.engine.tornado;

import internlm.engine.Engine;
import internlm.engine.model.Backend;
import internlm.engine.model.Batch;
import internlm.engine.model.Rope;
import internlm.engine.sampling.Sampler;
import internlm.loader.ModelConfig;
import internlm.loader.Progress;
import internlm.loader.gguf.GgmlType;
import internlm.loader.synthetic.SyntheticGguf;
import internlm.loader.synthetic.SyntheticGguf.Spec;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Batched forward passes on TornadoVM against the same rows run one at a time (on the same backend) and against the
 * CPU backend running the same batches: mixed batches of several sequences at different positions, prompt chunks next
 * to decode rows, several output rows per batch, every weight type, GQA 16:1, an F16 KV cache, a chunk crossing the
 * dynamic-NTK window, batches split into passes, and bit-for-bit batch invariance in the invariant mode. Runs only
 * under TornadoVM (skipped otherwise, like {@link TornadoBackendTest}).
 */
class TornadoBatchTest {
    @TempDir
    Path tmp;

    /** Per test, so that without TornadoVM every test is reported as skipped (an assumption in @BeforeAll reports none). */
    @BeforeEach
    void needsTornado() {
        assumeTrue(TornadoSupport.available(), "TornadoVM is not available in this JVM");
    }

    /** A row of a scripted batch: sequence index, position, token, output kind. */
    record Row(int seq, int pos, int token, Batch.Output out) {}

    /**
     * Four batches over three sequences (positions 0..15, 0..5, 0..2): the first (13 rows) runs the tiled products, the
     * others (at most 8 rows) the lane products.
     */
    static List<List<Row>> script() {
        List<List<Row>> s = new ArrayList<>();
        List<Row> b1 = new ArrayList<>();
        for (int p = 0; p < 12; p++) {
            b1.add(new Row(0, p, 30 + p, p == 11 ? Batch.Output.LOGITS : Batch.Output.NONE)); // a prompt chunk
        }
        b1.add(new Row(1, 0, 1, Batch.Output.LOGITS));
        s.add(b1);
        List<Row> b2 = new ArrayList<>();
        for (int p = 1; p < 5; p++) {
            b2.add(new Row(1, p, 60 + 7 * p, Batch.Output.LOGITS)); // a chunk with logits for every row
        }
        b2.add(new Row(0, 12, 44, Batch.Output.LOGITS)); // a decode row
        for (int p = 0; p < 3; p++) {
            b2.add(new Row(2, p, 90 + p, p == 2 ? Batch.Output.LOGITS : Batch.Output.NONE));
        }
        s.add(b2);
        s.add(List.of(new Row(0, 13, 45, Batch.Output.ARGMAX), new Row(1, 5, 46, Batch.Output.ARGMAX)));
        s.add(List.of(new Row(0, 14, 47, Batch.Output.LOGITS), new Row(0, 15, 48, Batch.Output.LOGITS)));
        return s;
    }

    /** The RoPE base of a row as a session computes it: for the length its sequence reaches in that batch. */
    static double base(ModelConfig c, List<Row> batch, Row r) {
        int end = 0;
        for (Row o : batch) {
            if (o.seq() == r.seq()) {
                end = Math.max(end, o.pos() + 1);
            }
        }
        return Rope.base(c, end);
    }

    /** Results of a run: logits per (sequence, position) and argmax per (sequence, position). */
    record Results(Map<Long, float[]> logits, Map<Long, Integer> argmax) {}

    static long key(int seq, int pos) {
        return (long) seq << 32 | pos;
    }

    /** Runs the script batch by batch. */
    static Results batched(Backend backend, ModelConfig c, List<List<Row>> script) {
        Results res = new Results(new HashMap<>(), new HashMap<>());
        Backend.Sequence[] seqs = {backend.openSequence(64), backend.openSequence(64), backend.openSequence(64)};
        try {
            for (List<Row> rows : script) {
                Batch b = new Batch();
                for (Row r : rows) {
                    b.add(seqs[r.seq()], r.pos(), r.token(), base(c, rows, r), r.out(), r.out() == Batch.Output.LOGITS ? new float[c.vocabSize()] : null);
                }
                backend.forward(b);
                collect(b, rows, res);
            }
        } finally {
            for (Backend.Sequence s : seqs) {
                s.close();
            }
        }
        return res;
    }

    /** Runs the same rows one at a time, one sequence after the other, each with the base it had in its batch. */
    static Results unbatched(Backend backend, ModelConfig c, List<List<Row>> script) {
        Results res = new Results(new HashMap<>(), new HashMap<>());
        for (int seq = 0; seq < 3; seq++) {
            try (Backend.Sequence s = backend.openSequence(64)) {
                for (List<Row> rows : script) {
                    for (Row r : rows) {
                        if (r.seq() == seq) {
                            Batch b = new Batch(1);
                            b.add(s, r.pos(), r.token(), base(c, rows, r), r.out(), r.out() == Batch.Output.LOGITS ? new float[c.vocabSize()] : null);
                            backend.forward(b);
                            collect(b, List.of(r), res);
                        }
                    }
                }
            }
        }
        return res;
    }

    private static void collect(Batch b, List<Row> rows, Results res) {
        for (int i = 0; i < b.size(); i++) {
            Row r = rows.get(i);
            if (r.out() == Batch.Output.LOGITS) {
                res.logits().put(key(r.seq(), r.pos()), b.destination(i).clone());
                res.argmax().put(key(r.seq(), r.pos()), b.argmax(i));
            } else if (r.out() == Batch.Output.ARGMAX) {
                res.argmax().put(key(r.seq(), r.pos()), b.argmax(i));
            }
        }
    }

    /** Every output of {@code got} against {@code want}: logits within tol (0: identical), argmax equal unless a near-tie. */
    static void same(Results want, Results got, double relTol, boolean checkArgmaxAgainstLogits, String what) {
        assertEquals(want.argmax().keySet(), got.argmax().keySet(), what + ": outputs");
        for (var e : want.logits().entrySet()) {
            float[] w = e.getValue(), g = got.logits().get(e.getKey());
            double scale = 1;
            for (float v : w) {
                scale = Math.max(scale, Math.abs(v));
            }
            double tol = relTol * scale;
            String at = what + ": sequence " + (e.getKey() >> 32) + " position " + (int) (long) e.getKey();
            for (int t = 0; t < w.length; t++) {
                assertTrue(Float.isFinite(g[t]), at + " logit " + t + " not finite");
                if (relTol == 0) {
                    assertEquals(w[t], g[t], 0f, at + " logit " + t + " (bit for bit)");
                } else {
                    assertEquals(w[t], g[t], tol, at + " logit " + t);
                }
            }
            int[] top = Sampler.topIndices(w, 2);
            if (w[top[0]] - w[top[1]] >= 2 * tol) {
                assertEquals(Sampler.argmax(w), (int) got.argmax().get(e.getKey()), at + " greedy id");
            }
        }
        for (var e : want.argmax().entrySet()) {
            if (!want.logits().containsKey(e.getKey()) || relTol == 0) {
                assertEquals(e.getValue(), got.argmax().get(e.getKey()), what + ": argmax of sequence " + (e.getKey() >> 32) + " position " + (int) (long) e.getKey());
            }
        }
    }

    static Engine load(Path p, String backend, boolean kvF16, boolean round, int sequences) {
        return Engine.load(p, new Engine.Options(backend, 2, System.getProperty("internlm.test.device"), round, 64, kvF16, false, null, sequences), Progress.NONE);
    }

    /** The script on one model: batched = unbatched on TornadoVM, and batched TornadoVM = batched CPU. */
    void check(Spec spec, boolean kvF16, String what) throws Exception {
        Path p = tmp.resolve(what.replaceAll("[^a-zA-Z0-9]", "_") + ".gguf");
        new SyntheticGguf(spec).write(p);
        check(p, kvF16, what);
    }

    void check(Path p, boolean kvF16, String what) {
        List<List<Row>> script = script();
        try (Engine gpu = load(p, "tornado", kvF16, false, 4); Engine cpu = load(p, "cpu", false, false, 4)) {
            boolean quantized = gpu.model().tensors().values().stream().anyMatch(t -> t.type() == GgmlType.Q8_0 || t.type() == GgmlType.Q4_0);
            double tol = quantized ? 3e-3 : 2e-4;
            Results b = batched(gpu.backend(), gpu.config(), script);
            Results u = unbatched(gpu.backend(), gpu.config(), script);
            same(u, b, tol, true, what + ", TornadoVM batched vs one row at a time");
            Results cb = batched(cpu.backend(), cpu.config(), script);
            same(cb, b, kvF16 ? 0.02 : tol, true, what + ", TornadoVM batched vs CPU batched");
        }
    }

    @Test
    void everyWeightTypeInMixedBatches() throws Exception {
        check(new Spec("llama", 64, 2, 4, 2, 32, 96, 512, 1e4, 1e-6f, GgmlType.F32, true, 1), false, "F32, head_dim != dim/heads, v1 biases");
        check(new Spec("llama", 64, 2, 8, 1, 0, 128, 512, 1e6, 1e-5f, GgmlType.F16, false, 4), false, "F16 8:1");
        check(new Spec("internlm2", 64, 2, 4, 4, 0, 128, 512, 1e6, 1e-5f, GgmlType.BF16, false, 5), false, "BF16");
        check(new Spec("internlm2", 96, 2, 6, 3, 0, 224, 512, 1e6, 1e-5f, GgmlType.Q4_0, false, 3), false, "Q4_0");
    }

    @Test
    void gqa16To1Q8() throws Exception {
        check(new Spec("internlm2", 128, 2, 16, 1, 0, 160, 512, 5e7, 1e-5f, GgmlType.Q8_0, false, 2), false, "Q8_0 16:1 GQA");
    }

    @Test
    void halfPrecisionKvCache() throws Exception {
        check(new Spec("internlm2", 64, 2, 4, 2, 0, 128, 512, 1e6, 1e-5f, GgmlType.F32, false, 6), true, "F32 weights, F16 KV cache");
    }

    @Test
    void chunkCrossingTheDynamicNtkWindow() throws Exception {
        // trained window of 8: sequence 0's first chunk (12 rows) already ends past it; sequence 2's 12-row chunk crosses it
        // next to sequence 1's rows (17 rows: the tiled products)
        Path p = tmp.resolve("ntk.gguf");
        new SyntheticGguf(new Spec("internlm2", 64, 2, 4, 2, 0, 128, 8, 1e4, 1e-5f, GgmlType.F32, false, 9))
                .metadata("internlm2.rope.scaling.type", "dynamic").metadata("internlm2.rope.scaling.factor", 2.0f).write(p);
        List<List<Row>> script = script();
        List<Row> crossing = new ArrayList<>();
        for (int pos = 0; pos < 12; pos++) {
            crossing.add(new Row(2, pos, 100 + pos, pos == 11 ? Batch.Output.LOGITS : Batch.Output.NONE)); // 0..11 in one chunk: base for 12
        }
        script.set(1, new ArrayList<>(script.get(1).subList(0, 5)));
        script.get(1).addAll(crossing);
        try (Engine gpu = load(p, "tornado", false, false, 4); Engine cpu = load(p, "cpu", false, false, 4)) {
            assertNotEquals(gpu.config().ropeTheta(), Rope.base(gpu.config(), 12), "the chunk's base is rescaled");
            Results b = batched(gpu.backend(), gpu.config(), script);
            same(unbatched(gpu.backend(), gpu.config(), script), b, 2e-4, true, "dynamic NTK, TornadoVM batched vs one row at a time");
            same(batched(cpu.backend(), cpu.config(), script), b, 2e-4, true, "dynamic NTK, TornadoVM vs CPU");
        }
    }

    @Test
    void batchesLargerThanOnePassSplitIntoPasses() throws Exception {
        Path p = tmp.resolve("split.gguf");
        new SyntheticGguf(new Spec("internlm2", 64, 2, 4, 2, 0, 128, 512, 1e6, 1e-5f, GgmlType.Q8_0, false, 12)).write(p);
        System.setProperty("internlm.tornado.batch", "3");
        // and one layer per forward graph: the residual stream crosses graphs (persist/consume), as on a runtime whose
        // bytecode buffer holds one layer only
        System.setProperty("internlm.tornado.layersPerGraph", "1");
        try {
            check(p, false, "Q8_0 in passes of 3 rows, one graph per layer");
        } finally {
            System.clearProperty("internlm.tornado.batch");
            System.clearProperty("internlm.tornado.layersPerGraph");
        }
    }

    @Test
    void invariantModeGivesTheSameFloatsWhateverTheBatch() throws Exception {
        Path p = tmp.resolve("inv.gguf");
        new SyntheticGguf(new Spec("internlm2", 128, 2, 8, 2, 0, 192, 512, 1e6, 1e-5f, GgmlType.Q8_0, false, 13)).write(p);
        System.setProperty("internlm.tornado.batchInvariant", "true");
        try (Engine gpu = load(p, "tornado", false, true, 4)) {
            List<List<Row>> script = script();
            same(unbatched(gpu.backend(), gpu.config(), script), batched(gpu.backend(), gpu.config(), script), 0, true, "batch-invariant mode, llama.cpp activation rounding");
        } finally {
            System.clearProperty("internlm.tornado.batchInvariant");
        }
    }

    @Test
    void sequenceSlotsAreLimitedAndReused() throws Exception {
        Path p = tmp.resolve("slots.gguf");
        new SyntheticGguf(Spec.internlm2(64, 1, 4, 2, 128, GgmlType.F32, 14)).write(p);
        try (Engine gpu = load(p, "tornado", false, false, 2)) {
            Backend b = gpu.backend();
            assertEquals(2, b.maxSequences());
            Backend.Sequence s1 = b.openSequence(64), s2 = b.openSequence(32);
            assertThrows(IllegalStateException.class, () -> b.openSequence(16));
            assertThrows(IllegalArgumentException.class, () -> b.openSequence(65));
            s1.close();
            Backend.Sequence s3 = b.openSequence(64);
            Batch batch = new Batch();
            batch.add(s1, 0, 5, gpu.config().ropeTheta(), Batch.Output.ARGMAX, null);
            assertThrows(IllegalArgumentException.class, () -> b.forward(batch), "a closed sequence's rows are refused");
            s2.close();
            s3.close();
        }
    }
}
