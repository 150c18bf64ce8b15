package internlm.cli;

import internlm.engine.bench.BackendCheck;
import internlm.engine.bench.BuildInfo;
import internlm.engine.tornado.TornadoSupport;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.stream.Stream;

@Command(name = "check", mixinStandardHelpOptions = true,
        description = "TornadoVM correctness against the CPU backend: every fixture model (GGUF + .expected.json) on each device, logits compared step by step (jsonl rows; exit status 1 on any failure).")
final class BenchCheckCommand implements Callable<Integer> {
    @Parameters(paramLabel = "FIXTURES", arity = "1..*", description = "Fixture GGUF files, or directories of them.")
    List<Path> paths;

    @Option(names = "--devices", paramLabel = "LIST", defaultValue = "all", description = "'all' or TornadoVM ids such as 0:0,1:0 (default: ${DEFAULT-VALUE}).")
    String devices;

    @Option(names = "--steps", defaultValue = "8", description = "Decode steps compared after the prompt (default: ${DEFAULT-VALUE}).")
    int steps;

    @Option(names = "--out", paramLabel = "FILE", description = "Write the jsonl rows to FILE instead of stdout.")
    Path out;

    @Override
    public Integer call() throws Exception {
        String why = TornadoSupport.unavailableReason();
        if (why != null) {
            throw new IllegalStateException("bench check compares TornadoVM with the CPU: " + why);
        }
        TornadoSupport.prepareRuntime(1L << 30);
        List<String> devs = devices.equals("all") ? TornadoSupport.devices().stream().map(TornadoSupport.DeviceInfo::id).toList()
                : Arrays.stream(devices.split(",")).map(String::trim).filter(s -> !s.isEmpty()).toList();
        List<Path> fixtures = new ArrayList<>();
        for (Path p : paths) {
            if (Files.isDirectory(p)) {
                try (Stream<Path> s = Files.list(p)) {
                    s.filter(f -> f.toString().endsWith(".gguf") && Files.isRegularFile(expected(f))).sorted().forEach(fixtures::add);
                }
            } else if (Files.isRegularFile(p) && Files.isRegularFile(expected(p))) {
                fixtures.add(p);
            } else {
                throw new IllegalArgumentException(p + " is not a fixture (a GGUF file with NAME.expected.json beside it) or a directory of them");
            }
        }
        if (fixtures.isEmpty()) {
            throw new IllegalArgumentException("no fixtures found in " + paths);
        }
        int failures;
        try (Writer w = out != null ? Files.newBufferedWriter(out, StandardCharsets.UTF_8) : new OutputStreamWriter(System.out, StandardCharsets.UTF_8)) {
            var json = new com.fasterxml.jackson.databind.ObjectMapper().setPropertyNamingStrategy(com.fasterxml.jackson.databind.PropertyNamingStrategies.SNAKE_CASE);
            failures = BackendCheck.run(fixtures, devs, steps, BuildInfo.commit(), System.err, r -> {
                w.write(json.writeValueAsString(r) + "\n");
                w.flush();
            });
        }
        System.err.println(failures == 0 ? "all " + fixtures.size() * devs.size() + " checks passed" : failures + " of " + fixtures.size() * devs.size() + " checks failed");
        return failures == 0 ? 0 : 1;
    }

    private static Path expected(Path gguf) {
        String n = gguf.getFileName().toString();
        return gguf.resolveSibling(n.substring(0, n.length() - ".gguf".length()) + ".expected.json");
    }
}
