import internlm.engine.sampling.*;
import internlm.kernels.*;
import uk.ac.manchester.tornado.api.*;
import uk.ac.manchester.tornado.api.enums.*;
import uk.ac.manchester.tornado.api.types.arrays.*;
import java.util.*;

/**
 * Sampling one 92,544-token row both ways, for docs/gpu-results.md: on the device (a TaskGraph of the two sampling
 * kernels, logits already on the device: wall time of execute() and TornadoVM's device kernel time) and on the host
 * (the logits copied back, then the CPU Sampler with the same draw). Medians of REPS runs per setting. Compile it
 * against the CLI jar and the TornadoVM API classes, then run it under TornadoVM (from a clean directory):
 * <pre>
 * javac -g -cp cli/target/internlm-cli.jar:tornado-api-compat/target/classes -d /tmp/sb docs/tornado-gpu/SampleBench.java
 * cd /tmp/sb &amp;&amp; tornado --jvm="-Dtornado.recover.bailout=False" -cp $OLDPWD/cli/target/internlm-cli.jar:. SampleBench 20
 * </pre>
 * The penalties are applied to the device's logits in place, so with a repetition penalty the row drifts a little from
 * run to run (the ids of the two sides then differ; the timings do not depend on it).
 */
public class SampleBench {
    public static void main(String[] a) throws Exception {
        int n = 92544, reps = a.length > 0 ? Integer.parseInt(a[0]) : 20;
        SplittableRandom rnd = new SplittableRandom(3);
        float[] raw = new float[n];
        for (int i = 0; i < n; i++) raw[i] = (float) (rnd.nextGaussian() * 2);
        for (int p = 0; p < 5; p++) raw[rnd.nextInt(n)] = (float) (10 + 6 * rnd.nextDouble());
        SamplerConfig[] cfgs = {new SamplerConfig(0.8f, 0, 0.8f, 0f, 1f, 0f, 0f, 64, 1), new SamplerConfig(0.8f, 40, 0.95f, 0.05f, 1f, 0f, 0f, 64, 1),
                new SamplerConfig(1.0f, 40, 0.8f, 0f, 1.005f, 0f, 0f, -1, 1)};
        String[] names = {"InternLM2 chat (T 0.8, top-p 0.8)", "llama.cpp (top-k 40, top-p 0.95, min-p 0.05)", "InternLM3 chat (top-k 40, top-p 0.8, rep 1.005 / 300 tokens)"};
        int[] history = new int[300];
        for (int h = 0; h < history.length; h++) history[h] = rnd.nextInt(n);
        FloatArray logits = new FloatArray(n), rf = new FloatArray(SamplingKernels.ROW_FLOATS), subs = new FloatArray(4096);
        IntArray ri = new IntArray(SamplingKernels.ROW_INTS), pid = new IntArray(4096), result = new IntArray(1), meta = new IntArray(BatchLayout.SIZE);
        for (int i = 0; i < n; i++) logits.set(i, raw[i]);
        meta.set(BatchLayout.OUT_ROWS, 1);
        KernelContext ctx = new KernelContext();
        TaskGraph g = new TaskGraph("s").transferToDevice(DataTransferMode.EVERY_EXECUTION, ri, rf, pid, subs).transferToDevice(DataTransferMode.FIRST_EXECUTION, logits, meta)
                .task("pen", SamplingKernels::samplePenalties, ctx, logits, ri, rf, pid, subs, meta, n)
                .task("pick", SamplingKernels::sampleTokens, ctx, logits, ri, rf, result, meta, n, SamplingKernels.CANDIDATES)
                .transferToHost(DataTransferMode.EVERY_EXECUTION, result).transferToHost(DataTransferMode.UNDER_DEMAND, logits);
        GridScheduler grid = new GridScheduler();
        WorkerGrid1D pw = new WorkerGrid1D(4096); pw.setLocalWork(64, 1, 1); grid.addWorkerGrid("s.pen", pw);
        WorkerGrid1D sw = new WorkerGrid1D(256); sw.setLocalWork(256, 1, 1); grid.addWorkerGrid("s.pick", sw);
        try (TornadoExecutionPlan plan = new TornadoExecutionPlan(g.snapshot())) {
            plan.withGridScheduler(grid).withProfiler(ProfilerMode.SILENT);
            for (int c = 0; c < cfgs.length; c++) {
                SamplerConfig cfg = cfgs[c];
                RowSampling s = RowSampling.of(cfg, 0.37, history, history.length);
                int[] ids = new int[4096]; float[] sb = new float[4096];
                int cnt = s.penalties(n, ids, sb);
                for (int e = 0; e < cnt; e++) { pid.set(e, ids[e]); subs.set(e, sb[e]); }
                ri.set(SamplingKernels.MODE, 1); ri.set(SamplingKernels.TOP_K, cfg.topK()); ri.set(SamplingKernels.PENALTY_FROM, 0); ri.set(SamplingKernels.PENALTY_COUNT, cnt);
                rf.set(SamplingKernels.TEMPERATURE, cfg.temperature()); rf.set(SamplingKernels.TOP_P, cfg.topP());
                rf.set(SamplingKernels.LOG_MIN_P, cfg.minP() > 0 ? (float) Math.log(cfg.minP()) : SamplingKernels.NO_MIN_P);
                rf.set(SamplingKernels.UNIFORM, 0.37f); rf.set(SamplingKernels.REPEAT_PENALTY, cfg.repeatPenalty());
                // penalties applied in place would accumulate over repetitions: only the first config has none, the
                // others' rows drift a little per run (irrelevant to the timing)
                double[] dev = new double[reps], kern = new double[reps], copy = new double[reps], host = new double[reps];
                int id = -2, hid = -3;
                float[] hl = new float[n];
                for (int r = -2; r < reps; r++) {
                    long t0 = System.nanoTime();
                    TornadoExecutionResult res = plan.execute();
                    long t1 = System.nanoTime();
                    id = result.get(0);
                    long k = res.getProfilerResult().getDeviceKernelTime();
                    long t2 = System.nanoTime();
                    res.transferToHost(logits);
                    for (int i = 0; i < n; i++) hl[i] = logits.get(i);
                    long t3 = System.nanoTime();
                    hid = s.sample(hl);
                    long t4 = System.nanoTime();
                    if (r >= 0) { dev[r] = (t1 - t0) / 1e6; kern[r] = k / 1e6; copy[r] = (t3 - t2) / 1e6; host[r] = (t4 - t3) / 1e6; }
                }
                System.out.printf(Locale.ROOT, "%-62s device: execute %6.2f ms (kernels %6.2f ms), id %d | host: logits back %5.2f ms + Sampler %6.2f ms, id %d%n",
                        names[c], med(dev), med(kern), id, med(copy), med(host), hid);
            }
        }
    }
    static double med(double[] v) { double[] c = v.clone(); Arrays.sort(c); return c[c.length / 2]; }
}
