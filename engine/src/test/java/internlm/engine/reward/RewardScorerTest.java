package internlm.engine.reward;

import internlm.engine.Engine;
import internlm.engine.Fixtures;
import internlm.engine.ReferenceForward;
import internlm.engine.chat.ChatMessage;
import internlm.engine.generate.Session;
import internlm.loader.LoadedModel;
import internlm.loader.ModelFormatException;
import internlm.loader.Progress;
import internlm.loader.gguf.GgmlType;
import internlm.loader.gguf.GgufModelLoader;
import internlm.loader.synthetic.SyntheticGguf;
import internlm.loader.TensorData;
import internlm.loader.quant.Quants;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/**
 * InternLM2-Reward scoring on a synthetic reward model (random F32 weights, a vocabulary holding the reward token
 * {@code [UNUSED_TOKEN_130]}, a random {@code v_head.weight}) against an independent float64 computation: the test's
 * reference forward pass gives the final-normed hidden state at the last position, dotted with v_head.
 */
class RewardScorerTest {
    @TempDir
    Path tmp;

    static final List<ChatMessage> GOOD = List.of(ChatMessage.user("What is 2+2?"), ChatMessage.assistant("4"));
    static final List<ChatMessage> BAD = List.of(ChatMessage.user("What is 2+2?"), ChatMessage.assistant("5, obviously"));

    /** Writes a reward model: InternLM2 shape, F32, reward token in the vocabulary, v_head {dim, 1}. */
    static Path rewardModel(Path dir, String name, boolean withToken, long[] headDims) throws Exception {
        SyntheticGguf.Spec spec = SyntheticGguf.Spec.internlm2(64, 2, 4, 2, 96, GgmlType.F32, 77);
        SyntheticGguf g = new SyntheticGguf(spec);
        if (withToken) {
            g.extraToken(RewardScorer.REWARD_TOKEN, 5);
        }
        int n = (int) (headDims[0] * (headDims.length > 1 ? headDims[1] : 1));
        float[] head = new float[n];
        SplittableRandom r = new SplittableRandom(5);
        for (int i = 0; i < n; i++) {
            head[i] = (float) (r.nextDouble() * 2 - 1);
        }
        g.extraTensor(new SyntheticGguf.Tensor("v_head.weight", GgmlType.F32, headDims, head, null));
        Path p = dir.resolve(name);
        g.write(p);
        return p;
    }

    /** The score computed without the engine: float64 forward over every token, final norm, dot v_head. */
    static double referenceScore(LoadedModel m, int[] ids) {
        ReferenceForward ref = new ReferenceForward(m);
        double[] h = null;
        for (int pos = 0; pos < ids.length; pos++) {
            h = ref.forwardHidden(ids[pos], pos, m.config().ropeTheta());
        }
        TensorData t = m.tensor("v_head.weight");
        float[] v = new float[(int) t.elements()];
        Quants.dequantize(t.type(), t.data(), 0, v, 0, v.length);
        double s = 0;
        for (int i = 0; i < v.length; i++) {
            s += v[i] * h[i];
        }
        return s;
    }

    @Test
    void scoresMatchAnIndependentFloat64Computation() throws Exception {
        Path p = rewardModel(tmp, "reward.gguf", true, new long[] {64, 1});
        try (Engine e = Engine.load(p, Engine.Options.cpu(), Progress.NONE); LoadedModel ref = GgufModelLoader.load(p, Progress.NONE)) {
            assertTrue(e.isRewardModel());
            RewardScorer scorer = new RewardScorer(e);
            int[] ids = scorer.encode(GOOD);
            // BOS, the conversation without default system prompt or generation prompt, then the reward token
            assertEquals(e.tokenizer().vocabulary().bos(), ids[0]);
            assertEquals(e.tokenizer().tokenId(RewardScorer.REWARD_TOKEN), ids[ids.length - 1]);
            assertEquals("<s><|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n",
                    // (the synthetic byte-level vocabulary has no ▁ piece, so spaces come back as the ▁ they were escaped to)
                    e.tokenizer().decode(java.util.Arrays.copyOf(ids, ids.length - 1), true).replace('\u2581', ' '));
            double good = scorer.score(GOOD), bad = scorer.score(BAD);
            double refGood = referenceScore(ref, ids), refBad = referenceScore(ref, scorer.encode(BAD));
            assertEquals(refGood, good, 1e-4 * Math.max(1, Math.abs(refGood)));
            assertEquals(refBad, bad, 1e-4 * Math.max(1, Math.abs(refBad)));
            assertNotEquals(good, bad, 1e-3, "different answers, different scores");
            // a session reused across conversations (prefix cache) gives the same scores, up to float rounding: the
            // reused prefix was computed in other batches, and the Vector API's lane reductions may sum in a different
            // order before and after the JIT compiles them (the score is a sum with cancellation; seen: 2.6e-6)
            try (Session s = e.newSession(256)) {
                assertEquals(good, scorer.score(s, GOOD), 2e-5);
                assertEquals(bad, scorer.score(s, BAD), 2e-5);
                assertEquals(good, scorer.score(s, GOOD), 2e-5);
            }
        }
    }

    @Test
    void forwardHiddenIsTheLmHeadInput() throws Exception {
        // F32 fixture: logits = output · hidden, exactly the LM head's product
        try (Engine e = Engine.load(Fixtures.fixture("internlm2-tiny-f32.gguf"), Engine.Options.cpu(), Progress.NONE);
             Session a = e.newSession(32); Session b = e.newSession(32)) {
            int[] ids = {1, 300, 301, 302};
            float[] logits = a.prefill(ids).clone();
            float[] h = b.prefillHidden(ids).clone();
            TensorData out = e.model().tensor("output.weight");
            float[] w = new float[(int) out.elements()];
            Quants.dequantize(out.type(), out.data(), 0, w, 0, w.length);
            int dim = e.config().dim();
            for (int v = 0; v < e.config().vocabSize(); v++) {
                double s = 0;
                for (int i = 0; i < dim; i++) {
                    s += w[v * dim + i] * h[i];
                }
                assertEquals(s, logits[v], 1e-3, "logit " + v);
            }
        }
    }

    @Test
    void clearErrorsForModelsThatCannotScore() throws Exception {
        try (Engine e = Engine.load(Fixtures.fixture("internlm2-tiny-q8_0.gguf"), Engine.Options.cpu(), Progress.NONE)) {
            assertFalse(e.isRewardModel());
            IllegalArgumentException x = assertThrows(IllegalArgumentException.class, () -> new RewardScorer(e));
            assertTrue(x.getMessage().contains("no reward head (tensor v_head.weight)"), x.getMessage());
        }
        Path noToken = rewardModel(tmp, "notoken.gguf", false, new long[] {64, 1});
        try (Engine e = Engine.load(noToken, Engine.Options.cpu(), Progress.NONE)) {
            IllegalArgumentException x = assertThrows(IllegalArgumentException.class, () -> new RewardScorer(e));
            assertTrue(x.getMessage().contains("no [UNUSED_TOKEN_130] token"), x.getMessage());
        }
        Path wrongHead = rewardModel(tmp, "wronghead.gguf", true, new long[] {32, 2});
        ModelFormatException x = assertThrows(ModelFormatException.class, () -> Engine.load(wrongHead, Engine.Options.cpu(), Progress.NONE));
        assertTrue(x.getMessage().contains("'v_head.weight' has dims [32, 2], a reward head needs [64, 1]"), x.getMessage());
    }
}
