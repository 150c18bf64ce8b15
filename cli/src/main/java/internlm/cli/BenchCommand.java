package internlm.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import internlm.engine.Engine;
import internlm.engine.bench.BenchFormat;
import internlm.engine.bench.BenchPlan;
import internlm.engine.bench.BenchRow;
import internlm.engine.bench.BenchRunner;
import internlm.engine.bench.BuildInfo;
import internlm.engine.bench.Stats;
import internlm.loader.LoadedModel;
import internlm.loader.synthetic.SyntheticModels;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

@Command(name = "bench", mixinStandardHelpOptions = true, subcommands = {BenchKernelsCommand.class, BenchCheckCommand.class, BenchReportCommand.class},
        description = {"A llama-bench-like matrix: prompt (pp) and decode (tg) tok/s for every combination of -p/-n sizes, KV depths (-d) and "
                + "concurrent sequences (-b), on every device of --devices, with the memory roofline of each device.",
                "Subcommands: 'bench kernels' (each TornadoVM kernel at the model's shapes), 'bench report' (HTML/Markdown report of jsonl results)."})
final class BenchCommand implements Callable<Integer> {
    @Mixin
    ModelOptions model;

    @Option(names = {"-p", "--n-prompt"}, paramLabel = "N,..", defaultValue = "128", description = "Prompt sizes (default: ${DEFAULT-VALUE}; '' for none).")
    String prompts;

    @Option(names = {"-n", "--n-gen"}, paramLabel = "N,..", defaultValue = "64", description = "Decode sizes (default: ${DEFAULT-VALUE}; '' for none).")
    String gens;

    @Option(names = {"-d", "--n-depth"}, paramLabel = "N,..", defaultValue = "0", description = "KV cache depths filled before each test (default: ${DEFAULT-VALUE}).")
    String depths;

    @Option(names = {"-b", "--sequences"}, paramLabel = "N,..", defaultValue = "1",
            description = "Concurrent sequences, decoded together in one forward pass per step; aggregate tok/s (default: ${DEFAULT-VALUE}).")
    String sequences;

    @Option(names = {"-r", "--repetitions"}, defaultValue = "3", description = "Timed repetitions after one warm-up (default: ${DEFAULT-VALUE}).")
    int reps;

    @Option(names = "--devices", paramLabel = "LIST", defaultValue = "all",
            description = "'all' (the CPU backend and every TornadoVM device) or a list such as cpu,0:0,1:0 (default: ${DEFAULT-VALUE}).")
    String devices;

    @Option(names = "--synthetic", paramLabel = "NAME[:TYPE]",
            description = "Benchmark a generated model with the exact shapes and bytes of a released one and random weights, no file needed: "
                    + "internlm2.5-1.8b, internlm2.5-7b, internlm2.5-20b, internlm3-8b, internlm-7b, internlm-20b; TYPE f16, bf16, q8_0 (default), q4_0.")
    String synthetic;

    @Option(names = "--synthetic-layers", paramLabel = "N", defaultValue = "0", description = "Keep only the first N layers of the synthetic model (named so in the results).")
    int syntheticLayers;

    @Option(names = "--synthetic-file", paramLabel = "FILE",
            description = "Write the synthetic model to FILE (memory-mapped, like a downloaded GGUF) and reuse it when it is already there; default: in memory.")
    Path syntheticFile;

    @Option(names = "-o", paramLabel = "FORMAT", defaultValue = "md", description = "md, csv, json or jsonl (default: ${DEFAULT-VALUE}).")
    String format;

    @Option(names = "--out", paramLabel = "FILE", description = "Write the results to FILE instead of stdout.")
    Path out;

    @Option(names = "--probe-mib", paramLabel = "MIB", defaultValue = "0", description = "Size of the bandwidth probe (default: 1024, less on small devices).")
    long probeMib;

    @Option(names = "--llamacpp-json", paramLabel = "FILE",
            description = "llama.cpp's numbers for the same model and threads (the JSON of the harness's reference.mjs --sections bench): prints our/llama.cpp ratios on stderr.")
    Path llamacpp;

    @Override
    public Integer call() throws Exception {
        BenchFormat fmt = BenchFormat.parse(format);
        List<String> devs = Arrays.stream(devices.split(",")).map(String::trim).filter(s -> !s.isEmpty()).toList();
        BenchPlan plan = new BenchPlan(BenchPlan.list(prompts, "-p"), BenchPlan.list(gens, "-n"), BenchPlan.list(depths, "-d"),
                BenchPlan.list(sequences, "-b"), reps, devs, model.threads, model.kvCache.equals("f16"), probeMib << 20);
        double[] ref = llamacpp != null ? llamaCpp(llamacpp) : null;
        ProgressBar progress = new ProgressBar(System.err, model.quiet);
        long t0 = System.nanoTime();
        LoadedModel m;
        String filename;
        if (synthetic != null) {
            if (model.model != null) {
                throw new IllegalArgumentException("give --model or --synthetic, not both");
            }
            SyntheticModels.Choice choice = SyntheticModels.parse(synthetic, syntheticLayers);
            filename = "synthetic " + choice.label();
            m = SyntheticModels.load(choice, syntheticFile, 42, progress);
        } else {
            Path p = model.model != null ? model.model : ModelOptions.embedded();
            filename = model.model != null ? model.model.getFileName().toString() : ModelOptions.EMBEDDED;
            m = Engine.loadModel(p, model.quantizeType(), progress);
        }
        long loadMs = (System.nanoTime() - t0) / 1_000_000;
        System.err.println("model: " + filename + " (" + m.config().family().label + ", " + m.config().shape() + ")" + (synthetic != null ? ", synthetic: random weights" : "")
                + ", ready in " + loadMs + " ms");
        try (m; Writer w = out != null ? Files.newBufferedWriter(out, StandardCharsets.UTF_8) : new OutputStreamWriter(System.out, StandardCharsets.UTF_8);
             BenchFormat.Sink sink = fmt.open(w)) {
            List<BenchRow> rows = new BenchRunner(plan, System.err, progress, BuildInfo.commit())
                    .run(m, new BenchRunner.Source(filename, synthetic != null, loadMs), sink::add);
            if (ref != null) {
                for (BenchRow r : rows) {
                    if (r.ok() && r.nDepth() == 0 && r.nSeq() == 1) {
                        double ours = Stats.of(r.samplesTs()).median(), theirs = r.nPrompt() > 0 ? ref[0] : ref[1];
                        System.err.printf(Locale.ROOT, "%s %s: %.2f tok/s, llama.cpp %.2f tok/s (medians): %.2fx%n", r.device(), r.test(), ours, theirs, ours / theirs);
                    }
                }
            }
        }
        return 0;
    }

    /**
     * Median prompt and decode tok/s of llama.cpp's own counters in a harness bench JSON (the median, not the mean:
     * one rep slowed by a cold page cache or a noisy neighbour must not move the ratio).
     */
    static double[] llamaCpp(Path file) throws Exception {
        JsonNode reps = new ObjectMapper().readTree(file.toFile()).path("bench").path("reps");
        if (!reps.isArray() || reps.isEmpty()) {
            throw new IllegalArgumentException(file + ": no bench.reps (expected the JSON of reference.mjs --sections bench)");
        }
        double[] pp = new double[reps.size()], tg = new double[reps.size()];
        for (int i = 0; i < reps.size(); i++) {
            JsonNode r = reps.get(i);
            pp[i] = r.path("llama_perf").path("prompt_eval").path("tok_s").asDouble(r.path("prompt_tok_s").asDouble());
            tg[i] = r.path("llama_perf").path("eval").path("tok_s").asDouble(r.path("decode_tok_s").asDouble());
        }
        return new double[] {Stats.of(pp).median(), Stats.of(tg).median()};
    }
}
