package internlm.engine.tornado;

import internlm.engine.Engine;
import internlm.engine.Fixtures;
import internlm.engine.generate.GenerationParams;
import internlm.engine.generate.GenerationResult;
import internlm.engine.generate.Scheduler;
import internlm.engine.generate.Session;
import internlm.engine.generate.TokenSink;
import internlm.engine.sampling.RowSampling;
import internlm.engine.sampling.Sampler;
import internlm.engine.sampling.SamplerConfig;
import internlm.kernels.BatchLayout;
import internlm.kernels.KernelSupport;
import internlm.kernels.SamplingKernels;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import uk.ac.manchester.tornado.api.GridScheduler;
import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.TaskGraph;
import uk.ac.manchester.tornado.api.TornadoExecutionPlan;
import uk.ac.manchester.tornado.api.WorkerGrid1D;
import uk.ac.manchester.tornado.api.enums.DataTransferMode;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Sampling on the device (TornadoVM, its default device) against the CPU sampler: the kernels on InternLM2-sized
 * rows with the CPU sampler's uniform draws give the CPU sampler's ids (except where float rounding moves a boundary,
 * checked to be one), and generation on the TornadoVM backend gives the CPU backend's tokens for the same seed — alone,
 * several sequences in one batch, and with the host fallbacks forced.
 */
class TornadoSamplingTest {
    @BeforeEach
    void needsTornado() {
        assumeTrue(TornadoSupport.available(), "TornadoVM is not available in this JVM");
    }

    static final SamplerConfig[] CONFIGS = {
        new SamplerConfig(0.8f, 0, 0.8f, 0f, 1f, 0f, 0f, 64, 21),          // InternLM2 chat defaults
        new SamplerConfig(0.8f, 40, 0.95f, 0.05f, 1.1f, 0f, 0f, 64, 22),    // llama.cpp's, with a repetition penalty
        new SamplerConfig(1.0f, 40, 0.8f, 0f, 1.005f, 0f, 0f, -1, 23),      // InternLM3 chat defaults
        new SamplerConfig(1.3f, 0, 1f, 0.02f, 1.2f, 0.3f, 0.5f, 16, 24),    // min-p, frequency and presence penalties
        new SamplerConfig(0f, 0, 1f, 0f, 1.3f, 0.1f, 0f, 8, 25),            // greedy with penalties
    };

    /**
     * How close the CPU sampler's decisions on these (penalized) logits come to a boundary, in double: the smallest
     * |running top-p mass − top-p|, |logit − max − log min-p|, |u·total − running weight| / total.
     */
    static double margin(float[] l, SamplerConfig c, double u) {
        int n = l.length;
        int k = c.topK() > 0 ? Math.min(c.topK(), n) : n;
        int[] ids = Sampler.topIndices(l, n);
        double max = l[ids[0]], sum = 0, m = Double.MAX_VALUE;
        for (int i = 0; i < k; i++) {
            sum += Math.exp(l[ids[i]] - max);
        }
        int keep = k;
        double cum = 0;
        for (int i = 0; i < k && c.topP() < 1; i++) {
            cum += Math.exp(l[ids[i]] - max) / sum;
            m = Math.min(m, Math.abs(cum - c.topP()));
            if (cum >= c.topP() && keep == k) {
                keep = i + 1;
            }
        }
        if (c.minP() > 0) {
            int mm = 1;
            for (int i = 0; i < keep; i++) {
                m = Math.min(m, Math.abs(l[ids[i]] - max - Math.log(c.minP())));
            }
            while (mm < keep && l[ids[mm]] - max >= Math.log(c.minP())) {
                mm++;
            }
            keep = mm;
        }
        double total = 0, run = 0;
        for (int i = 0; i < keep; i++) {
            total += Math.exp((l[ids[i]] - max) / c.temperature());
        }
        for (int i = 0; i < keep; i++) {
            run += Math.exp((l[ids[i]] - max) / c.temperature());
            m = Math.min(m, Math.abs(u * total - run) / total);
        }
        return m;
    }

    /** How many tokens the CPU sampler's chain keeps (top-k, top-p, min-p) from these logits. */
    static int kept(float[] l, SamplerConfig c) {
        int n = l.length, k = c.topK() > 0 ? Math.min(c.topK(), n) : n;
        int[] ids = Sampler.topIndices(l, n);
        double max = l[ids[0]], sum = 0, cum = 0;
        for (int i = 0; i < k; i++) {
            sum += Math.exp(l[ids[i]] - max);
        }
        int keep = k;
        for (int i = 0; i < k && c.topP() < 1 && keep == k; i++) {
            cum += Math.exp(l[ids[i]] - max) / sum;
            keep = cum >= c.topP() ? i + 1 : keep;
        }
        int m = 1;
        while (c.minP() > 0 && m < keep && l[ids[m]] - max >= Math.log(c.minP())) {
            m++;
        }
        return c.minP() > 0 ? m : keep;
    }

    @Test
    void theKernelsGiveTheCpuSamplersIdsOnAnInternLm2SizedVocabulary() throws Exception {
        int n = 92544, rows = 8, reps = 4;
        SplittableRandom rnd = new SplittableRandom(17);
        FloatArray logits = new FloatArray(rows * n), rf = new FloatArray(rows * SamplingKernels.ROW_FLOATS), subs = new FloatArray(DeviceSampling.PENALTY_ENTRIES);
        IntArray ri = new IntArray(rows * SamplingKernels.ROW_INTS), pid = new IntArray(DeviceSampling.PENALTY_ENTRIES), result = new IntArray(rows);
        IntArray meta = new IntArray(BatchLayout.SIZE);
        meta.set(BatchLayout.OUT_ROWS, rows);
        KernelContext ctx = new KernelContext();
        TaskGraph g = new TaskGraph("s").transferToDevice(DataTransferMode.EVERY_EXECUTION, logits, ri, rf, pid, subs, meta)
                .task("pen", SamplingKernels::samplePenalties, ctx, logits, ri, rf, pid, subs, meta, n)
                .task("pick", SamplingKernels::sampleTokens, ctx, logits, ri, rf, result, meta, n, SamplingKernels.CANDIDATES)
                .transferToHost(DataTransferMode.EVERY_EXECUTION, result, logits);
        GridScheduler grid = new GridScheduler();
        WorkerGrid1D pw = new WorkerGrid1D(DeviceSampling.PENALTY_ENTRIES);
        pw.setLocalWork(64, 1, 1);
        grid.addWorkerGrid("s.pen", pw);
        WorkerGrid1D sw = new WorkerGrid1D(rows * KernelSupport.MAX_LOCAL);
        sw.setLocalWork(KernelSupport.MAX_LOCAL, 1, 1);
        grid.addWorkerGrid("s.pick", sw);
        int compared = 0, boundary = 0, fallbacks = 0;
        try (TornadoExecutionPlan plan = new TornadoExecutionPlan(g.snapshot())) {
            plan.withGridScheduler(grid);
            for (int rep = 0; rep < reps; rep++) {
                float[][] raw = new float[rows][n];
                RowSampling[] how = new RowSampling[rows];
                int used = 0;
                int[] ids = new int[DeviceSampling.PENALTY_ENTRIES];
                float[] sb = new float[DeviceSampling.PENALTY_ENTRIES];
                for (int j = 0; j < rows; j++) {
                    // a language model's shape: a Gaussian body and a few tokens well above it (peaked to flat)
                    double sigma = 0.5 + 1.5 * rnd.nextDouble();
                    for (int i = 0; i < n; i++) {
                        raw[j][i] = (float) (rnd.nextGaussian() * sigma);
                    }
                    for (int p = 0; p < 1 + rep * 2; p++) {
                        raw[j][rnd.nextInt(n)] = (float) (sigma * 3 + (rep == 0 ? 0 : 4 + 8 * rnd.nextDouble()));
                    }
                    int[] history = new int[300];
                    for (int h = 0; h < history.length; h++) {
                        history[h] = rnd.nextInt(200) * 7; // repeats among 200 tokens
                    }
                    SamplerConfig c = CONFIGS[(j + rep) % CONFIGS.length];
                    how[j] = RowSampling.of(c, c.greedy() ? 0 : rnd.nextDouble(), history, history.length);
                    int count = how[j].penalties(n, ids, sb);
                    for (int e = 0; e < count; e++) {
                        pid.set(used + e, ids[e]);
                        subs.set(used + e, sb[e]);
                    }
                    int r0 = j * SamplingKernels.ROW_INTS, f0 = j * SamplingKernels.ROW_FLOATS;
                    ri.set(r0 + SamplingKernels.MODE, SamplingKernels.MODE_DEVICE);
                    ri.set(r0 + SamplingKernels.TOP_K, c.topK());
                    ri.set(r0 + SamplingKernels.PENALTY_FROM, used);
                    ri.set(r0 + SamplingKernels.PENALTY_COUNT, count);
                    rf.set(f0 + SamplingKernels.TEMPERATURE, c.temperature());
                    rf.set(f0 + SamplingKernels.TOP_P, c.topP());
                    rf.set(f0 + SamplingKernels.LOG_MIN_P, c.minP() > 0 ? (float) Math.log(c.minP()) : SamplingKernels.NO_MIN_P);
                    rf.set(f0 + SamplingKernels.UNIFORM, (float) how[j].uniform());
                    rf.set(f0 + SamplingKernels.REPEAT_PENALTY, c.repeatPenalty());
                    used += count;
                    for (int i = 0; i < n; i++) {
                        logits.set(j * n + i, raw[j][i]);
                    }
                }
                plan.execute();
                for (int j = 0; j < rows; j++) {
                    SamplerConfig c = how[j].config();
                    int expect = how[j].sample(raw[j]);
                    float[] penalized = new float[n];
                    for (int i = 0; i < n; i++) {
                        penalized[i] = logits.get(j * n + i);
                    }
                    assertEquals(expect, how[j].samplePenalized(penalized), "penalties applied on the device as on the host, row " + j);
                    int got = result.get(j);
                    if (got == SamplingKernels.FALLBACK) {
                        // only where the chain keeps more tokens than a bounded candidate set holds (flat rows under top-p)
                        int keep = kept(penalized, c);
                        assertTrue(keep > 1000, "rep " + rep + " row " + j + " (" + c + ") fell back, keeping " + keep);
                        fallbacks++;
                        continue;
                    }
                    compared++;
                    if (got != expect) {
                        double m = c.greedy() ? 0 : margin(penalized, c, how[j].uniform());
                        assertTrue(m < 1e-5, "rep " + rep + " row " + j + " (" + c + "): device " + got + ", CPU sampler " + expect + ", margin " + m);
                        boundary++;
                    }
                }
            }
        }
        System.out.println("device sampling: " + compared + " rows of 92544 logits, " + boundary + " boundary cases, " + fallbacks + " fallbacks");
        assertTrue(boundary <= 1, boundary + " boundary cases");
        assertTrue(compared >= 16, compared + " of 32 rows sampled on the device");
    }

    static Engine load(Path p, String backend, int sequences) {
        return Engine.load(p, new Engine.Options(backend, 2, System.getProperty("internlm.test.device"), false, 128, false, false, null, sequences),
                internlm.loader.Progress.NONE);
    }

    static int[] generate(Engine e, int[] prompt, SamplerConfig c, int n) {
        try (Session s = e.newSession(128)) {
            return s.generate(prompt, new GenerationParams(n, c, true, List.of(), 0, false), TokenSink.NONE).generated();
        }
    }

    static long[] counts(Engine e) {
        return ((TornadoBackend) e.backend()).samplingCounts();
    }

    @Test
    void generationSamplesOnTheDeviceWithTheCpuBackendsTokens() throws Exception {
        int[] prompt = {1, 300, 301, 302, 303, 304};
        // one sequence at a time, on a 1000-token vocabulary
        Path v1000 = Fixtures.fixture("internlm2-d256-l2-h4-kv2-f512-v1000-s3-q8_0.gguf");
        try (Engine cpu = load(v1000, "cpu", 1); Engine gpu = load(v1000, "tornado", 1)) {
            for (SamplerConfig c : CONFIGS) {
                assertArrayEquals(generate(cpu, prompt, c, 32), generate(gpu, prompt, c, 32), c.toString());
            }
            assertArrayEquals(new long[] {CONFIGS.length * 32, 0, 0}, counts(gpu), "every token sampled on the device");
        }
        // several sequences sharing passes through the scheduler (the server's path): per-row parameters and penalties
        Path f = Fixtures.fixture("internlm2-tiny-q8_0.gguf");
        try (Engine cpu = load(f, "cpu", 1); Engine gpu = load(f, "tornado", CONFIGS.length)) {
            List<GenerationResult> results = new ArrayList<>();
            try (Scheduler sched = new Scheduler(gpu.backend(), 8)) {
                List<Scheduler.Running> runs = new ArrayList<>();
                List<Session> sessions = new ArrayList<>();
                for (SamplerConfig c : CONFIGS) {
                    Session s = gpu.newSession(128);
                    sessions.add(s);
                    runs.add(sched.submit(s, prompt, new GenerationParams(24, c, true, List.of(), 0, false)));
                }
                for (int i = 0; i < runs.size(); i++) {
                    results.add(runs.get(i).deliver(TokenSink.NONE, () -> { }));
                    sessions.get(i).close();
                }
                assertTrue(sched.widestBatch() > 1, "the sequences shared passes");
            }
            for (int i = 0; i < CONFIGS.length; i++) {
                assertArrayEquals(generate(cpu, prompt, CONFIGS[i], 24), results.get(i).generated(), "sequence " + i + " " + CONFIGS[i]);
            }
            assertArrayEquals(new long[] {CONFIGS.length * 24, 0, 0}, counts(gpu));
        }
    }

    @Test
    void hostFallbacksGiveTheSameTokens() {
        // at most 2 candidates sorted and room for 3 penalty entries per pass: rows fall back to the host both ways
        System.setProperty("internlm.tornado.sampleCandidates", "2");
        System.setProperty("internlm.tornado.penaltyEntries", "3");
        Path f = Fixtures.fixture("internlm2-tiny-q8_0.gguf");
        int[] prompt = {1, 300, 301, 302, 303, 304};
        try (Engine cpu = load(f, "cpu", 1); Engine gpu = load(f, "tornado", 1)) {
            for (SamplerConfig c : CONFIGS) {
                assertArrayEquals(generate(cpu, prompt, c, 24), generate(gpu, prompt, c, 24), c.toString());
            }
            long[] n = counts(gpu);
            assertTrue(n[0] > 0 && n[1] > 0 && n[2] > 0, "sampled on the device, on the host by choice and after a device fallback " + Arrays.toString(n));
        } finally {
            System.clearProperty("internlm.tornado.sampleCandidates");
            System.clearProperty("internlm.tornado.penaltyEntries");
        }
    }
}
