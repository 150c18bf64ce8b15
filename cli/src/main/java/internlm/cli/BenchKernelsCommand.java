package internlm.cli;

import internlm.engine.bench.BenchFormat;
import internlm.engine.bench.BuildInfo;
import internlm.engine.tornado.KernelBench;
import internlm.engine.tornado.TornadoSupport;
import internlm.loader.gguf.GgmlType;
import internlm.loader.synthetic.SyntheticModels;
import picocli.CommandLine.Command;
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

@Command(name = "kernels", mixinStandardHelpOptions = true,
        description = "Each TornadoVM kernel at the projection shapes of a model, on each device: µs per launch, GB/s, GFLOP/s, fraction of the "
                + "measured bandwidth, and the result checked against the CPU backend's on every run (jsonl on stdout or --out).")
final class BenchKernelsCommand implements Callable<Integer> {
    @Option(names = "--devices", paramLabel = "LIST", defaultValue = "all", description = "'all' or TornadoVM ids such as 0:0,1:0 (default: ${DEFAULT-VALUE}).")
    String devices;

    @Option(names = "--shape", paramLabel = "NAME", defaultValue = "internlm2.5-1.8b", description = "Model whose shapes to use (the --synthetic names; default: ${DEFAULT-VALUE}).")
    String shape;

    @Option(names = "--types", paramLabel = "LIST", defaultValue = "f16,q8_0,q4_0", description = "Weight types: f32, f16, q8_0, q4_0 (default: ${DEFAULT-VALUE}).")
    String types;

    @Option(names = "--kernels", paramLabel = "LIST", defaultValue = "", description = "Only these kernels: matvec, qkv, swiglu, rmsnorm, attention, argmax, sample (default: all).")
    String kernels;

    @Option(names = "--variants", paramLabel = "LIST", defaultValue = "", description = "Only variants whose name contains one of these, e.g. wg128,native (default: all).")
    String variants;

    @Option(names = "--depths", paramLabel = "N,..", defaultValue = "512,4096", description = "Attention lengths (default: ${DEFAULT-VALUE}).")
    String depths;

    @Option(names = "--lm-head", description = "Also the vocabulary-wide LM-head projection (large).")
    boolean lmHead;

    @Option(names = {"-r", "--repetitions"}, defaultValue = "10", description = "Timed launches per case after one warm-up (default: ${DEFAULT-VALUE}).")
    int reps;

    @Option(names = "--probe-mib", paramLabel = "MIB", defaultValue = "256", description = "Size of the bandwidth probe (default: ${DEFAULT-VALUE}).")
    long probeMib;

    @Option(names = "--out", paramLabel = "FILE", description = "Write the jsonl rows to FILE instead of stdout.")
    Path out;

    @Override
    public Integer call() throws Exception {
        String why = TornadoSupport.unavailableReason();
        if (why != null) {
            throw new IllegalStateException("bench kernels runs TornadoVM kernels: " + why);
        }
        if (reps < 1) {
            throw new IllegalArgumentException("-r must be at least 1");
        }

        List<GgmlType> ts = split(types).stream().map(t -> {
            GgmlType g = ModelOptions.weightType(t, "--types", false);
            return g;
        }).toList();
        int[] ds = split(depths).stream().mapToInt(Integer::parseInt).toArray();
        for (int d : ds) {
            if (d < 1) {
                throw new IllegalArgumentException("--depths must be at least 1");
            }
        }
        SyntheticModels.Shape s = SyntheticModels.parse(shape, 0).shape();
        // TornadoVM reads its settings once, at first use (listing devices included): device memory for the largest
        // case and the probe, and no silent fall-back to the JVM when a kernel does not compile
        TornadoSupport.prepareRuntime(Math.max(probeMib << 20, 4L * s.vocab() * s.dim() * (lmHead ? 1 : 0) + (1L << 30)));
        List<String> devs = devices.equals("all") ? TornadoSupport.devices().stream().map(TornadoSupport.DeviceInfo::id).toList() : split(devices);
        KernelBench.Plan plan = new KernelBench.Plan(devs, s, ts, split(kernels), split(variants), ds, reps, lmHead, probeMib << 20, BuildInfo.commit());
        try (Writer w = out != null ? Files.newBufferedWriter(out, StandardCharsets.UTF_8) : new OutputStreamWriter(System.out, StandardCharsets.UTF_8);
             BenchFormat.KernelSink sink = new BenchFormat.KernelSink(w)) {
            KernelBench.run(plan, System.err, sink::add);
        }
        return 0;
    }

    private static List<String> split(String s) {
        return Arrays.stream(s.split(",")).map(String::trim).filter(x -> !x.isEmpty()).map(x -> x.toLowerCase(Locale.ROOT)).toList();
    }
}
