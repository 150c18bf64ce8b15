package internlm.engine.bench;

import com.fasterxml.jackson.databind.JsonNode;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * {@code bench report}: reads jsonl/json results of {@code bench} and {@code bench kernels} and writes a page of
 * tables and charts — tok/s per device and backend, fraction of the memory roofline, pp/tg against KV depth and
 * against concurrent sequences, kernel GB/s per device — as one self-contained HTML file (inline SVG, no scripts,
 * nothing fetched) or as Markdown with the charts as SVG files beside it.
 */
public final class Report {
    private final List<BenchRow> rows = new ArrayList<>();
    private final List<KernelRow> kernels = new ArrayList<>();
    private final List<BackendCheck.CheckRow> checks = new ArrayList<>();
    private final List<String> sources = new ArrayList<>();

    /** Reads a results file: JSON lines (or one JSON array) of bench rows and kernel rows, told apart by their fields. */
    public Report add(Path file) throws IOException {
        String text = Files.readString(file, StandardCharsets.UTF_8).trim();
        List<JsonNode> nodes = new ArrayList<>();
        if (text.startsWith("[")) {
            BenchFormat.JSON_MAPPER.readTree(text).forEach(nodes::add);
        } else {
            for (String line : text.split("\n")) {
                if (!line.isBlank()) {
                    nodes.add(BenchFormat.JSON_MAPPER.readTree(line));
                }
            }
        }
        for (JsonNode n : nodes) {
            if (n.has("identical_ids")) {
                checks.add(BenchFormat.JSON_MAPPER.treeToValue(n, BackendCheck.CheckRow.class));
            } else if (n.has("kernel")) {
                kernels.add(BenchFormat.JSON_MAPPER.treeToValue(n, KernelRow.class));
            } else if (n.has("avg_ts")) {
                rows.add(BenchFormat.JSON_MAPPER.treeToValue(n, BenchRow.class));
            } else {
                throw new IOException(file + ": a line that is neither a bench row nor a kernel row: " + n.toString().substring(0, Math.min(120, n.toString().length())));
            }
        }
        sources.add(file.getFileName().toString());
        return this;
    }

    public List<BenchRow> rows() {
        return rows;
    }

    public List<KernelRow> kernels() {
        return kernels;
    }

    private static String deviceLabel(BenchRow r) {
        return r.device() + " " + r.backends() + " " + shortName(r.gpuInfo());
    }

    private static String shortName(String n) {
        String s = n.replace("pthread-", "").replace("(R)", "").replace("(TM)", "").replaceAll("^[a-z0-9]+-avx[0-9a-z]*-", "").trim();
        return s.length() > 28 ? s.substring(0, 28) : s;
    }

    /** One chart: title, file stem, SVG. */
    public record Chart(String title, String name, String svg) {}

    public List<Chart> charts() {
        List<Chart> out = new ArrayList<>();
        List<BenchRow> ok = rows.stream().filter(BenchRow::ok).toList();
        for (boolean decode : new boolean[] {true, false}) {
            List<BenchRow> base = ok.stream().filter(r -> (decode ? r.nGen() > 0 : r.nPrompt() > 0) && r.nDepth() == 0 && r.nSeq() == 1).toList();
            if (!base.isEmpty()) {
                out.add(bars((decode ? "Decode" : "Prompt processing") + " tok/s per device and backend (depth 0, one sequence)", decode ? "tg-per-device" : "pp-per-device",
                        "tok/s", base, BenchRow::avgTs));
            }
        }
        List<BenchRow> roof = ok.stream().filter(r -> r.rooflineFraction() != null && r.nDepth() == 0 && r.nSeq() == 1).toList();
        if (!roof.isEmpty()) {
            out.add(bars("Decode speed as % of the memory roofline (measured bandwidth / bytes per token)", "roofline", "% of roofline", roof, r -> 100 * r.rooflineFraction()));
        }
        Set<Integer> depths = new TreeSet<>();
        ok.forEach(r -> depths.add(r.nDepth()));
        if (depths.size() > 1) {
            out.add(lines("tok/s against KV depth (one sequence)", "vs-depth", "KV depth (tokens)", ok.stream().filter(r -> r.nSeq() == 1).toList(), BenchRow::nDepth, depths));
        }
        Set<Integer> seqs = new TreeSet<>();
        ok.forEach(r -> seqs.add(r.nSeq()));
        if (seqs.size() > 1) {
            int d0 = depths.isEmpty() ? 0 : depths.iterator().next();
            out.add(lines("Aggregate tok/s against concurrent sequences (depth " + d0 + ")", "vs-sequences", "concurrent sequences",
                    ok.stream().filter(r -> r.nDepth() == d0).toList(), BenchRow::nSeq, seqs));
        }
        List<KernelRow> kok = kernels.stream().filter(k -> "ok".equals(k.check())).toList();
        if (!kok.isEmpty()) {
            Map<String, Map<String, Double>> byCat = new LinkedHashMap<>();
            Set<String> devs = new LinkedHashSet<>();
            for (KernelRow k : kok) {
                String dev = k.device() + " " + k.backends() + " " + shortName(k.gpuInfo());
                devs.add(dev);
                byCat.computeIfAbsent(k.kernel() + " " + k.variant() + " " + k.shape(), x -> new LinkedHashMap<>()).put(dev, k.gbs());
            }
            List<String> cats = new ArrayList<>(byCat.keySet());
            if (cats.size() > 14) {
                cats = cats.subList(0, 14);
            }
            List<Svg.Series> series = new ArrayList<>();
            for (String d : devs) {
                double[] v = new double[cats.size()];
                for (int i = 0; i < cats.size(); i++) {
                    v[i] = byCat.get(cats.get(i)).getOrDefault(d, Double.NaN);
                }
                series.add(new Svg.Series(d, v));
            }
            out.add(new Chart("Kernel GB/s per device", "kernels", Svg.bars("Kernel GB/s per device", "GB/s", cats, series)));
        }
        return out;
    }

    private Chart bars(String title, String name, String yLabel, List<BenchRow> rs, java.util.function.ToDoubleFunction<BenchRow> value) {
        Map<String, Map<String, Double>> byCat = new LinkedHashMap<>();
        Set<String> devs = new LinkedHashSet<>();
        for (BenchRow r : rs) {
            String dev = deviceLabel(r);
            devs.add(dev);
            byCat.computeIfAbsent(r.modelType() + " " + r.test(), x -> new LinkedHashMap<>()).put(dev, value.applyAsDouble(r));
        }
        List<String> cats = new ArrayList<>(byCat.keySet());
        List<Svg.Series> series = new ArrayList<>();
        for (String d : devs) {
            double[] v = new double[cats.size()];
            for (int i = 0; i < cats.size(); i++) {
                v[i] = byCat.get(cats.get(i)).getOrDefault(d, Double.NaN);
            }
            series.add(new Svg.Series(d, v));
        }
        return new Chart(title, name, Svg.bars(title, yLabel, cats, series));
    }

    private Chart lines(String title, String name, String xLabel, List<BenchRow> rs, java.util.function.ToIntFunction<BenchRow> x, Set<Integer> xsSet) {
        double[] xs = xsSet.stream().mapToDouble(i -> i).toArray();
        Map<String, double[]> series = new LinkedHashMap<>();
        for (BenchRow r : rs) {
            String test = r.nPrompt() > 0 ? "pp" + r.nPrompt() : "tg" + r.nGen();
            String key = deviceLabel(r) + " " + r.weightType() + " " + test;
            double[] v = series.computeIfAbsent(key, k -> {
                double[] a = new double[xs.length];
                java.util.Arrays.fill(a, Double.NaN);
                return a;
            });
            int i = java.util.Arrays.binarySearch(xs, x.applyAsInt(r));
            v[i] = r.avgTs();
        }
        List<Svg.Series> s = new ArrayList<>();
        series.forEach((k, v) -> s.add(new Svg.Series(k, v)));
        return new Chart(title, name, Svg.lines(title, xLabel, "tok/s", xs, s));
    }

    private static String f(Double v, String fmt) {
        return v == null ? "" : String.format(Locale.ROOT, fmt, v);
    }

    /** Results as table rows (header first). */
    private List<List<String>> resultTable() {
        List<List<String>> t = new ArrayList<>();
        t.add(List.of("model", "device", "backend", "device name", "test", "tok/s", "median", "roofline tok/s", "of roofline", "bandwidth GB/s", "status"));
        for (BenchRow r : rows) {
            t.add(List.of(r.modelType() + (r.synthetic() ? " (synthetic)" : ""), r.device(), r.backends(), r.gpuInfo(), r.test(),
                    r.ok() ? String.format(Locale.ROOT, "%.2f ± %.2f", r.avgTs(), r.stddevTs()) : "",
                    r.ok() ? String.format(Locale.ROOT, "%.2f", r.medianTs()) : "", f(r.rooflineTs(), "%.2f"),
                    r.rooflineFraction() == null ? "" : String.format(Locale.ROOT, "%.0f %%", 100 * r.rooflineFraction()), f(r.bandwidthGbs(), "%.1f"),
                    r.ok() ? "ok" : r.status() + ": " + r.note()));
        }
        return t;
    }

    private List<List<String>> kernelTable() {
        List<List<String>> t = new ArrayList<>();
        t.add(List.of("device", "backend", "kernel", "variant", "shape", "µs/launch", "GB/s", "GFLOP/s", "of bandwidth", "max abs error", "check"));
        for (KernelRow k : kernels) {
            t.add(List.of(k.device(), k.backends(), k.kernel(), k.variant(), k.shape(), String.format(Locale.ROOT, "%.1f ± %.1f", k.avgUs(), k.stddevUs()),
                    String.format(Locale.ROOT, "%.1f", k.gbs()), String.format(Locale.ROOT, "%.1f", k.gflops()),
                    k.bandwidthFraction() == null ? "" : String.format(Locale.ROOT, "%.0f %%", 100 * k.bandwidthFraction()),
                    String.format(Locale.ROOT, "%.2g", k.maxError()), k.check()));
        }
        return t;
    }

    private List<List<String>> checkTable() {
        List<List<String>> t = new ArrayList<>();
        t.add(List.of("device", "backend", "device name", "fixture", "greedy ids identical", "max |logit diff|", "tolerance", "check"));
        for (BackendCheck.CheckRow c : checks) {
            t.add(List.of(c.device(), c.backends(), c.gpuInfo(), c.fixture(), c.identicalIds() + "/" + c.steps(), String.format(Locale.ROOT, "%.2g", c.maxLogitDiff()),
                    String.format(Locale.ROOT, "%.2g", c.tolerance()), c.note().isEmpty() ? c.check() : c.check() + ": " + c.note()));
        }
        return t;
    }

    private List<List<String>> environmentTable() {
        List<List<String>> t = new ArrayList<>();
        t.add(List.of("device", "backend", "device name", "driver / platform", "version", "TornadoVM", "JDK", "threads", "bandwidth GB/s", "probe", "commit", "date"));
        Set<String> seen = new LinkedHashSet<>();
        for (BenchRow r : rows) {
            if (seen.add(r.device() + "|" + r.gpuInfo() + "|" + r.testTime().substring(0, Math.min(10, r.testTime().length())))) {
                t.add(List.of(r.device(), r.backends(), r.gpuInfo(), r.deviceDriver(), r.deviceVersion(), r.tornadoVersion(), r.jdk(),
                        Integer.toString(r.nThreads()), f(r.bandwidthGbs(), "%.1f"), r.bandwidthProbe() == null ? "" : r.bandwidthProbe(), r.buildCommit(), r.testTime()));
            }
        }
        return t;
    }

    private static String mdTable(List<List<String>> t) {
        StringBuilder s = new StringBuilder();
        for (int i = 0; i < t.size(); i++) {
            s.append("| ").append(String.join(" | ", t.get(i).stream().map(c -> c.replace("|", "/")).toList())).append(" |\n");
            if (i == 0) {
                s.append("|").append("---|".repeat(t.get(0).size())).append("\n");
            }
        }
        return s.toString();
    }

    private static String htmlTable(List<List<String>> t) {
        StringBuilder s = new StringBuilder("<table>\n<tr>");
        for (String h : t.get(0)) {
            s.append("<th>").append(Svg.esc(h)).append("</th>");
        }
        s.append("</tr>\n");
        for (List<String> row : t.subList(1, t.size())) {
            s.append("<tr>");
            for (String c : row) {
                s.append("<td>").append(Svg.esc(c)).append("</td>");
            }
            s.append("</tr>\n");
        }
        return s.append("</table>\n").toString();
    }

    private String intro() {
        boolean synthetic = rows.stream().anyMatch(BenchRow::synthetic);
        return "Generated " + Instant.now().truncatedTo(ChronoUnit.SECONDS) + " from " + String.join(", ", sources) + ": " + rows.size() + " bench rows, "
                + kernels.size() + " kernel rows, " + checks.size() + " correctness checks." + (synthetic ? " Models marked synthetic have the real shapes and bytes but random weights." : "")
                + " Roofline: the device's measured streaming-read bandwidth divided by the bytes one decoded token reads (weights once per step, plus each sequence's KV cache).";
    }

    /** The self-contained HTML page. */
    public String html() {
        StringBuilder s = new StringBuilder("""
                <!DOCTYPE html>
                <html lang="en"><head><meta charset="utf-8"><title>InternLM on TornadoVM: benchmark report</title>
                <style>
                body { font-family: sans-serif; margin: 24px; color: #222; max-width: 1700px; }
                table { border-collapse: collapse; margin: 12px 0 24px; font-size: 13px; }
                th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; }
                th { background: #f0f0f0; }
                .charts { display: flex; flex-wrap: wrap; gap: 16px; }
                .charts figure { margin: 0; border: 1px solid #ddd; }
                </style></head><body>
                <h1>InternLM on TornadoVM: benchmark report</h1>
                """);
        s.append("<p>").append(Svg.esc(intro())).append("</p>\n<div class=\"charts\">\n");
        for (Chart c : charts()) {
            s.append("<figure id=\"").append(c.name()).append("\">").append(c.svg()).append("</figure>\n");
        }
        s.append("</div>\n");
        if (!rows.isEmpty()) {
            s.append("<h2>Results</h2>\n").append(htmlTable(resultTable()));
            s.append("<h2>Devices and software</h2>\n").append(htmlTable(environmentTable()));
        }
        if (!kernels.isEmpty()) {
            s.append("<h2>Kernels</h2>\n").append(htmlTable(kernelTable()));
        }
        if (!checks.isEmpty()) {
            s.append("<h2>TornadoVM against the CPU backend (fixtures)</h2>\n").append(htmlTable(checkTable()));
        }
        return s.append("</body></html>\n").toString();
    }

    /** Writes {@code out} as HTML (.html) or Markdown (.md, with one SVG file per chart next to it). */
    public void write(Path out) throws IOException {
        String name = out.getFileName().toString();
        if (name.endsWith(".html") || name.endsWith(".htm")) {
            Files.writeString(out, html(), StandardCharsets.UTF_8);
            return;
        }
        if (!name.endsWith(".md")) {
            throw new IllegalArgumentException("-o must name a .html or .md file, got " + out);
        }
        String stem = name.substring(0, name.length() - 3);
        Path dir = out.toAbsolutePath().getParent();
        StringBuilder s = new StringBuilder("# InternLM on TornadoVM: benchmark report\n\n").append(intro()).append("\n\n");
        for (Chart c : charts()) {
            String file = stem + "-" + c.name() + ".svg";
            Files.writeString(dir.resolve(file), c.svg(), StandardCharsets.UTF_8);
            s.append("![").append(c.title()).append("](").append(file).append(")\n\n");
        }
        if (!rows.isEmpty()) {
            s.append("## Results\n\n").append(mdTable(resultTable())).append("\n## Devices and software\n\n").append(mdTable(environmentTable()));
        }
        if (!kernels.isEmpty()) {
            s.append("\n## Kernels\n\n").append(mdTable(kernelTable()));
        }
        if (!checks.isEmpty()) {
            s.append("\n## TornadoVM against the CPU backend (fixtures)\n\n").append(mdTable(checkTable()));
        }
        Files.writeString(out, s.toString(), StandardCharsets.UTF_8);
    }
}
