package internlm.engine;

import internlm.engine.generate.Session;
import internlm.engine.model.Backend;
import internlm.engine.model.Batch;
import internlm.engine.model.Rope;
import internlm.loader.ModelConfig;
import internlm.loader.Progress;
import internlm.loader.gguf.GgmlType;
import internlm.loader.synthetic.SyntheticGguf;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Batch invariance of the CPU backend: a row's outputs (logits, hidden state, argmax) are bit-identical whatever the
 * batch around it — the other sequences in it and their positions, prompt chunks next to decode rows, how its own
 * prompt was cut into chunks, a batch wider than the backend's internal sub-batch, a prefix reused from an earlier
 * request. The reference for every row is the same sequence run alone, one row per forward pass (the plainest
 * evaluation there is); the compared runs mix the sequences in seeded random batch compositions.
 */
class BatchInvarianceTest {
    @TempDir
    Path tmp;

    /** One sequence's script: its tokens, and the RoPE base of each position as a Session would choose it. */
    private record Script(int[] tokens, double[] bases) {
        /** A prompt of {@code prompt} tokens (one evaluation: the base of its length), then decode tokens one by one. */
        static Script of(ModelConfig c, int prompt, int decoded, long seed) {
            SplittableRandom r = new SplittableRandom(seed);
            int n = prompt + decoded;
            int[] t = new int[n];
            double[] b = new double[n];
            for (int i = 0; i < n; i++) {
                t[i] = 3 + r.nextInt(c.vocabSize() - 3);
                b[i] = Rope.base(c, i < prompt ? prompt : i + 1);
            }
            return new Script(t, b);
        }
    }

    /** What a row produced: logits, or the hidden state. */
    private static Map<String, float[]> run(Backend backend, List<Script> scripts, long compositionSeed, int capacity) {
        int vocab = backend.vocabularySize();
        Map<String, float[]> outs = new HashMap<>();
        List<Backend.Sequence> seqs = new ArrayList<>();
        try {
            for (int s = 0; s < scripts.size(); s++) {
                seqs.add(backend.openSequence(capacity));
            }
            int[] done = new int[scripts.size()];
            SplittableRandom r = compositionSeed < 0 ? null : new SplittableRandom(compositionSeed);
            Batch batch = new Batch();
            List<String> keys = new ArrayList<>();
            List<float[]> dests = new ArrayList<>();
            while (true) {
                batch.clear();
                keys.clear();
                dests.clear();
                // sequences in a random order, each with a random chunk of what it has left (reference: one row of one sequence)
                List<Integer> order = new ArrayList<>();
                for (int s = 0; s < scripts.size(); s++) {
                    if (done[s] < scripts.get(s).tokens().length) {
                        order.add(s);
                    }
                }
                if (order.isEmpty()) {
                    break;
                }
                if (r == null) {
                    order = List.of(order.get(0));
                } else {
                    java.util.Collections.shuffle(order, new java.util.Random(r.nextLong()));
                    if (order.size() > 1 && r.nextInt(4) == 0) {
                        order = order.subList(0, 1 + r.nextInt(order.size() - 1)); // some sequences sit this step out
                    }
                }
                for (int s : order) {
                    Script sc = scripts.get(s);
                    int left = sc.tokens().length - done[s];
                    int n = r == null ? 1 : 1 + r.nextInt(Math.min(left, r.nextInt(3) == 0 ? 160 : 12));
                    for (int i = 0; i < n; i++) {
                        int pos = done[s] + i;
                        // every row asks for logits, except some that ask for the hidden state
                        boolean hidden = pos % 5 == 3;
                        float[] d = new float[hidden ? backend.hiddenSize() : vocab];
                        batch.add(seqs.get(s), pos, sc.tokens()[pos], sc.bases()[pos], hidden ? Batch.Output.HIDDEN : Batch.Output.LOGITS, d);
                        keys.add(s + ":" + pos);
                        dests.add(d);
                    }
                    done[s] += n;
                }
                backend.forward(batch);
                for (int i = 0; i < keys.size(); i++) {
                    outs.put(keys.get(i), dests.get(i));
                }
            }
        } finally {
            seqs.forEach(Backend.Sequence::close);
        }
        return outs;
    }

    private static void assertSameBits(Map<String, float[]> ref, Map<String, float[]> got, String what) {
        assertEquals(ref.keySet(), got.keySet());
        for (Map.Entry<String, float[]> e : ref.entrySet()) {
            float[] a = e.getValue(), b = got.get(e.getKey());
            for (int i = 0; i < a.length; i++) {
                if (Float.floatToRawIntBits(a[i]) != Float.floatToRawIntBits(b[i])) {
                    fail(what + ": row " + e.getKey() + " output " + i + " differs: " + a[i] + " alone, " + b[i] + " in a batch");
                }
            }
        }
    }

    private static void check(Engine e, int[][] shapes, String what) {
        ModelConfig c = e.config();
        List<Script> scripts = new ArrayList<>();
        for (int i = 0; i < shapes.length; i++) {
            scripts.add(Script.of(c, shapes[i][0], shapes[i][1], 17L * i + 5));
        }
        Map<String, float[]> alone = run(e.backend(), scripts, -1, 256);
        for (long seed = 1; seed <= 3; seed++) {
            assertSameBits(alone, run(e.backend(), scripts, seed, 256), what + ", batch composition " + seed);
        }
    }

    private Engine synthetic(GgmlType type, int heads, int kvHeads, int ffn) throws Exception {
        Path p = tmp.resolve("m-" + type + "-" + heads + "-" + kvHeads + ".gguf");
        new SyntheticGguf(SyntheticGguf.Spec.internlm2(256, 2, heads, kvHeads, ffn, type, 7)).write(p);
        return Engine.load(p, new Engine.Options("cpu", 2, null, true), Progress.NONE);
    }

    /** Every weight type; the FFN is wider than a column chunk (2048), so the down projection sums two chunks. */
    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"F32", "F16", "BF16", "Q8_0", "Q4_0"})
    void everyWeightType(GgmlType type) throws Exception {
        try (Engine e = synthetic(type, 4, 2, 2112)) {
            // prompts of 30, 7 and 150 tokens (wider than the backend's 128-row sub-batch) with decode steps after
            check(e, new int[][] {{30, 6}, {7, 9}, {150, 3}}, type.toString());
        }
    }

    @Test
    void groupedQueryAttention16To1() throws Exception {
        try (Engine e = synthetic(GgmlType.Q8_0, 16, 1, 512)) {
            assertEquals(16, e.config().heads() / e.config().kvHeads());
            check(e, new int[][] {{25, 5}, {3, 12}, {40, 4}, {1, 8}}, "GQA 16:1");
        }
    }

    /**
     * Sequences holding the same prompt prefix (the server's chats with one system prompt) read it from one cache for
     * all their rows in a batch: every row still gets the bits it gets alone — prompts that share 40 of 45 tokens, two
     * identical prompts (the whole history shared), and one diverging inside the first block.
     */
    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q8_0", "F16"})
    void sequencesSharingAPrefix(GgmlType type) throws Exception {
        try (Engine e = synthetic(type, 4, 2, 512)) {
            ModelConfig c = e.config();
            Script base = Script.of(c, 45, 8, 99);
            List<Script> scripts = new ArrayList<>();
            for (int i = 0; i < 4; i++) {
                Script s = Script.of(c, 45, 8, 100 + i);
                int keep = i == 3 ? 5 : i == 2 ? 45 : 40;
                System.arraycopy(base.tokens(), 0, s.tokens(), 0, keep);
                if (i == 2) {
                    System.arraycopy(base.tokens(), 0, s.tokens(), 0, s.tokens().length);
                }
                scripts.add(s);
            }
            scripts.add(base);
            Map<String, float[]> alone = run(e.backend(), scripts, -1, 256);
            for (long seed = 1; seed <= 3; seed++) {
                assertSameBits(alone, run(e.backend(), scripts, seed, 256), "shared prefixes, batch composition " + seed);
            }
        }
    }

    /** The half-precision KV cache (--kv-cache f16): GQA 2:1, a prompt wider than a 128-row sub-batch. */
    @Test
    void halfPrecisionKvCache() throws Exception {
        Path p = tmp.resolve("m-f16kv.gguf");
        new SyntheticGguf(SyntheticGguf.Spec.internlm2(256, 2, 4, 2, 512, GgmlType.Q8_0, 7)).write(p);
        try (Engine e = Engine.load(p, new Engine.Options("cpu", 2, null, true, 0, true, false, null, 1), Progress.NONE)) {
            assertTrue(e.backend().description().contains("f16 KV"), e.backend().description());
            check(e, new int[][] {{30, 6}, {7, 9}, {150, 3}}, "f16 KV cache");
        }
    }

    /** Window of 16 with dynamic NTK: prompts inside and beyond it, decode crossing it, chunks straddling it. */
    @Test
    void chunksCrossingTheDynamicNtkWindow() throws Exception {
        try (Engine e = Engine.load(DynamicNtkCheck.writeModel(tmp), new Engine.Options("cpu", 2, null, true), Progress.NONE)) {
            assertEquals(16, e.config().contextLength());
            check(e, new int[][] {{12, 10}, {24, 4}, {16, 3}, {40, 2}}, "dynamic NTK");
        }
    }

    /** Through a session: a prompt evaluated after an earlier request left a reusable prefix equals a fresh one. */
    @Test
    void reusedPrefixGivesTheSameLogitsAsAFreshEvaluation() throws Exception {
        try (Engine e = synthetic(GgmlType.Q8_0, 4, 2, 512)) {
            SplittableRandom r = new SplittableRandom(3);
            int[] first = new int[45], second = new int[60];
            for (int i = 0; i < second.length; i++) {
                second[i] = 3 + r.nextInt(250);
            }
            System.arraycopy(second, 0, first, 0, 40); // 40 tokens in common, then different
            for (int i = 40; i < first.length; i++) {
                first[i] = 3 + r.nextInt(250);
            }
            float[] fresh;
            try (Session s = e.newSession(128)) {
                fresh = s.prefill(second).clone();
            }
            try (Session s = e.newSession(128)) {
                s.prefill(first);
                assertEquals(40, s.reusablePrefix(second));
                float[] reused = s.prefill(second);
                for (int i = 0; i < fresh.length; i++) {
                    assertEquals(Float.floatToRawIntBits(fresh[i]), Float.floatToRawIntBits(reused[i]), "logit " + i);
                }
            }
        }
    }
}
