package internlm.engine.bench;

import internlm.engine.Engine;
import internlm.engine.model.Backend;
import internlm.engine.model.Batch;
import internlm.engine.model.Rope;
import internlm.engine.tornado.TornadoProbe;
import internlm.engine.tornado.TornadoSupport;
import internlm.loader.LoadedModel;
import internlm.loader.ModelConfig;
import internlm.loader.Progress;
import internlm.loader.TensorData;
import internlm.loader.gguf.GgmlType;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Runs a {@link BenchPlan} on a loaded model: per device, a bandwidth probe, one backend, then every test, each row
 * handed to the sink as soon as it is measured. Timed is the forward pass only (the backend's {@code forward} calls
 * of the test's tokens, ids generated up front: no tokenization); loading and preparing the backend are reported as
 * {@code load_ms}. A device the model does not fit gets {@code too_large} rows before anything is allocated on it,
 * a sequence count beyond what a backend holds gets {@code unsupported} rows, and the other devices still run.
 */
public final class BenchRunner {

    /** Receives rows as they are measured. */
    @FunctionalInterface
    public interface Sink {
        void add(BenchRow row) throws IOException;
    }

    /** Where the model came from (for the rows): file name, whether synthetic, and the load time. */
    public record Source(String filename, boolean synthetic, long loadMs) {}

    private final BenchPlan plan;
    private final PrintStream log;
    private final Progress progress;
    private final String commit;

    public BenchRunner(BenchPlan plan, PrintStream log, Progress progress, String commit) {
        this.plan = plan;
        this.log = log;
        this.progress = progress;
        this.commit = commit;
    }

    /** The plan's devices, "all" expanded to "cpu" plus every TornadoVM device (when this JVM runs under TornadoVM). */
    private List<String> devices() {
        List<String> d = new ArrayList<>();
        for (String x : plan.devices()) {
            if (!x.equals("all")) {
                d.add(x);
                continue;
            }
            d.add("cpu");
            if (TornadoSupport.available()) {
                for (TornadoSupport.DeviceInfo i : TornadoSupport.devices()) {
                    d.add(i.id());
                }
            }
        }
        return d;
    }

    public List<BenchRow> run(LoadedModel model, Source source, Sink sink) throws IOException {
        List<BenchRow> all = new ArrayList<>();
        Sink both = r -> {
            all.add(r);
            sink.add(r);
        };
        if (TornadoSupport.available()) {
            // TornadoVM reads its settings once, at first use (listing devices included): the device memory this
            // model needs (or the probe, if larger), and no silent fall-back to the JVM
            long probeBytes = plan.probeBytes() > 0 ? plan.probeBytes() : 1L << 30;
            TornadoSupport.prepareRuntime(Math.max(TornadoProbe.deviceBytes(model, plan.context(), plan.maxSequences(), plan.kvCacheF16()), probeBytes + (64L << 20)));
        }
        for (String device : devices()) {
            runDevice(model, source, device, both);
        }
        return all;
    }

    /** Fields every row of one device shares. */
    private record Common(String commit, String time, String jdk, String tornado, String file, String type, String family, String shape,
                          String weightType, long size, long params, boolean synthetic, String device, String backend, String name,
                          String driver, String version, int threads, String kv) {}

    private BenchRow row(Common c, int p, int n, int d, int b, String status, String note, long loadMs, double[] ns, double tokens,
                         Double bw, String probe, Double bytesPerToken, Double roof) {
        double[] ts = new double[ns.length];
        for (int i = 0; i < ns.length; i++) {
            ts[i] = tokens * 1e9 / ns[i];
        }
        Stats sn = ns.length > 0 ? Stats.of(ns) : null, st = ns.length > 0 ? Stats.of(ts) : null;
        return new BenchRow(c.commit(), c.time(), c.jdk(), c.tornado(), c.file(), c.type(), c.family(), c.shape(), c.weightType(), c.size(),
                c.params(), c.synthetic(), c.device(), c.backend(), c.name(), c.driver(), c.version(), c.threads(), c.kv(), c.kv(),
                BenchRow.testName(p, n, d, b), p, n, d, b, status, note, loadMs,
                sn == null ? 0 : sn.mean(), sn == null ? 0 : sn.stddev(), st == null ? 0 : st.mean(), st == null ? 0 : st.stddev(),
                st == null ? 0 : st.median(), ns, ts, bw, probe, bytesPerToken,
                roof, roof != null && st != null ? st.mean() / roof : null);
    }

    /** The rows of every test of the plan with one status (nothing ran). */
    private void allRows(Common c, String status, String note, Sink sink) throws IOException {
        for (int d : plan.depths()) {
            for (int b : plan.sequences()) {
                skipRows(c, d, b, status, note, sink);
            }
        }
    }

    private void skipRows(Common c, int d, int b, String status, String note, Sink sink) throws IOException {
        for (int p : plan.prompts()) {
            sink.add(row(c, p, 0, d, b, status, note, 0, new double[0], 0, null, "", null, null));
        }
        for (int n : plan.gens()) {
            sink.add(row(c, 0, n, d, b, status, note, 0, new double[0], 0, null, "", null, null));
        }
    }

    private void runDevice(LoadedModel model, Source src, String device, Sink sink) throws IOException {
        ModelConfig cfg = model.config();
        boolean cpu = device.equals("cpu");
        String kv = plan.kvCacheF16() ? "f16" : "f32"; // both backends keep the cache in the type --kv-cache names
        String backendName, name, driver = "", version = "", tornado = TornadoSupport.available() ? "" : "none";
        long deviceMemory = 0;
        String unavailable = null;
        if (cpu) {
            backendName = "CPU";
            name = cpuName();
            version = "Vector API " + jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.vectorBitSize() + "-bit";
        } else if (!TornadoSupport.available()) {
            backendName = "TornadoVM";
            name = device;
            unavailable = TornadoSupport.unavailableReason();
        } else {
            TornadoProbe.Device dev = null;
            try {
                dev = TornadoProbe.device(device);
            } catch (RuntimeException e) {
                unavailable = "no TornadoVM device " + device + " (" + BuildInfo.brief(e) + "); see 'internlm devices'";
            }
            backendName = dev == null ? "TornadoVM" : dev.backend();
            name = dev == null ? device : dev.name();
            if (dev != null) {
                driver = dev.driver();
                version = dev.version();
                deviceMemory = dev.memory();
            }
            tornado = TornadoProbe.version();
        }
        long params = 0, size = 0;
        Map<GgmlType, Long> byType = new EnumMap<>(GgmlType.class);
        for (TensorData t : model.tensors().values()) {
            params += t.elements();
            size += t.data().byteSize();
            if (t.dims().length == 2) {
                byType.merge(t.type(), t.data().byteSize(), Long::sum);
            }
        }
        String wtype = byType.entrySet().stream().max(Map.Entry.comparingByValue()).map(e -> e.getKey().name()).orElse("?");
        String type = params >= 100_000_000 ? String.format(Locale.ROOT, "%s %.1fB %s", cfg.architecture(), params / 1e9, wtype)
                : String.format(Locale.ROOT, "%s %.1fM %s", cfg.architecture(), params / 1e6, wtype);
        Common c = new Common(commit, Instant.now().truncatedTo(ChronoUnit.SECONDS).toString(), Runtime.version().toString(), tornado, src.filename(), type,
                cfg.family().label, cfg.shape(), wtype, size, params, src.synthetic(), device, backendName, name, driver, version,
                cpu ? threads() : 1, kv);
        if (unavailable != null) {
            log.println("[" + device + "] not run: " + unavailable);
            allRows(c, "error", unavailable, sink);
            return;
        }
        int ctx = plan.context();
        // does it fit? (before anything is allocated)
        String tooLarge = cpu ? cpuTooLarge(model) : deviceTooLarge(model, ctx, deviceMemory);
        if (tooLarge != null) {
            log.println("[" + device + "] " + tooLarge);
            allRows(c, "too_large", tooLarge, sink);
            return;
        }
        double bw;
        String probe;
        try {
            log.println("[" + device + "] measuring memory bandwidth ...");
            if (cpu) {
                long bytes = plan.probeBytes() > 0 ? plan.probeBytes() : Math.min(1L << 30, Runtime.getRuntime().maxMemory() / 8);
                bw = CpuBandwidth.measure(threads(), bytes, 5) * 1e9;
                probe = "Vector API streaming read, " + threads() + " threads, " + (bytes >> 20) + " MiB, best of 5";
            } else {
                long bytes = plan.probeBytes() > 0 ? plan.probeBytes() : Math.min(1L << 30, deviceMemory / 8);
                TornadoProbe.Bandwidth b = TornadoProbe.bandwidth(device, bytes, 5);
                bw = b.gbPerSecond() * 1e9;
                probe = b.method();
            }
            log.printf(Locale.ROOT, "[%s] %.1f GB/s (%s)%n", device, bw / 1e9, probe);
        } catch (Exception e) {
            log.println("[" + device + "] bandwidth probe failed: " + e.getMessage());
            bw = 0;
            probe = "failed: " + e.getMessage();
        }
        long t0 = System.nanoTime();
        Backend backend;
        try {
            backend = Engine.createBackend(model, new Engine.Options(cpu ? "cpu" : "tornado", plan.threads(), cpu ? null : device, true, ctx,
                    plan.kvCacheF16(), false, null, plan.maxSequences()), progress);
        } catch (RuntimeException e) {
            String msg = BuildInfo.brief(e);
            log.println("[" + device + "] cannot prepare the backend: " + msg);
            allRows(c, msg.contains("needs") && msg.contains("GiB") ? "too_large" : "error", msg, sink);
            return;
        }
        long loadMs = src.loadMs() + (System.nanoTime() - t0) / 1_000_000;
        log.println("[" + device + "] " + backend.description() + " (load " + loadMs + " ms)");
        try {
            long weights = Roofline.weightBytesPerStep(model);
            long kvPos = Roofline.kvBytesPerPosition(cfg, kv.equals("f16") ? 2 : 4);
            for (int d : plan.depths()) {
                for (int b : plan.sequences()) {
                    if (b > backend.maxSequences()) {
                        String note = "the " + backend.name() + " backend holds " + backend.maxSequences() + " sequence(s) at once";
                        log.println("[" + device + "] ×" + b + ": not supported (" + note + ")");
                        skipRows(c, d, b, "unsupported", note, sink);
                        continue;
                    }
                    runSet(c, backend, cfg, d, b, loadMs, bw, probe, weights, kvPos, sink);
                }
            }
        } finally {
            backend.close();
        }
    }

    private void runSet(Common c, Backend backend, ModelConfig cfg, int d, int b, long loadMs, double bw, String probe, long weights, long kvPos, Sink sink)
            throws IOException {
        int ctx = plan.context();
        List<Backend.Sequence> seqs = new ArrayList<>();
        SplittableRandom rnd = new SplittableRandom(12345 + 31L * d + b);
        int lo = Math.min(259, cfg.vocabSize() - 1), hi = Math.max(lo + 1, Math.min(cfg.vocabSize(), 90000));
        try {
            for (int i = 0; i < b; i++) {
                seqs.add(backend.openSequence(ctx));
            }
            if (d > 0) {
                log.printf("[%s] filling %d sequence(s) to depth %d ...%n", c.device(), b, d);
                for (Backend.Sequence s : seqs) {
                    int[] toks = rnd.ints(d, lo, hi).toArray();
                    for (int off = 0; off < d; off += 512) {
                        int len = Math.min(512, d - off);
                        backend.forward(s, java.util.Arrays.copyOfRange(toks, off, off + len), len, off, Rope.base(cfg, off + len), null);
                    }
                }
            }
            for (int p : plan.prompts()) {
                int[][] prompts = new int[b][];
                for (int i = 0; i < b; i++) {
                    prompts[i] = rnd.ints(p, lo, hi).toArray();
                }
                prompt(seqs, prompts, d, Math.min(p, 32), cfg, backend);
                double[] ns = new double[plan.reps()];
                for (int r = 0; r < plan.reps(); r++) {
                    ns[r] = prompt(seqs, prompts, d, p, cfg, backend);
                    log.printf(Locale.ROOT, "[%s] %s rep %d/%d: %.2f tok/s%n", c.device(), BenchRow.testName(p, 0, d, b), r + 1, plan.reps(), (double) b * p * 1e9 / ns[r]);
                }
                sink.add(row(c, p, 0, d, b, "ok", "", loadMs, ns, (double) b * p, bw > 0 ? bw / 1e9 : null, probe, null, null));
            }
            for (int n : plan.gens()) {
                int[] first = rnd.ints(b, lo, hi).toArray();
                decode(seqs, first, d, Math.min(n, 2), cfg, backend);
                double[] ns = new double[plan.reps()];
                for (int r = 0; r < plan.reps(); r++) {
                    ns[r] = decode(seqs, first, d, n, cfg, backend);
                    log.printf(Locale.ROOT, "[%s] %s rep %d/%d: %.2f tok/s%n", c.device(), BenchRow.testName(0, n, d, b), r + 1, plan.reps(), (double) b * n * 1e9 / ns[r]);
                }
                Double roof = bw > 0 ? Roofline.tokensPerSecond(bw, weights, kvPos, d, n, b) : null;
                sink.add(row(c, 0, n, d, b, "ok", "", loadMs, ns, (double) b * n, bw > 0 ? bw / 1e9 : null, probe,
                        Roofline.bytesPerToken(weights, kvPos, d, n, b), roof));
            }
        } catch (RuntimeException e) {
            String msg = BuildInfo.brief(e);
            log.println("[" + c.device() + "] d" + d + " ×" + b + " failed: " + msg);
            skipRows(c, d, b, "error", msg, sink);
        } finally {
            for (Backend.Sequence s : seqs) {
                s.close();
            }
        }
    }

    /** One prompt pass of every sequence in one batch, at positions d..d+len-1; nanoseconds. */
    private static double prompt(List<Backend.Sequence> seqs, int[][] prompts, int d, int len, ModelConfig cfg, Backend backend) {
        Batch batch = new Batch(seqs.size() * len);
        double base = Rope.base(cfg, d + len);
        for (int s = 0; s < seqs.size(); s++) {
            for (int i = 0; i < len; i++) {
                batch.add(seqs.get(s), d + i, prompts[s][i], base, i == len - 1 ? Batch.Output.ARGMAX : Batch.Output.NONE, null);
            }
        }
        long t0 = System.nanoTime();
        backend.forward(batch);
        return System.nanoTime() - t0;
    }

    /** {@code n} greedy decode steps of every sequence together from position d; nanoseconds of the forward passes. */
    private static double decode(List<Backend.Sequence> seqs, int[] first, int d, int n, ModelConfig cfg, Backend backend) {
        int b = seqs.size();
        int[] tok = first.clone();
        Batch batch = new Batch(b);
        long ns = 0;
        for (int step = 0; step < n; step++) {
            batch.clear();
            double base = Rope.base(cfg, d + step + 1);
            for (int s = 0; s < b; s++) {
                batch.add(seqs.get(s), d + step, tok[s], base, Batch.Output.ARGMAX, null);
            }
            long t0 = System.nanoTime();
            backend.forward(batch);
            ns += System.nanoTime() - t0;
            for (int s = 0; s < b; s++) {
                tok[s] = batch.argmax(s);
            }
        }
        return ns;
    }

    private int threads() {
        return plan.threads() > 0 ? plan.threads() : Runtime.getRuntime().availableProcessors();
    }

    /** Heap the CPU backend needs for repacked Q8_0/Q4_0 weights (quants + f32 scales), against the free heap. */
    static String cpuTooLarge(LoadedModel m) {
        long need = 0;
        for (TensorData t : m.tensors().values()) {
            if (t.dims().length == 2 && (t.type() == GgmlType.Q8_0 || t.type() == GgmlType.Q4_0)) {
                need += t.data().byteSize() / t.type().bytesPerBlock * (t.type().bytesPerBlock + 2);
            }
        }
        Runtime rt = Runtime.getRuntime();
        long free = rt.maxMemory() - (rt.totalMemory() - rt.freeMemory());
        if (need > 0.9 * free) {
            return String.format(Locale.ROOT, "the CPU backend needs %.2f GiB of heap for the repacked weights, %.2f GiB are free (raise -Xmx)", need / 1073741824.0, free / 1073741824.0);
        }
        return null;
    }

    private String deviceTooLarge(LoadedModel m, int ctx, long memory) {
        long need = TornadoProbe.deviceBytes(m, ctx, plan.maxSequences(), plan.kvCacheF16());
        if (memory > 0 && need > memory) {
            return String.format(Locale.ROOT, "the model needs %.2f GiB on the device (weights, KV cache for %d tokens, buffers), the device has %.2f GiB",
                    need / 1073741824.0, ctx, memory / 1073741824.0);
        }
        return null;
    }

    private static String cpuName() {
        try {
            for (String l : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                if (l.startsWith("model name")) {
                    return l.substring(l.indexOf(':') + 1).trim();
                }
            }
        } catch (IOException | RuntimeException e) {
            // not Linux
        }
        return System.getProperty("os.arch");
    }
}
