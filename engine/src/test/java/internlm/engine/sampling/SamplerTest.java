package internlm.engine.sampling;

import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.*;

class SamplerTest {
    private static final float[] LOGITS = {1.0f, 3.0f, 2.5f, -1f, 3.0f, 0.5f};

    private static SamplerConfig cfg(float temp, int k, float p, float minP, float rep, long seed) {
        return new SamplerConfig(temp, k, p, minP, rep, 0f, 0f, 64, seed);
    }

    @Test
    void greedyTakesTheFirstMaximum() {
        assertEquals(1, new Sampler(SamplerConfig.GREEDY).sample(LOGITS, new int[0], 0));
    }

    @Test
    void sameSeedSameTokens() {
        int[] a = draw(cfg(1f, 0, 1f, 0f, 1f, 7), 200), b = draw(cfg(1f, 0, 1f, 0f, 1f, 7), 200), c = draw(cfg(1f, 0, 1f, 0f, 1f, 8), 200);
        assertArrayEquals(a, b);
        assertFalse(Arrays.equals(a, c));
    }

    private static int[] draw(SamplerConfig c, int n) {
        Sampler s = new Sampler(c);
        int[] out = new int[n];
        for (int i = 0; i < n; i++) {
            out[i] = s.sample(LOGITS, new int[0], 0);
        }
        return out;
    }

    @Test
    void frequenciesFollowTheSoftmax() {
        int n = 200_000;
        int[] counts = new int[LOGITS.length];
        for (int t : draw(cfg(0.7f, 0, 1f, 0f, 1f, 1), n)) {
            counts[t]++;
        }
        double z = 0;
        for (float l : LOGITS) {
            z += Math.exp(l / 0.7);
        }
        for (int i = 0; i < LOGITS.length; i++) {
            double p = Math.exp(LOGITS[i] / 0.7) / z;
            double sd = Math.sqrt(n * p * (1 - p));
            assertEquals(n * p, counts[i], 5 * sd + 1, "token " + i);
        }
    }

    @Test
    void topKTopPAndMinPRestrictCandidates() {
        for (int t : draw(cfg(5f, 2, 1f, 0f, 1f, 3), 2000)) {
            assertTrue(t == 1 || t == 4, "top-k 2 keeps the two best: " + t);
        }
        // probabilities (T=1): 1 and 4 ≈ 0.36 each, 2 ≈ 0.22 → top-p 0.5 keeps {1, 4}
        for (int t : draw(cfg(1f, 0, 0.5f, 0f, 1f, 3), 2000)) {
            assertTrue(t == 1 || t == 4, "top-p: " + t);
        }
        // min-p 0.5: keep tokens with p ≥ 0.5·p_max, i.e. logit ≥ 3 + ln 0.5 ≈ 2.31 → {1, 4, 2}
        for (int t : draw(cfg(1f, 0, 1f, 0.5f, 1f, 3), 2000)) {
            assertTrue(t == 1 || t == 4 || t == 2, "min-p: " + t);
        }
    }

    @Test
    void repetitionPenaltyDemotesSeenTokens() {
        Sampler s = new Sampler(cfg(0f, 0, 1f, 0f, 2f, 0));
        // 1 and 4 tie at 3.0; penalising 1 (3/2 = 1.5) and 4 makes 2 (2.5) the greedy choice
        assertEquals(2, s.sample(LOGITS, new int[] {1, 4}, 2));
        // negative logits are multiplied: penalising 3 makes it even smaller
        float[] l = {-1f, -1.5f};
        assertEquals(1, new Sampler(cfg(0f, 0, 1f, 0f, 2f, 0)).sample(l, new int[] {0}, 1));
    }

    @Test
    void topIndicesAreOrdered() {
        assertArrayEquals(new int[] {1, 4, 2}, Sampler.topIndices(LOGITS, 3));
        assertArrayEquals(new int[] {1, 4, 2, 0, 5, 3}, Sampler.topIndices(LOGITS, 6));
    }

    @Test
    void fullSortMatchesTheComparatorOrder() {
        java.util.SplittableRandom r = new java.util.SplittableRandom(5);
        float[] v = new float[5000];
        for (int i = 0; i < v.length; i++) {
            v[i] = switch (r.nextInt(5)) {
                case 0 -> Float.NEGATIVE_INFINITY;
                case 1 -> r.nextInt(7) - 3f; // ties
                case 2 -> r.nextBoolean() ? 0f : -0f;
                default -> (float) r.nextGaussian() * 100f;
            };
        }
        Integer[] expected = new Integer[v.length];
        for (int i = 0; i < v.length; i++) {
            expected[i] = i;
        }
        java.util.Arrays.sort(expected, (a, b) -> v[a] != v[b] ? Float.compare(v[b], v[a]) : Integer.compare(a, b));
        assertArrayEquals(java.util.Arrays.stream(expected).mapToInt(Integer::intValue).toArray(), Sampler.topIndices(v, v.length));
    }

    @Test
    void maskedTokensAreNeverSampled() {
        float[] l = {5f, 1f, 4f, 3f, 2f, 0f};
        long[] allowed = {(1L << 1) | (1L << 4)};
        for (SamplerConfig sc : new SamplerConfig[] {SamplerConfig.GREEDY, new SamplerConfig(1f, 3, 0.95f, 0f, 1f, 0f, 0f, 64, 1),
                new SamplerConfig(2f, 0, 1f, 0f, 1f, 0f, 0f, 64, 2)}) {
            Sampler s = new Sampler(sc);
            for (int i = 0; i < 200; i++) {
                int t = s.sample(l, new int[0], 0, allowed);
                assertTrue(t == 1 || t == 4, "token " + t);
            }
        }
    }

    @Test
    void invalidSettingsAreRejected() {
        assertThrows(IllegalArgumentException.class, () -> cfg(-1f, 0, 1f, 0f, 1f, 0));
        assertThrows(IllegalArgumentException.class, () -> cfg(1f, 0, 1.5f, 0f, 1f, 0));
        assertThrows(IllegalArgumentException.class, () -> cfg(1f, 0, 1f, 0f, 0f, 0));
    }
}
