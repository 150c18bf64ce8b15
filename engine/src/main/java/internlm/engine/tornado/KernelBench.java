package internlm.engine.tornado;

import internlm.engine.bench.KernelRow;
import internlm.engine.cpu.CpuBackend;
import internlm.engine.cpu.VectorKernels;
import internlm.engine.bench.Stats;
import internlm.engine.sampling.RowSampling;
import internlm.engine.sampling.SamplerConfig;
import internlm.kernels.BatchLayout;
import internlm.kernels.DeviceLayouts;
import internlm.kernels.KernelSupport;
import internlm.kernels.LayerKernels;
import internlm.kernels.SamplingKernels;
import internlm.loader.TensorData;
import internlm.loader.gguf.GgmlType;
import internlm.loader.quant.Quants;
import internlm.loader.synthetic.SyntheticModels;
import uk.ac.manchester.tornado.api.GridScheduler;
import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.TaskGraph;
import uk.ac.manchester.tornado.api.TornadoExecutionPlan;
import uk.ac.manchester.tornado.api.TornadoExecutionResult;
import uk.ac.manchester.tornado.api.WorkerGrid1D;
import uk.ac.manchester.tornado.api.enums.DataTransferMode;
import uk.ac.manchester.tornado.api.enums.ProfilerMode;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;

import java.io.IOException;
import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.function.Supplier;

/**
 * {@code bench kernels}: every TornadoVM kernel the backend uses, at the real shapes of one model, on each device:
 * mat-vec per weight type and projection, fused QKV, SwiGLU, RMSNorm, attention at several depths, the two-phase
 * argmax and sampling. Each case is one task graph with its inputs on the device; the time per launch is TornadoVM's device
 * kernel time when its profiler reports one (else the wall time of execute()), GB/s and GFLOP/s follow from the
 * bytes and operations a launch needs, and the output is compared after every run with what the CPU backend's own
 * kernels compute from the same (dequantized) weights. Variants (work-group sizes {@code wg64/wg128/wg256}, F16 as bits or {@code native} half) are
 * named, so a new one can be added here and compared side by side; {@code --variants} selects them by name.
 */
public final class KernelBench {
    private KernelBench() {}

    /**
     * What to run. {@code kernels}: names to keep (empty = all of matvec, qkv, swiglu, rmsnorm, attention, argmax, sample);
     * {@code variants}: variant names to keep (empty = all); {@code types}: weight types; {@code depths}: attention
     * lengths; {@code lmHead}: also the vocabulary-wide projection (large).
     */
    public record Plan(List<String> devices, SyntheticModels.Shape shape, List<GgmlType> types, List<String> kernels, List<String> variants,
                       int[] depths, int reps, boolean lmHead, long probeBytes, String commit) {}

    @FunctionalInterface
    public interface Sink {
        void add(KernelRow r) throws IOException;
    }

    /** One prepared case: its graph, the output to check and how. */
    private record Case(String kernel, String variant, String shape, long bytes, long flops, Supplier<TaskGraph> graph, int global, int local,
                        FloatArray out, IntArray outInt, float[] expect, double tolerance) {}

    public static void run(Plan plan, PrintStream log, Sink sink) throws IOException {
        for (String device : plan.devices()) {
            TornadoProbe.Device dev = TornadoProbe.device(device);
            double bw;
            try {
                bw = TornadoProbe.bandwidth(device, plan.probeBytes(), 3).gbPerSecond();
                log.printf(Locale.ROOT, "[%s] %s %s: %.1f GB/s streaming read%n", device, dev.backend(), dev.name(), bw);
            } catch (RuntimeException e) {
                log.println("[" + device + "] bandwidth probe failed: " + e.getMessage());
                bw = 0;
            }
            // one weight type at a time, so the host holds the test matrices of one type only
            List<GgmlType> groups = new ArrayList<>(plan.types());
            groups.add(null);
            for (GgmlType type : groups) {
                for (Case c : type != null ? typeCases(plan, type) : otherCases(plan)) {
                    if (!keep(plan.kernels(), c.kernel()) || !keep(plan.variants(), c.variant())) {
                        continue;
                    }
                    sink.add(measure(plan, device, dev, bw, c, log));
                }
            }
        }
    }

    private static boolean keep(List<String> names, String name) {
        if (names.isEmpty()) {
            return true;
        }
        for (String n : names) {
            if (name.equalsIgnoreCase(n) || name.toLowerCase(Locale.ROOT).contains(n.toLowerCase(Locale.ROOT))) {
                return true;
            }
        }
        return false;
    }

    private static KernelRow measure(Plan plan, String device, TornadoProbe.Device dev, double bw, Case c, PrintStream log) {
        String commit = plan.commit(), time = Instant.now().truncatedTo(ChronoUnit.SECONDS).toString();
        GridScheduler grid = new GridScheduler();
        WorkerGrid1D w = new WorkerGrid1D(c.global());
        w.setLocalWork(c.local(), 1, 1);
        grid.addWorkerGrid("k.run", w);
        if (c.kernel().equals("argmax")) {
            WorkerGrid1D f = new WorkerGrid1D(64);
            f.setLocalWork(64, 1, 1);
            grid.addWorkerGrid("k.final", f);
        }
        TaskGraph g = c.graph().get();
        TornadoExecutionPlan p = new TornadoExecutionPlan(g.snapshot());
        double maxErr = 0;
        boolean kernelTime = true;
        double[] us = new double[plan.reps()];
        try {
            p.withDevice(TornadoExecutionPlan.getDevice(TornadoSupport.parseDevice(device)[0], TornadoSupport.parseDevice(device)[1]))
                    .withGridScheduler(grid).withProfiler(ProfilerMode.SILENT);
            for (int r = 0; r <= plan.reps(); r++) {
                long t0 = System.nanoTime();
                TornadoExecutionResult res = p.execute();
                long wall = System.nanoTime() - t0;
                long k = 0;
                try {
                    k = res.getProfilerResult().getDeviceKernelTime();
                } catch (RuntimeException e) {
                    k = 0;
                }
                if (c.out() != null) {
                    res.transferToHost(c.out());
                    for (int i = 0; i < c.expect().length; i++) {
                        maxErr = Math.max(maxErr, Math.abs(c.out().get(i) - c.expect()[i]));
                    }
                } else {
                    res.transferToHost(c.outInt());
                    maxErr = Math.max(maxErr, Math.abs(c.outInt().get(0) - c.expect()[0]));
                }
                if (r > 0) {
                    kernelTime &= k > 0;
                    us[r - 1] = (k > 0 ? k : wall) / 1e3;
                }
            }
        } catch (RuntimeException e) {
            String msg = internlm.engine.bench.BuildInfo.brief(e);
            log.printf("[%s] %s %s %s: failed: %s%n", device, c.kernel(), c.variant(), c.shape(), msg);
            return new KernelRow(commit, time, TornadoProbe.version(), device, dev.backend(), dev.name(), plan.shape().name(), c.kernel(), c.variant(), c.shape(),
                    c.bytes(), c.flops(), 0, 0, 0, 0, 0, 0, bw > 0 ? bw : null, null, Double.NaN, "error: " + msg, "");
        } finally {
            try {
                p.freeDeviceMemory();
                p.close();
            } catch (Exception e) {
                // freed with the process
            }
        }
        Stats s = Stats.of(us);
        double gbs = c.bytes() / (s.median() * 1e3), gflops = c.flops() / (s.median() * 1e3);
        String check = maxErr <= c.tolerance() ? "ok" : "FAILED";
        log.printf(Locale.ROOT, "[%s] %-9s %-14s %-12s %9.1f µs %8.1f GB/s %7.1f GFLOP/s  max |err| %.2g %s%n", device, c.kernel(), c.variant(), c.shape(),
                s.median(), gbs, gflops, maxErr, check);
        return new KernelRow(commit, time, TornadoProbe.version(), device, dev.backend(), dev.name(), plan.shape().name(), c.kernel(), c.variant(), c.shape(),
                c.bytes(), c.flops(), plan.reps(), s.mean(), s.stddev(), s.median(), gbs, gflops, bw > 0 ? bw : null, bw > 0 ? gbs / bw : null, maxErr, check,
                kernelTime ? "device kernel time" : "wall time of execute()");
    }

    // ------------------------------------------------------------------ the cases

    private static float[] random(int n, double amp, SplittableRandom r) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) ((2 * r.nextDouble() - 1) * amp);
        }
        return v;
    }

    /** A weight matrix in a type: the device layout and the values it holds (the reference's input). */
    private record Weights(DeviceMatrix device, float[] values) {}

    private static Weights weights(GgmlType type, int rows, int cols, boolean nativeHalf, SplittableRandom r) {
        float[] v = random(rows * cols, Math.sqrt(3.0 / cols), r);
        MemorySegment seg = MemorySegment.ofArray(new byte[(int) type.byteSize((long) rows * cols)]);
        switch (type) {
            case F32 -> MemorySegment.copy(MemorySegment.ofArray(v), 0, seg, 0, 4L * v.length);
            case F16 -> {
                for (int i = 0; i < v.length; i++) {
                    seg.set(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED, 2L * i, Float.floatToFloat16(v[i]));
                }
            }
            case Q8_0 -> Quants.quantizeQ8_0(v, 0, v.length, seg, 0);
            case Q4_0 -> Quants.quantizeQ4_0(v, 0, v.length, seg, 0);
            default -> throw new IllegalArgumentException("kernel benchmark types are F32, F16, Q8_0, Q4_0, not " + type);
        }
        TensorData t = new TensorData("w", type, new long[] {cols, rows}, seg);
        float[] deq = new float[v.length];
        Quants.dequantize(type, seg, 0, deq, 0, deq.length);
        return new Weights(DeviceMatrix.of(t, nativeHalf), deq);
    }

    // ------------------------------------------------------------------ expected values: the CPU backend's kernels

    /** y = W·x with the CPU backend's dot product (w dequantized, row-major rows × cols). */
    private static float[] matvec(float[] w, float[] x, int rows, int cols) {
        float[] y = new float[rows];
        for (int r = 0; r < rows; r++) {
            y[r] = VectorKernels.dot(w, r * cols, x, 0, cols);
        }
        return y;
    }

    /** silu(Wg·x) ⊙ Wu·x with the CPU backend's kernels. */
    private static float[] swiglu(float[] wg, float[] wu, float[] x, int rows, int cols) {
        float[] g = matvec(wg, x, rows, cols), u = matvec(wu, x, rows, cols);
        VectorKernels.swiglu(g, u, 0, rows);
        return g;
    }

    /** Every query head of one token over positions [0, len) of caches laid out [position][kvHeads·headDim]. */
    private static float[] attention(float[] q, float[] keys, float[] values, int len, int heads, int kvHeads, int headDim) {
        float[] out = new float[heads * headDim], scores = new float[len];
        for (int h = 0; h < heads; h++) {
            int g = h / (heads / kvHeads);
            CpuBackend.attendHead(q, h * headDim, keys, values, g * headDim, kvHeads * headDim, len, headDim, scores, out, h * headDim);
        }
        return out;
    }

    private static long deviceBytes(GgmlType t, long n) {
        return switch (t) {
            case F32 -> 4 * n;
            case F16 -> 2 * n;
            case Q8_0 -> n + n / 32 * 4;
            case Q4_0 -> n / 2 + n / 32 * 4;
            default -> throw new IllegalArgumentException(t.toString());
        };
    }

    private static double tolerance(float[] expect) {
        double m = 0;
        for (float x : expect) {
            m = Math.max(m, Math.abs(x));
        }
        return 1e-3 * Math.max(1, m);
    }

    /** Mat-vec at every projection shape, fused QKV and SwiGLU, in one weight type. */
    private static List<Case> typeCases(Plan plan, GgmlType type) {
        SyntheticModels.Shape s = plan.shape();
        int dim = s.dim(), qd = s.qDim(), kvd = s.kvDim(), ffn = s.ffn();
        List<Case> out = new ArrayList<>();
        SplittableRandom rnd = new SplittableRandom(7 + type.ordinal());
        FloatArray pow2 = KernelSupport.halfTable();
        List<int[]> proj = new ArrayList<>(List.of(new int[] {qd, dim}, new int[] {kvd, dim}, new int[] {dim, qd}, new int[] {ffn, dim}, new int[] {dim, ffn}));
        List<String> projNames = new ArrayList<>(List.of("attn_q", "attn_k", "attn_output", "ffn_gate", "ffn_down"));
        if (plan.lmHead()) {
            proj.add(new int[] {s.vocab(), dim});
            projNames.add("output");
        }
        {
            List<Boolean> halfModes = type == GgmlType.F16 ? List.of(false, true) : List.of(false);
            for (int pi = 0; pi < proj.size(); pi++) {
                int rows = proj.get(pi)[0], cols = proj.get(pi)[1];
                String shape = projNames.get(pi) + " " + rows + "x" + cols;
                for (boolean nativeHalf : halfModes) {
                    Weights w = weights(type, rows, cols, nativeHalf, rnd);
                    float[] x = random(cols, 1, rnd);
                    float[] expect = matvec(w.values(), x, rows, cols);
                    FloatArray xa = DeviceLayouts.floats(x), y = new FloatArray(rows);
                    for (int local : new int[] {64, 128, 256}) {
                        String variant = type.name() + (type == GgmlType.F16 ? (nativeHalf ? " native" : " bits") : "") + " wg" + local;
                        out.add(new Case("matvec", variant, shape, deviceBytes(type, (long) rows * cols) + 4L * (rows + cols), 2L * rows * cols, () -> {
                            TaskGraph g = new TaskGraph("k").transferToDevice(DataTransferMode.FIRST_EXECUTION, w.device().arrays())
                                    .transferToDevice(DataTransferMode.FIRST_EXECUTION, xa, y, pow2);
                            KernelTasks.matvec(g, "run", new KernelContext(), w.device(), pow2, xa, y);
                            return g.transferToHost(DataTransferMode.UNDER_DEMAND, y);
                        }, rows * local, local, y, null, expect, tolerance(expect)));
                    }
                }
            }
            // fused QKV and SwiGLU at the default work-group size of the backend on GPUs (128)
            Weights wq = weights(type, qd, dim, false, rnd), wk = weights(type, kvd, dim, false, rnd), wv = weights(type, kvd, dim, false, rnd);
            float[] x = random(dim, 1, rnd);
            FloatArray xa = DeviceLayouts.floats(x), q = new FloatArray(qd), k = new FloatArray(kvd), v = new FloatArray(kvd);
            float[] eq = matvec(wq.values(), x, qd, dim);
            out.add(new Case("qkv", type.name() + " wg128", qd + "+" + kvd + "+" + kvd + "x" + dim,
                    deviceBytes(type, (long) (qd + 2 * kvd) * dim) + 4L * (dim + qd + 2 * kvd), 2L * (qd + 2 * kvd) * dim, () -> {
                TaskGraph g = new TaskGraph("k").transferToDevice(DataTransferMode.FIRST_EXECUTION, wq.device().arrays())
                        .transferToDevice(DataTransferMode.FIRST_EXECUTION, wk.device().arrays())
                        .transferToDevice(DataTransferMode.FIRST_EXECUTION, wv.device().arrays())
                        .transferToDevice(DataTransferMode.FIRST_EXECUTION, xa, q, k, v, pow2);
                KernelTasks.qkv(g, "run", new KernelContext(), wq.device(), wk.device(), wv.device(), pow2, xa, q, k, v);
                return g.transferToHost(DataTransferMode.UNDER_DEMAND, q);
            }, (qd + 2 * kvd) * 128, 128, q, null, eq, tolerance(eq)));
            Weights gate = weights(type, ffn, dim, false, rnd), up = weights(type, ffn, dim, false, rnd);
            FloatArray h = new FloatArray(ffn);
            float[] eh = swiglu(gate.values(), up.values(), x, ffn, dim);
            out.add(new Case("swiglu", type.name() + " wg128", "2x" + ffn + "x" + dim, 2 * deviceBytes(type, (long) ffn * dim) + 4L * (dim + ffn),
                    4L * ffn * dim, () -> {
                TaskGraph g = new TaskGraph("k").transferToDevice(DataTransferMode.FIRST_EXECUTION, gate.device().arrays())
                        .transferToDevice(DataTransferMode.FIRST_EXECUTION, up.device().arrays())
                        .transferToDevice(DataTransferMode.FIRST_EXECUTION, xa, h, pow2);
                KernelTasks.swiglu(g, "run", new KernelContext(), gate.device(), up.device(), pow2, xa, h);
                return g.transferToHost(DataTransferMode.UNDER_DEMAND, h);
            }, ffn * 128, 128, h, null, eh, tolerance(eh)));
        }
        return out;
    }

    /** RMSNorm, attention at the plan's depths, argmax, sampling. */
    private static List<Case> otherCases(Plan plan) {
        SyntheticModels.Shape s = plan.shape();
        int dim = s.dim(), qd = s.qDim(), kvd = s.kvDim();
        List<Case> out = new ArrayList<>();
        SplittableRandom rnd = new SplittableRandom(5);
        // RMSNorm: one work-group over the hidden state
        float[] xn = random(dim, 2, rnd), wn = random(dim, 1, rnd);
        float[] en = new float[dim];
        CpuBackend.rmsnorm(en, 0, xn, 0, wn, dim, 1e-5f);
        FloatArray xna = DeviceLayouts.floats(xn), wna = DeviceLayouts.floats(wn), yn = new FloatArray(dim);
        out.add(new Case("rmsnorm", "wg256", Integer.toString(dim), 12L * dim, 4L * dim, () -> new TaskGraph("k")
                .transferToDevice(DataTransferMode.FIRST_EXECUTION, xna, wna, yn)
                .task("run", LayerKernels::rmsNorm, new KernelContext(), xna, wna, yn, dim, 1e-5f)
                .transferToHost(DataTransferMode.UNDER_DEMAND, yn), 256, 256, yn, null, en, tolerance(en)));
        // attention of one token against caches of several depths
        int hd = s.headDim(), attLocal = Math.max(32, Integer.highestOneBit(Math.max(1, hd - 1)) << 1);
        for (int depth : plan.depths()) {
            float[] qa = random(qd, 1, rnd), keys = random(depth * kvd, 1, rnd), values = random(depth * kvd, 1, rnd);
            float[] ea = attention(qa, keys, values, depth, s.heads(), s.kvHeads(), hd);
            FloatArray qf = DeviceLayouts.floats(qa), kc = DeviceLayouts.floats(keys), vc = DeviceLayouts.floats(values), att = new FloatArray(qd);
            IntArray state = new IntArray(2);
            state.set(0, 0);
            state.set(1, depth - 1);
            out.add(new Case("attention", "f32 cache wg" + attLocal, s.heads() + "/" + s.kvHeads() + " heads, depth " + depth, 8L * depth * kvd + 8L * qd,
                    4L * depth * qd, () -> new TaskGraph("k")
                    .transferToDevice(DataTransferMode.FIRST_EXECUTION, qf, kc, vc, att, state)
                    .task("run", LayerKernels::attention, new KernelContext(), qf, kc, vc, att, state, s.heads(), s.kvHeads(), hd)
                    .transferToHost(DataTransferMode.UNDER_DEMAND, att), s.heads() * attLocal, attLocal, att, null, ea, tolerance(ea)));
        }
        // argmax over the vocabulary (two phases in one graph: the grid is that of the first; the second runs one group)
        float[] logits = random(s.vocab(), 10, rnd);
        int best = 0;
        for (int i = 1; i < logits.length; i++) {
            if (logits[i] > logits[best]) {
                best = i;
            }
        }
        FloatArray la = DeviceLayouts.floats(logits), pv = new FloatArray(64);
        IntArray pi = new IntArray(64), res = new IntArray(1);
        out.add(new Case("argmax", "64 groups wg256", Integer.toString(s.vocab()), 4L * s.vocab(), s.vocab(), () -> new TaskGraph("k")
                .transferToDevice(DataTransferMode.FIRST_EXECUTION, la, pv, pi, res)
                .task("run", LayerKernels::argmaxPartial, new KernelContext(), la, pv, pi, s.vocab())
                .task("final", LayerKernels::argmaxFinal, new KernelContext(), pv, pi, res, 64)
                .transferToHost(DataTransferMode.UNDER_DEMAND, res), 64 * 256, 256, null, res, new float[] {best}, 0));
        // sampling one row on the device (a language model's shape: a Gaussian body and a few tokens well above it),
        // with InternLM2's chat settings and llama.cpp's; expected: the CPU sampler's token for the same draw
        float[] lm = new float[s.vocab()];
        for (int i = 0; i < lm.length; i++) {
            lm[i] = (float) (2 * rnd.nextGaussian());
        }
        for (int p = 0; p < 5; p++) {
            lm[rnd.nextInt(lm.length)] = (float) (10 + 6 * rnd.nextDouble());
        }
        String[] names = {"top-p 0.8 wg256", "top-k 40 top-p 0.95 min-p 0.05 wg256"};
        SamplerConfig[] configs = {new SamplerConfig(0.8f, 0, 0.8f, 0f, 1f, 0f, 0f, 64, 0), new SamplerConfig(0.8f, 40, 0.95f, 0.05f, 1f, 0f, 0f, 64, 0)};
        for (int c = 0; c < configs.length; c++) {
            RowSampling how = RowSampling.of(configs[c], 0.37, new int[0], 0);
            DeviceSampling row = new DeviceSampling(1, lm.length, 1);
            row.device(0, how);
            FloatArray lma = DeviceLayouts.floats(lm);
            IntArray meta = new IntArray(BatchLayout.SIZE), sampled = new IntArray(1);
            meta.set(BatchLayout.OUT_ROWS, 1);
            out.add(new Case("sample", names[c], Integer.toString(s.vocab()), 4L * s.vocab(), s.vocab(), () -> new TaskGraph("k")
                    .transferToDevice(DataTransferMode.FIRST_EXECUTION, lma, row.rowInts, row.rowFloats, meta, sampled)
                    .task("run", SamplingKernels::sampleTokens, new KernelContext(), lma, row.rowInts, row.rowFloats, sampled, meta, s.vocab(),
                            SamplingKernels.CANDIDATES)
                    .transferToHost(DataTransferMode.UNDER_DEMAND, sampled), KernelSupport.MAX_LOCAL, KernelSupport.MAX_LOCAL, null, sampled,
                    new float[] {how.sample(lm)}, 0));
        }
        return out;
    }
}
