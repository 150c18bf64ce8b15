package internlm.engine.sampling;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/** A row sampled elsewhere with the sampler's draw gives the sampler's tokens. */
class RowSamplingTest {
    static final SamplerConfig[] CONFIGS = {
        new SamplerConfig(0.8f, 0, 0.8f, 0f, 1f, 0f, 0f, 64, 1),          // InternLM2 chat
        new SamplerConfig(0.8f, 40, 0.95f, 0.05f, 1.1f, 0f, 0f, 64, 2),    // llama.cpp, repetition penalty
        new SamplerConfig(1.0f, 40, 0.8f, 0f, 1.005f, 0f, 0f, -1, 3),      // InternLM3: penalty over the whole sequence
        new SamplerConfig(0.7f, 0, 1f, 0f, 1.2f, 0.3f, 0.5f, 16, 4),       // frequency and presence
        new SamplerConfig(0f, 0, 1f, 0f, 1.3f, 0.1f, 0f, 8, 5),            // greedy with penalties
    };

    @Test
    void samplingWithTheSamplersDrawGivesTheSamplersTokens() {
        SplittableRandom r = new SplittableRandom(9);
        int vocab = 500;
        for (SamplerConfig c : CONFIGS) {
            Sampler reference = new Sampler(c), drawing = new Sampler(c);
            int[] history = new int[200];
            int len = 0;
            for (int step = 0; step < 150; step++) {
                float[] logits = new float[vocab];
                for (int i = 0; i < vocab; i++) {
                    logits[i] = (float) (r.nextGaussian() * 2);
                }
                history[len++] = r.nextInt(40); // a small set of tokens: the penalties see repeats
                int expect = reference.sample(logits, history, len);
                RowSampling row = RowSampling.of(c, c.greedy() ? 0 : drawing.nextUniform(), history, len);
                assertEquals(expect, row.sample(logits), c + " step " + step);
                // the same from logits a device has penalized (penalties entries applied as a device applies them)
                int[] ids = new int[vocab];
                float[] subs = new float[vocab];
                int n = row.penalties(vocab, ids, subs);
                float[] penalized = logits.clone();
                for (int e = 0; e < n; e++) {
                    float x = penalized[ids[e]];
                    penalized[ids[e]] = (x <= 0 ? x * c.repeatPenalty() : x / c.repeatPenalty()) - subs[e];
                }
                assertEquals(expect, row.samplePenalized(penalized), c + " step " + step + " (penalized elsewhere)");
            }
        }
    }

    @Test
    void theWindowIsTheLastTokensThePenaltiesSee() {
        int[] history = {5, 6, 7, 8, 9, 5};
        SamplerConfig last3 = new SamplerConfig(1f, 0, 1f, 0f, 1.1f, 0f, 0f, 3, 0);
        assertArrayEquals(new int[] {8, 9, 5}, RowSampling.of(last3, 0.5, history, 6).window());
        SamplerConfig all = new SamplerConfig(1f, 0, 1f, 0f, 1.1f, 0f, 0f, -1, 0);
        assertArrayEquals(history, RowSampling.of(all, 0.5, history, 6).window());
        SamplerConfig none = new SamplerConfig(1f, 0, 1f, 0f, 1f, 0f, 0f, -1, 0);
        assertEquals(0, RowSampling.of(none, 0.5, history, 6).window().length);
        // distinct tokens with count · frequency + presence; what does not fit is counted
        SamplerConfig fp = new SamplerConfig(1f, 0, 1f, 0f, 1f, 0.25f, 1f, -1, 0);
        int[] ids = new int[2];
        float[] subs = new float[2];
        assertEquals(5, RowSampling.of(fp, 0.5, history, 6).penalties(400, ids, subs));
        assertArrayEquals(new int[] {5, 6}, ids);
        assertArrayEquals(new float[] {1.5f, 1.25f}, subs);
        assertThrows(IllegalArgumentException.class, () -> new RowSampling(fp, 1.0, history));
    }
}
