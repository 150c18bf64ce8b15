package internlm.engine.tornado;

import internlm.engine.bench.KernelRow;
import internlm.engine.bench.Stats;
import internlm.kernels.AttentionKernels;
import internlm.kernels.BatchKernels;
import internlm.engine.sampling.RowSampling;
import internlm.engine.sampling.SamplerConfig;
import internlm.kernels.BatchLayout;
import internlm.kernels.DeviceLayouts;
import internlm.kernels.GemmKernels;
import internlm.kernels.KernelSupport;
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
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.function.Consumer;

/**
 * {@code bench kernels}: the kernels the TornadoVM backend runs when it decodes one token, at the real shapes of one
 * model, on each device, launched exactly as the graph builder launches them ({@link DeviceWeight}'s tasks, meta with
 * one row): the fused Q/K/V product (stacked matrices; RMSNorm read on the fly or from a norm pass), SwiGLU (stacked
 * gate/up), the residual products (attention output, FFN down, LM head with {@code --lm-head}), the RMSNorm pass (and
 * with Q8_0 rounding), attention in one pass or split over the context (flash-decoding, partial + merge) at several
 * depths, the two-phase argmax and
 * sampling one row (checked against the CPU sampler's token for the same draw). µs per launch is TornadoVM's device kernel time when its profiler reports one
 * (else the wall time of execute()); GB/s and GFLOP/s follow from the bytes and operations a launch needs; the output
 * is checked against a host computation in double precision after every launch. Variants have names — work-group
 * size {@code wgN}, work-items per output row {@code lN} (several rows per group), F16 as {@code bits} or
 * {@code native} half, {@code norm} fused or read from a pass, {@code splitN} — so each tuning choice can be measured
 * side by side; {@code --variants} selects them by name.
 */
public final class KernelBench {
    private KernelBench() {}

    /**
     * What to run. {@code kernels}: names to keep (empty = all of qkv, swiglu, product, rmsnorm, attention, argmax, sample);
     * {@code variants}: variant names to keep (empty = all); {@code types}: weight types; {@code depths}: attention
     * lengths; {@code lmHead}: also the vocabulary-wide projection (large).
     */
    public record Plan(List<String> devices, SyntheticModels.Shape shape, List<GgmlType> types, List<String> kernels, List<String> variants,
                       int[] depths, int reps, boolean lmHead, long probeBytes, String commit) {}

    @FunctionalInterface
    public interface Sink {
        void add(KernelRow r) throws IOException;
    }

    /** A launch shape: task name, work-items, work-group size. */
    private record Launch(String task, long global, int local) {}

    /** One prepared case: its graph (tasks added to g), launches, the output to check against expect within tolerance. */
    private record Case(String kernel, String variant, String shape, long bytes, long flops, Consumer<TaskGraph> tasks, List<Launch> launches,
                        Object[] inputs, FloatArray out, IntArray outInt, double[] expect, double tolerance) {}

    /** Product variants: name, work-group size, work-items per output row. */
    private static final Object[][] PRODUCT_VARIANTS = {{"wg64", 64, 64}, {"wg64 l16", 64, 16}, {"wg128", 128, 128}, {"wg128 l32", 128, 32}, {"wg256 l32", 256, 32}};

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
        for (Launch l : c.launches()) {
            WorkerGrid1D w = new WorkerGrid1D(Math.toIntExact(l.global()));
            w.setLocalWork(l.local(), 1, 1);
            grid.addWorkerGrid("k." + l.task(), w);
        }
        TaskGraph g = new TaskGraph("k").transferToDevice(DataTransferMode.FIRST_EXECUTION, c.inputs());
        c.tasks().accept(g);
        g.transferToHost(DataTransferMode.UNDER_DEMAND, c.out() != null ? c.out() : c.outInt());
        TornadoExecutionPlan p = new TornadoExecutionPlan(g.snapshot());
        double maxErr = 0;
        boolean kernelTime = true;
        double[] us = new double[plan.reps()];
        try {
            int[] bd = TornadoSupport.parseDevice(device);
            p.withDevice(TornadoExecutionPlan.getDevice(bd[0], bd[1])).withGridScheduler(grid).withProfiler(ProfilerMode.SILENT);
            for (int r = 0; r <= plan.reps(); r++) {
                long t0 = System.nanoTime();
                TornadoExecutionResult res = p.execute();
                long wall = System.nanoTime() - t0;
                long k;
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
        log.printf(Locale.ROOT, "[%s] %-9s %-22s %-22s %9.1f µs %8.2f GB/s %7.2f GFLOP/s  max |err| %.2g %s%n", device, c.kernel(), c.variant(), c.shape(),
                s.median(), gbs, gflops, maxErr, check);
        return new KernelRow(commit, time, TornadoProbe.version(), device, dev.backend(), dev.name(), plan.shape().name(), c.kernel(), c.variant(), c.shape(),
                c.bytes(), c.flops(), plan.reps(), s.mean(), s.stddev(), s.median(), gbs, gflops, bw > 0 ? bw : null, bw > 0 ? gbs / bw : null, maxErr, check,
                kernelTime ? "device kernel time" : "wall time of execute()");
    }

    // ------------------------------------------------------------------ inputs and host references

    private static float[] random(int n, double amp, SplittableRandom r) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) ((2 * r.nextDouble() - 1) * amp);
        }
        return v;
    }

    /** A weight matrix in a type: the backend's device form and the values it holds (the reference's input). */
    private record Weights(DeviceWeight device, float[] values) {}

    private static Weights weights(GgmlType type, int rows, int cols, boolean nativeHalf, SplittableRandom r) {
        float[] v = random(rows * cols, Math.sqrt(3.0 / cols), r);
        MemorySegment seg = MemorySegment.ofArray(new byte[(int) type.byteSize((long) rows * cols)]);
        switch (type) {
            case F32 -> MemorySegment.copy(MemorySegment.ofArray(v), 0, seg, 0, 4L * v.length);
            case F16 -> {
                for (int i = 0; i < v.length; i++) {
                    seg.set(ValueLayout.JAVA_SHORT_UNALIGNED, 2L * i, Float.floatToFloat16(v[i]));
                }
            }
            case Q8_0 -> Quants.quantizeQ8_0(v, 0, v.length, seg, 0);
            case Q4_0 -> Quants.quantizeQ4_0(v, 0, v.length, seg, 0);
            default -> throw new IllegalArgumentException("kernel benchmark types are F32, F16, Q8_0, Q4_0, not " + type);
        }
        float[] deq = new float[v.length];
        Quants.dequantize(type, seg, 0, deq, 0, deq.length);
        return new Weights(DeviceWeight.of(new TensorData("w", type, new long[] {cols, rows}, seg), nativeHalf, KernelSupport.halfTable()), deq);
    }

    private static double[] matvec(float[] w, double[] x, int from, int rows, int cols) {
        double[] y = new double[rows];
        for (int r = 0; r < rows; r++) {
            double s = 0;
            for (int c = 0; c < cols; c++) {
                s += (double) w[(from + r) * cols + c] * x[c];
            }
            y[r] = s;
        }
        return y;
    }

    private static double[] widen(float[] x) {
        double[] d = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            d[i] = x[i];
        }
        return d;
    }

    private static double[] rmsNorm(float[] x, float[] w, float eps) {
        double ss = 0;
        for (float v : x) {
            ss += (double) v * v;
        }
        double scale = 1 / Math.sqrt(ss / x.length + eps);
        double[] o = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            o[i] = x[i] * scale * w[i];
        }
        return o;
    }

    private static double tolerance(double[] expect, double rel) {
        double m = 0;
        for (double x : expect) {
            m = Math.max(m, Math.abs(x));
        }
        return rel * Math.max(1, m);
    }

    /** meta for one decode row at {@code position} of slot 0, with {@code lanes} work-items per output row. */
    private static IntArray meta(int lanes, int position, int splits) {
        IntArray m = new IntArray(BatchLayout.SIZE);
        m.set(BatchLayout.ROWS, 1);
        m.set(BatchLayout.OUT_ROWS, 1);
        m.set(BatchLayout.LANES, lanes);
        m.set(BatchLayout.POSITION, position);
        m.set(BatchLayout.SPLITS, splits);
        return m;
    }

    private static long productGroups(int rows, int lanes, int local) {
        return Math.max(GemmKernels.laneGroups(rows, lanes, local), GemmKernels.tiles(rows));
    }

    // ------------------------------------------------------------------ the cases

    /** Fused QKV (norm fused or from a pass), SwiGLU and the residual products in one weight type, every variant. */
    private static List<Case> typeCases(Plan plan, GgmlType type) {
        SyntheticModels.Shape s = plan.shape();
        int dim = s.dim(), qd = s.qDim(), kvd = s.kvDim(), ffn = s.ffn(), total = qd + 2 * kvd;
        List<Case> out = new ArrayList<>();
        SplittableRandom rnd = new SplittableRandom(7 + type.ordinal());
        float eps = 1e-5f;
        float[] x = random(dim, 2, rnd), normW = random(dim, 1, rnd);
        float[] vec = new float[dim + 1];
        System.arraycopy(normW, 0, vec, 0, dim);
        vec[dim] = eps;
        double[] xnRef = rmsNorm(x, normW, eps);
        float[] xnf = new float[dim];
        for (int i = 0; i < dim; i++) {
            xnf[i] = (float) xnRef[i];
        }
        FloatArray xa = DeviceLayouts.floats(x), xna = DeviceLayouts.floats(xnf), va = DeviceLayouts.floats(vec);
        List<Boolean> halfModes = type == GgmlType.F16 ? List.of(false, true) : List.of(false);
        for (boolean nativeHalf : halfModes) {
            String t = type.name() + (type == GgmlType.F16 ? (nativeHalf ? " native" : " bits") : "");
            Weights wqkv = weights(type, total, dim, nativeHalf, rnd);
            double[] eqkv = matvec(wqkv.values(), xnRef, 0, total, dim);
            FloatArray q = new FloatArray(qd), k = new FloatArray(kvd), v = new FloatArray(kvd);
            double[] eq = java.util.Arrays.copyOf(eqkv, qd);
            Weights gu = weights(type, 2 * ffn, dim, nativeHalf, rnd);
            double[] g = matvec(gu.values(), xnRef, 0, ffn, dim), u = matvec(gu.values(), xnRef, ffn, ffn, dim), eh = new double[ffn];
            for (int i = 0; i < ffn; i++) {
                eh[i] = g[i] / (1 + Math.exp(-g[i])) * u[i];
            }
            FloatArray h = new FloatArray(ffn);
            for (Object[] pv : PRODUCT_VARIANTS) {
                int local = (int) pv[1], lanes = (int) pv[2];
                for (boolean fused : new boolean[] {false, true}) {
                    String variant = t + " " + pv[0] + (fused ? " norm" : "");
                    IntArray meta = meta(lanes, 0, 1);
                    int normOff = fused ? 0 : -1;
                    out.add(new Case("qkv", variant, qd + "+" + kvd + "+" + kvd + "x" + dim, wqkv.device().bytes() + 4L * (dim + total) + (fused ? 4L * dim : 0),
                            2L * total * dim, tg -> wqkv.device().qkv(tg, "run", new KernelContext(), xa, xna, va, q, k, v, meta, qd, kvd, normOff, -1),
                            List.of(new Launch("run", productGroups(total, lanes, local) * local, local)), concat(wqkv.device().arrays(), xa, xna, va, q, k, v, meta),
                            q, null, eq, tolerance(eq, 2e-3)));
                    out.add(new Case("swiglu", variant, "2x" + ffn + "x" + dim, gu.device().bytes() + 4L * (dim + ffn) + (fused ? 4L * dim : 0), 4L * ffn * dim,
                            tg -> gu.device().swiglu(tg, "run", new KernelContext(), xa, xna, va, h, meta, normOff),
                            List.of(new Launch("run", productGroups(ffn, lanes, local) * local, local)), concat(gu.device().arrays(), xa, xna, va, h, meta),
                            h, null, eh, tolerance(eh, 2e-3)));
                }
            }
            // the products that add into the residual stream (run here as y = W·x, so that repeated launches check alike)
            List<int[]> proj = new ArrayList<>(List.of(new int[] {dim, qd}, new int[] {dim, ffn}));
            List<String> names = new ArrayList<>(List.of("attn_output", "ffn_down"));
            if (plan.lmHead()) {
                proj.add(new int[] {s.vocab(), dim});
                names.add("output");
            }
            for (int pi = 0; pi < proj.size(); pi++) {
                int rows = proj.get(pi)[0], cols = proj.get(pi)[1];
                Weights w = weights(type, rows, cols, nativeHalf, rnd);
                float[] xin = random(cols, 1, rnd);
                double[] ey = matvec(w.values(), widen(xin), 0, rows, cols);
                FloatArray xi = DeviceLayouts.floats(xin), y = new FloatArray(rows);
                for (Object[] pv : PRODUCT_VARIANTS) {
                    int local = (int) pv[1], lanes = (int) pv[2];
                    IntArray meta = meta(lanes, 0, 1);
                    out.add(new Case("product", t + " " + pv[0], names.get(pi) + " " + rows + "x" + cols, w.device().bytes() + 4L * (cols + rows),
                            2L * rows * cols, tg -> w.device().product(tg, "run", new KernelContext(), xi, y, va, meta, BatchLayout.ROWS, false, -1),
                            List.of(new Launch("run", productGroups(rows, lanes, local) * local, local)), concat(w.device().arrays(), xi, y, va, meta),
                            y, null, ey, tolerance(ey, 2e-3)));
                }
            }
        }
        return out;
    }

    private static Object[] concat(Object[] first, Object... rest) {
        Object[] all = java.util.Arrays.copyOf(first, first.length + rest.length);
        System.arraycopy(rest, 0, all, first.length, rest.length);
        return all;
    }

    /** RMSNorm (and with Q8_0 rounding), attention in one pass and split at the plan's depths, argmax. */
    private static List<Case> otherCases(Plan plan) {
        SyntheticModels.Shape s = plan.shape();
        int dim = s.dim(), qd = s.qDim(), kvd = s.kvDim(), hd = s.headDim();
        List<Case> out = new ArrayList<>();
        SplittableRandom rnd = new SplittableRandom(5);
        float[] x = random(dim, 2, rnd), w = random(dim, 1, rnd);
        float[] vec = java.util.Arrays.copyOf(w, dim + 1);
        vec[dim] = 1e-5f;
        double[] en = rmsNorm(x, w, 1e-5f);
        FloatArray xa = DeviceLayouts.floats(x), va = DeviceLayouts.floats(vec), yn = new FloatArray(dim), yr = new FloatArray(dim);
        for (int local : new int[] {64, 128, 256}) {
            IntArray meta = meta(local, 0, 1);
            for (boolean round : new boolean[] {false, true}) {
                // rounding moves a value by up to half a Q8_0 step of its block (amax / 254)
                out.add(new Case("rmsnorm", "wg" + local + (round ? " round" : ""), Integer.toString(dim), 12L * dim + (round ? 4L * dim : 0), 4L * dim,
                        tg -> tg.task("run", BatchKernels::rmsNorm, new KernelContext(), xa, va, yn, yr, meta, BatchLayout.ROWS, dim, 0, round ? BatchKernels.NORM_ROUND : 0),
                        List.of(new Launch("run", local, local)), new Object[] {xa, va, yn, yr, meta}, round ? yr : yn, null, en,
                        round ? tolerance(en, 1.0 / 200) : tolerance(en, 1e-5)));
            }
        }
        // attention of one token over caches of several depths: one pass, and split over the context
        int att = Math.max(32, GraphBuilder.pow2AtLeast(hd));
        for (int depth : plan.depths()) {
            float[] qv = random(qd, 1, rnd), keys = random(depth * kvd, 1, rnd), values = random(depth * kvd, 1, rnd);
            double[] ea = attention(qv, keys, values, depth, s.heads(), s.kvHeads(), hd);
            FloatArray qf = DeviceLayouts.floats(qv), kc = DeviceLayouts.floats(keys), vc = DeviceLayouts.floats(values), ao = new FloatArray(qd);
            String shape = s.heads() + "/" + s.kvHeads() + " heads, depth " + depth;
            long bytes = 8L * depth * kvd + 8L * qd, flops = 4L * depth * qd;
            IntArray meta1 = meta(att, depth - 1, 1);
            out.add(new Case("attention", "f32 cache wg" + att, shape, bytes, flops,
                    tg -> tg.task("run", AttentionKernels::attention, new KernelContext(), qf, kc, vc, ao, meta1, s.heads(), s.kvHeads(), hd, 0),
                    List.of(new Launch("run", (long) s.heads() * att, att)), new Object[] {qf, kc, vc, ao, meta1}, ao, null, ea, tolerance(ea, 1e-3)));
            for (int splits : new int[] {8, 32}) {
                int active = Math.max(1, Math.min(splits, depth / DeviceTuning.SPLIT_MIN_POSITIONS));
                IntArray meta = meta(att, depth - 1, active);
                FloatArray part = new FloatArray(s.heads() * splits * (hd + 2)), merged = new FloatArray(qd);
                out.add(new Case("attention", "f32 cache wg" + att + " split" + splits, shape, bytes, flops, tg -> {
                    tg.task("run", AttentionKernels::attentionPartial, new KernelContext(), qf, kc, vc, part, meta, s.heads(), s.kvHeads(), hd, splits);
                    tg.task("merge", AttentionKernels::attentionMerge, new KernelContext(), part, merged, meta, s.heads(), hd, splits, 0);
                }, List.of(new Launch("run", (long) s.heads() * splits * att, att), new Launch("merge", (long) s.heads() * att, att)),
                        new Object[] {qf, kc, vc, part, merged, meta}, merged, null, ea, tolerance(ea, 1e-3)));
            }
        }
        // argmax over the vocabulary (two phases in one graph)
        float[] logits = random(s.vocab(), 10, rnd);
        int best = 0;
        for (int i = 1; i < logits.length; i++) {
            if (logits[i] > logits[best]) {
                best = i;
            }
        }
        FloatArray la = DeviceLayouts.floats(logits), pv = new FloatArray(64);
        IntArray pi = new IntArray(64), res = new IntArray(1), meta = meta(256, 0, 1);
        out.add(new Case("argmax", "64 groups wg256", Integer.toString(s.vocab()), 4L * s.vocab(), s.vocab(), tg -> {
            tg.task("run", BatchKernels::argmaxPartial, new KernelContext(), la, pv, pi, meta, s.vocab());
            tg.task("final", BatchKernels::argmaxFinal, new KernelContext(), pv, pi, res, meta, 64);
        }, List.of(new Launch("run", 64 * 256, 256), new Launch("final", 64, 64)), new Object[] {la, pv, pi, res, meta}, null, res, new double[] {best}, 0));
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
        FloatArray lma = DeviceLayouts.floats(lm);
        for (int c = 0; c < configs.length; c++) {
            RowSampling how = RowSampling.of(configs[c], 0.37, new int[0], 0);
            DeviceSampling row = new DeviceSampling(1, lm.length, 1);
            row.device(0, how);
            IntArray sm = new IntArray(BatchLayout.SIZE), sampled = new IntArray(1);
            sm.set(BatchLayout.OUT_ROWS, 1);
            out.add(new Case("sample", names[c], Integer.toString(s.vocab()), 4L * s.vocab(), s.vocab(),
                    tg -> tg.task("run", SamplingKernels::sampleTokens, new KernelContext(), lma, row.rowInts, row.rowFloats, sampled, sm, s.vocab(),
                            SamplingKernels.CANDIDATES),
                    List.of(new Launch("run", KernelSupport.MAX_LOCAL, KernelSupport.MAX_LOCAL)),
                    new Object[] {lma, row.rowInts, row.rowFloats, sampled, sm}, null, sampled, new double[] {how.sample(lm)}, 0));
        }
        return out;
    }

    /** Causal attention of one query over {@code len} cached positions, per head (grouped-query heads share K/V). */
    private static double[] attention(float[] q, float[] keys, float[] values, int len, int heads, int kvHeads, int hd) {
        int kvDim = kvHeads * hd;
        double[] out = new double[heads * hd];
        for (int h = 0; h < heads; h++) {
            int g = h / (heads / kvHeads);
            double[] sc = new double[len];
            double mx = Double.NEGATIVE_INFINITY;
            for (int t = 0; t < len; t++) {
                double d = 0;
                for (int i = 0; i < hd; i++) {
                    d += (double) q[h * hd + i] * keys[t * kvDim + g * hd + i];
                }
                sc[t] = d / Math.sqrt(hd);
                mx = Math.max(mx, sc[t]);
            }
            double sum = 0;
            for (int t = 0; t < len; t++) {
                sc[t] = Math.exp(sc[t] - mx);
                sum += sc[t];
            }
            for (int i = 0; i < hd; i++) {
                double a = 0;
                for (int t = 0; t < len; t++) {
                    a += sc[t] * values[t * kvDim + g * hd + i];
                }
                out[h * hd + i] = a / sum;
            }
        }
        return out;
    }
}
