package internlm.cli;

import internlm.engine.bench.Report;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "report", mixinStandardHelpOptions = true,
        description = "Turn bench / bench kernels results (jsonl or json) into a self-contained HTML page (-o report.html) or Markdown with SVG charts (-o report.md).")
final class BenchReportCommand implements Callable<Integer> {
    @Parameters(paramLabel = "RESULTS", arity = "1..*", description = "Result files written with -o jsonl (or json).")
    List<Path> files;

    @Option(names = "-o", paramLabel = "FILE", required = true, description = "report.html or report.md (charts go next to it as SVG files).")
    Path out;

    @Override
    public Integer call() throws Exception {
        Report r = new Report();
        for (Path f : files) {
            if (!Files.isRegularFile(f)) {
                throw new IllegalArgumentException("no such results file: " + f);
            }
            r.add(f);
        }
        r.write(out);
        System.err.println("wrote " + out + " (" + r.rows().size() + " bench rows, " + r.kernels().size() + " kernel rows, " + r.charts().size() + " charts)");
        return 0;
    }
}
