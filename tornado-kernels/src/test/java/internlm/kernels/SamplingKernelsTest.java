package internlm.kernels;

import org.junit.jupiter.api.Test;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Device sampling on the work-group emulator against the double-precision chain in {@link References}: the same id
 * for the same uniform draw on many rows and settings (a differing id only where the reference's decision lies within
 * float rounding of a boundary), penalties bit for bit, the fallback where no bounded candidate set exists, and the
 * empirical distribution of many draws against the exact one (chi-square, fixed seed).
 */
class SamplingKernelsTest {
    /** Settings of one row. */
    record Row(float[] logits, int topK, float topP, float minP, float temperature, double u) {}

    /** Runs the sampling kernel over rows (one work-group of {@code local} each) and returns the ids. */
    static int[] sample(List<Row> rows, int local) {
        return sample(rows, local, SamplingKernels.CANDIDATES);
    }

    /** As {@link #sample(List, int)} with at most {@code candidates} sorted per row. */
    static int[] sample(List<Row> rows, int local, int candidates) {
        int m = rows.size(), n = rows.get(0).logits().length;
        FloatArray logits = new FloatArray(m * n), rf = new FloatArray(m * SamplingKernels.ROW_FLOATS);
        IntArray ri = new IntArray(m * SamplingKernels.ROW_INTS), result = new IntArray(m), meta = GemmKernelsTest.meta(m, 0);
        for (int j = 0; j < m; j++) {
            Row r = rows.get(j);
            for (int i = 0; i < n; i++) {
                logits.set(j * n + i, r.logits()[i]);
            }
            ri.set(j * SamplingKernels.ROW_INTS + SamplingKernels.MODE, SamplingKernels.MODE_DEVICE);
            ri.set(j * SamplingKernels.ROW_INTS + SamplingKernels.TOP_K, r.topK());
            rf.set(j * SamplingKernels.ROW_FLOATS + SamplingKernels.TEMPERATURE, r.temperature());
            rf.set(j * SamplingKernels.ROW_FLOATS + SamplingKernels.TOP_P, r.topP());
            rf.set(j * SamplingKernels.ROW_FLOATS + SamplingKernels.LOG_MIN_P, r.minP() > 0 ? (float) Math.log(r.minP()) : SamplingKernels.NO_MIN_P);
            rf.set(j * SamplingKernels.ROW_FLOATS + SamplingKernels.UNIFORM, (float) r.u());
            result.set(j, -7);
        }
        WorkGroupEmulator.run(m * local, local, ctx -> SamplingKernels.sampleTokens(ctx, logits, ri, rf, result, meta, n, candidates));
        int[] ids = new int[m];
        for (int j = 0; j < m; j++) {
            ids[j] = result.get(j);
        }
        return ids;
    }

    /** Logits shaped like a language model's: a Gaussian body and a few tokens well above it (a peaked distribution). */
    static float[] lmLogits(SplittableRandom r, int n, double sigma, int peaks) {
        float[] l = new float[n];
        for (int i = 0; i < n; i++) {
            l[i] = (float) (gaussian(r) * sigma - 2);
        }
        for (int p = 0; p < peaks; p++) {
            l[r.nextInt(n)] = (float) (sigma * (2 + 4 * r.nextDouble()));
        }
        return l;
    }

    static double gaussian(SplittableRandom r) {
        double u1 = r.nextDouble(), u2 = r.nextDouble();
        return Math.sqrt(-2 * Math.log(1 - u1)) * Math.cos(2 * Math.PI * u2);
    }

    /**
     * Checks ids against the reference: equal, or (at most {@code maxNear} of them) different where the reference's
     * margin is within float rounding. Returns the number of boundary cases.
     */
    static int check(List<Row> rows, int[] ids, int maxNear) {
        int near = 0;
        for (int j = 0; j < rows.size(); j++) {
            Row r = rows.get(j);
            int expect = References.sample(r.logits(), r.topK(), r.topP(), r.minP(), r.temperature(), r.u());
            if (ids[j] != expect) {
                double margin = References.margin(r.logits(), r.topK(), r.topP(), r.minP(), r.temperature(), r.u());
                assertTrue(margin < 1e-5, "row " + j + " (" + r.topK() + ", " + r.topP() + ", " + r.minP() + ", T " + r.temperature() + ", u " + r.u()
                        + "): device " + ids[j] + ", reference " + expect + ", margin " + margin + " is not a rounding boundary");
                near++;
            }
        }
        assertTrue(near <= maxNear, near + " boundary cases");
        return near;
    }

    @Test
    void sameIdsAsTheChainForTheSameDrawAcrossSettings() {
        SplittableRandom rnd = new SplittableRandom(11);
        // {top-k, top-p, min-p, temperature}: InternLM2 chat, llama.cpp defaults, InternLM3, single stages, wide top-k
        float[][] settings = {
            {0, 0.8f, 0, 0.8f}, {40, 0.95f, 0.05f, 0.8f}, {40, 0.8f, 0, 1.0f}, {5, 1, 0, 1.3f}, {0, 1, 0.1f, 0.6f},
            {0, 0.5f, 0, 2.0f}, {300, 0.9f, 0.02f, 0.7f}, {1, 1, 0, 1.0f}, {0, 0.999f, 0, 1.0f}, {0, 1, 1f, 1.0f},
        };
        int total = 0, compared = 0;
        for (int n : new int[] {37, 1000, 6000}) {
            List<Row> rows = new ArrayList<>();
            for (int t = 0; t < 64; t++) {
                float[] s = settings[t % settings.length];
                float[] l = lmLogits(rnd, n, t % 3 == 0 ? 1.0 : 2.5, t % 4);
                rows.add(new Row(l, (int) s[0], s[1], s[2], s[3], rnd.nextDouble()));
            }
            int[] ids = sample(rows, 64);
            List<Row> onDevice = new ArrayList<>();
            int[] deviceIds = new int[ids.length];
            for (int j = 0; j < ids.length; j++) {
                Row r = rows.get(j);
                if (ids[j] == SamplingKernels.FALLBACK) {
                    // only where the chain keeps more than a bounded set can hold (here: a top-p near 1 over 6000 tokens)
                    int keep = References.kept(r.logits(), References.order(r.logits()), r.topK(), r.topP(), r.minP());
                    assertTrue(n > SamplingKernels.CANDIDATES && keep > 1000, "row " + j + " of vocabulary " + n + " (keeps " + keep + ") fell back");
                } else {
                    deviceIds[onDevice.size()] = ids[j];
                    onDevice.add(r);
                }
            }
            assertTrue(onDevice.size() >= 52, onDevice.size() + " of 64 rows sampled on the device (vocabulary " + n + ")");
            total += check(onDevice, Arrays.copyOf(deviceIds, onDevice.size()), 1);
            compared += onDevice.size();
        }
        System.out.println("device sampling (emulated): " + compared + " rows compared, " + total + " boundary cases");
        assertTrue(total <= 1);
    }

    @Test
    void aLargeVocabularyNarrowsTheThresholdOverSeveralLevels() {
        // InternLM2's vocabulary with 20000 tokens packed within ±0.15 of each other at the top: top-p 0.05 keeps about
        // a thousand of them, inside one first-level bin of 20000, so the search narrows it twice or three times
        SplittableRandom rnd = new SplittableRandom(3);
        List<Row> rows = new ArrayList<>();
        for (int t = 0; t < 4; t++) {
            float[] l = new float[92544];
            for (int i = 0; i < l.length; i++) {
                l[i] = (float) (i % 5 == t ? 5 + 0.05 * gaussian(rnd) : -3 + 2 * gaussian(rnd));
            }
            rows.add(new Row(l, t == 3 ? 3000 : 0, t == 3 ? 0.9f : 0.05f, t == 2 ? 0.05f : 0, 0.8f, rnd.nextDouble()));
        }
        rows.add(new Row(lmLogits(rnd, 92544, 3, 2), 0, 0.8f, 0, 0.8f, 0.5)); // peaked: one level
        rows.add(new Row(lmLogits(rnd, 92544, 2, 0), 40, 0.95f, 0.05f, 0.8f, 0.25)); // llama.cpp's defaults
        int[] ids = sample(rows, 256);
        for (int j = 0; j < ids.length; j++) {
            assertNotEquals(SamplingKernels.FALLBACK, ids[j], "row " + j);
        }
        check(rows, ids, 0);
    }

    @Test
    void rowsWithoutABoundedCandidateSetFallBackToTheHost() {
        SplittableRandom rnd = new SplittableRandom(5);
        float[] flat = lmLogits(rnd, 20000, 0.2, 0);
        float[] ties = new float[20000];
        Arrays.fill(ties, 1.5f);
        List<Row> rows = List.of(
                new Row(flat, 0, 1f, 0, 1f, 0.3),            // temperature only: the whole vocabulary is a candidate
                new Row(flat, 0, 0.99f, 0, 1f, 0.3),         // top-p near 1 over a flat distribution
                new Row(flat, 10000, 0.5f, 0, 1f, 0.3),      // top-k above the bound with top-p: the top-k mass is unknown
                new Row(ties, 0, 0.5f, 0, 1f, 0.3),          // 20000 equal logits: no threshold separates them
                new Row(ties, 7, 1f, 0, 1f, 0.9));           // not even for top-k 7 (the host takes the 7 lowest ids)
        int[] ids = sample(rows, 128);
        for (int j = 0; j < rows.size(); j++) {
            assertEquals(SamplingKernels.FALLBACK, ids[j], "row " + j);
        }
    }

    @Test
    void aSmallerBoundOnTheCandidatesFallsBackSooner() {
        float[] l = {0f, 5f, 4.9f, 4.8f, -3f, 1f, 4.7f, 0.5f};
        // top-k 2 fits a bound of 2; top-k 3 and top-p over four near-equal tokens do not
        List<Row> rows = List.of(new Row(l, 2, 1f, 0, 1f, 0.7), new Row(l, 3, 1f, 0, 1f, 0.7), new Row(l, 0, 0.9f, 0, 1f, 0.7),
                new Row(l, 0, 1f, 0.98f, 1f, 0.7));
        int[] ids = sample(rows, 16, 2);
        assertEquals(References.sample(l, 2, 1f, 0, 1f, 0.7), ids[0]);
        assertEquals(SamplingKernels.FALLBACK, ids[1]);
        assertEquals(SamplingKernels.FALLBACK, ids[2]);
        assertEquals(References.sample(l, 0, 1f, 0.98f, 1f, 0.7), ids[3], "min-p 0.98 keeps only the largest: it fits");
        assertEquals(1, ids[3]);
    }

    @Test
    void tiesAreOrderedByIdAsOnTheHost() {
        // logits on a coarse grid: many ties inside and at the top-k, top-p and min-p boundaries
        SplittableRandom rnd = new SplittableRandom(8);
        List<Row> rows = new ArrayList<>();
        for (int t = 0; t < 32; t++) {
            float[] l = new float[500];
            for (int i = 0; i < l.length; i++) {
                l[i] = (float) Math.floor(gaussian(rnd) * 3) * 0.5f;
            }
            rows.add(new Row(l, t % 2 == 0 ? 25 : 0, t % 3 == 0 ? 1f : 0.7f, t % 4 == 0 ? 0.2f : 0, 0.9f, rnd.nextDouble()));
        }
        check(rows, sample(rows, 32), 1);
    }

    @Test
    void greedyRowsTakeTheFirstLargestLogit() {
        float[] l = {0.5f, 3f, -1f, 3f, 2.9f};
        int[] ids = sample(List.of(new Row(l, 0, 1f, 0, 0f, 0), new Row(l, 2, 0.5f, 0.3f, 0f, 0.99)), 32);
        assertArrayEquals(new int[] {1, 1}, ids);
    }

    @Test
    void penaltiesAreAppliedAsTheCpuSamplerAppliesThem() {
        SplittableRandom rnd = new SplittableRandom(21);
        int n = 300, m = 3;
        float[][] raw = new float[m][];
        int[][] windows = {{5, 9, 5, 5, 299, 0, 17}, {}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1, 1}};
        float[][] pens = {{1.3f, 0.5f, 0.25f}, {1.1f, 0f, 0f}, {0.8f, -0.2f, 0.4f}};
        FloatArray logits = new FloatArray(m * n), rf = new FloatArray(m * SamplingKernels.ROW_FLOATS), subs = new FloatArray(64);
        IntArray ri = new IntArray(m * SamplingKernels.ROW_INTS), pid = new IntArray(64), meta = GemmKernelsTest.meta(m, 0);
        int used = 0;
        for (int j = 0; j < m; j++) {
            raw[j] = KernelTestData.randomFloats(rnd, n, 4);
            for (int i = 0; i < n; i++) {
                logits.set(j * n + i, raw[j][i]);
            }
            TreeMap<Integer, Integer> counts = new TreeMap<>();
            for (int t : windows[j]) {
                counts.merge(t, 1, Integer::sum);
            }
            ri.set(j * SamplingKernels.ROW_INTS + SamplingKernels.MODE, j == 1 ? SamplingKernels.MODE_NONE : SamplingKernels.MODE_DEVICE);
            ri.set(j * SamplingKernels.ROW_INTS + SamplingKernels.PENALTY_FROM, used);
            ri.set(j * SamplingKernels.ROW_INTS + SamplingKernels.PENALTY_COUNT, counts.size());
            rf.set(j * SamplingKernels.ROW_FLOATS + SamplingKernels.REPEAT_PENALTY, pens[j][0]);
            for (var e : counts.entrySet()) {
                pid.set(used, e.getKey());
                subs.set(used++, e.getValue() * pens[j][1] + pens[j][2]);
            }
        }
        WorkGroupEmulator.run(64, 32, ctx -> SamplingKernels.samplePenalties(ctx, logits, ri, rf, pid, subs, meta, n));
        for (int j = 0; j < m; j++) {
            float[] expect = j == 1 ? raw[j] : References.penalize(raw[j], windows[j], pens[j][0], pens[j][1], pens[j][2]);
            for (int i = 0; i < n; i++) {
                assertEquals(expect[i], logits.get(j * n + i), "row " + j + " token " + i);
            }
        }
    }

    @Test
    void theEmpiricalDistributionMatchesTheExactOne() {
        // one row of logits, drawn 4096 times with uniform draws from a fixed seed; expected counts from the chain's
        // exact probabilities (double precision); chi-square below its 0.1 % critical value
        SplittableRandom rnd = new SplittableRandom(1234);
        float[] l = new float[400];
        for (int i = 0; i < l.length; i++) {
            l[i] = (float) (i % 20 == 7 ? 3 * rnd.nextDouble() : -4 + gaussian(rnd)); // 20 likely tokens and a tail
        }
        int topK = 0;
        float topP = 0.9f, minP = 0.01f, temp = 0.9f;
        int[] ids = References.order(l);
        int keep = References.kept(l, ids, topK, topP, minP);
        double[] p = new double[keep];
        double total = 0;
        for (int i = 0; i < keep; i++) {
            p[i] = Math.exp((l[ids[i]] - l[ids[0]]) / temp);
            total += p[i];
        }
        assertTrue(keep >= 8, "a distribution over several tokens (" + keep + ")");
        int draws = 4096;
        int[] counts = new int[keep];
        SplittableRandom u = new SplittableRandom(99);
        for (int start = 0; start < draws; start += 64) {
            List<Row> rows = new ArrayList<>();
            for (int t = 0; t < 64; t++) {
                rows.add(new Row(l, topK, topP, minP, temp, u.nextDouble()));
            }
            for (int id : sample(rows, 16)) {
                int rank = -1;
                for (int i = 0; i < keep; i++) {
                    rank = ids[i] == id ? i : rank;
                }
                assertTrue(rank >= 0, "token " + id + " is not among the " + keep + " the chain keeps");
                counts[rank]++;
            }
        }
        // chi-square over the kept tokens, those expected fewer than 5 times pooled
        double chi = 0, pooledObs = 0, pooledExp = 0;
        int cells = 0;
        for (int i = 0; i < keep; i++) {
            double e = draws * p[i] / total;
            if (e < 5) {
                pooledObs += counts[i];
                pooledExp += e;
            } else {
                chi += (counts[i] - e) * (counts[i] - e) / e;
                cells++;
            }
        }
        if (pooledExp > 0) {
            chi += (pooledObs - pooledExp) * (pooledObs - pooledExp) / pooledExp;
            cells++;
        }
        int df = cells - 1;
        // Wilson–Hilferty: the 99.9 % quantile of chi-square(df), z = 3.09
        double a = 2.0 / (9 * df), critical = df * Math.pow(1 - a + 3.09 * Math.sqrt(a), 3);
        assertTrue(chi < critical, "chi-square " + chi + " over " + df + " degrees of freedom (critical " + critical + ")");
    }
}
