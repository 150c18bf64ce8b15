package internlm.engine.bench;

import com.fasterxml.jackson.databind.JsonNode;
import internlm.engine.Engine;
import internlm.engine.generate.Session;
import internlm.engine.sampling.Sampler;
import internlm.engine.tornado.TornadoProbe;
import internlm.loader.LoadedModel;
import internlm.loader.Progress;
import internlm.loader.gguf.GgmlType;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.Locale;

/**
 * {@code bench check}: runs each fixture model (a GGUF with its {@code .expected.json}: the prompt) on the CPU
 * backend and on a TornadoVM device, both with exact float activations, feeding both the CPU's greedy choices, and
 * compares every step's logits: within 2e-4 (float weights) or 3e-3 (quantized) of the largest logit's magnitude,
 * greedy ids identical until the CPU's top two come closer than twice that. The check the test suite's
 * TornadoBackendTest makes, for machines that have only a JDK and TornadoVM.
 */
public final class BackendCheck {
    private BackendCheck() {}

    /** One fixture on one device. {@code check} is ok or FAILED (or error: with {@code note}). */
    public record CheckRow(String buildCommit, String testTime, String device, String backends, String gpuInfo, String fixture, int steps,
                           int identicalIds, double maxLogitDiff, double tolerance, String check, String note) {}

    @FunctionalInterface
    public interface Sink {
        void add(CheckRow r) throws IOException;
    }

    /** Returns the number of failures. */
    public static int run(List<Path> fixtures, List<String> devices, int steps, String commit, PrintStream log, Sink sink) throws IOException {
        int failures = 0;
        for (Path gguf : fixtures) {
            String name = gguf.getFileName().toString();
            Path expected = gguf.resolveSibling(name.substring(0, name.length() - ".gguf".length()) + ".expected.json");
            int[] prompt = BenchFormat.JSON_MAPPER.convertValue(BenchFormat.JSON_MAPPER.readTree(Files.readString(expected)).path("decode").path("prompt"), int[].class);
            if (prompt == null || prompt.length == 0) {
                throw new IllegalArgumentException(expected + ": no decode.prompt");
            }
            try (Engine cpu = Engine.load(gguf, new Engine.Options("cpu", 2, null, false, 128, false, false, null), Progress.NONE)) {
                for (String device : devices) {
                    CheckRow r = check(cpu, gguf, device, prompt, steps, commit);
                    failures += r.check().equals("ok") ? 0 : 1;
                    log.printf(Locale.ROOT, "[%s] %-55s %s: ids identical %d/%d, max |logit diff| %.2g (tolerance %.2g)%s%n", device, name, r.check(),
                            r.identicalIds(), r.steps(), r.maxLogitDiff(), r.tolerance(), r.note().isEmpty() ? "" : " " + r.note());
                    sink.add(r);
                }
            }
        }
        return failures;
    }

    private static CheckRow check(Engine cpu, Path gguf, String device, int[] prompt, int steps, String commit) {
        String time = Instant.now().truncatedTo(ChronoUnit.SECONDS).toString();
        String fixture = gguf.getFileName().toString();
        TornadoProbe.Device dev;
        try {
            dev = TornadoProbe.device(device);
        } catch (RuntimeException e) {
            return new CheckRow(commit, time, device, "TornadoVM", device, fixture, 0, 0, 0, 0, "error", BuildInfo.brief(e));
        }
        LoadedModel m = cpu.model();
        boolean quantized = m.tensors().values().stream().anyMatch(t -> t.type() == GgmlType.Q8_0 || t.type() == GgmlType.Q4_0);
        double maxDiff = 0, tolUsed = 0;
        int identical = 0;
        try (Engine gpu = Engine.load(gguf, new Engine.Options("tornado", 1, device, false, 128, false, false, null), Progress.NONE);
             Session sc = cpu.newSession(128); Session sg = gpu.newSession(128)) {
            float[] lc = sc.prefill(prompt).clone(), lg = sg.prefill(prompt).clone();
            boolean tie = false, ok = true;
            for (int i = 0; i < steps; i++) {
                double scale = 0;
                for (float v : lc) {
                    scale = Math.max(scale, Math.abs(v));
                }
                double tol = (quantized ? 3e-3 : 2e-4) * Math.max(1, scale);
                tolUsed = Math.max(tolUsed, tol);
                for (int t = 0; t < lc.length; t++) {
                    double d = Float.isFinite(lg[t]) ? Math.abs(lc[t] - lg[t]) : Double.POSITIVE_INFINITY;
                    maxDiff = Math.max(maxDiff, d);
                    ok &= d <= tol;
                }
                int next = Sampler.argmax(lc);
                int[] top = Sampler.topIndices(lc, 2);
                tie |= lc[top[0]] - lc[top[1]] < 2 * tol;
                if (!tie) {
                    ok &= next == Sampler.argmax(lg);
                    identical += next == Sampler.argmax(lg) ? 1 : 0;
                }
                lc = sc.append(next).clone();
                lg = sg.append(next).clone();
            }
            return new CheckRow(commit, time, device, dev.backend(), dev.name(), fixture, steps, identical, maxDiff, tolUsed, ok ? "ok" : "FAILED", "");
        } catch (RuntimeException e) {
            return new CheckRow(commit, time, device, dev.backend(), dev.name(), fixture, steps, identical, maxDiff, tolUsed, "error", BuildInfo.brief(e));
        }
    }
}
