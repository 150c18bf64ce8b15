package internlm.engine.bench;

import internlm.loader.LoadedModel;
import internlm.loader.Progress;
import internlm.loader.gguf.GgufModelLoader;
import internlm.loader.gguf.GgufWriter;
import internlm.loader.synthetic.SyntheticModels;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

public class BenchRunnerTest {

    /** A model's GGUF as a sparse file of its full size: the header is real, no weight is ever generated or read. */
    public static Path sparse(Path dir, String name) throws Exception {
        GgufWriter w = SyntheticModels.writer(SyntheticModels.parse(name, 0));
        Path f = dir.resolve(name.replace(':', '-') + ".gguf");
        byte[] h = w.header();
        Files.write(f, h);
        try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "rw")) {
            raf.setLength(h.length + w.dataSize());
        }
        return f;
    }

    /** InternLM2.5-20B in Q8_0 needs ~21 GiB of repacked weights: the CPU backend reports it before allocating anything. */
    @Test
    void modelTooLargeForTheHeapIsReportedNotLoaded(@TempDir Path tmp) throws Exception {
        assumeTrue(Runtime.getRuntime().maxMemory() < 18L << 30, "this JVM's heap would hold the 20B model");
        Path f = sparse(tmp, "internlm2.5-20b:q8_0");
        List<BenchRow> rows = new ArrayList<>();
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        try (LoadedModel m = GgufModelLoader.load(f, Progress.NONE)) {
            BenchPlan plan = new BenchPlan(new int[] {16}, new int[] {8}, new int[] {0}, new int[] {1}, 1, List.of("cpu"), 1, false, 16L << 20);
            new BenchRunner(plan, new PrintStream(log), Progress.NONE, "test").run(m, new BenchRunner.Source(f.getFileName().toString(), true, 0), rows::add);
        }
        assertEquals(2, rows.size());
        for (BenchRow r : rows) {
            assertEquals("too_large", r.status());
            assertTrue(r.note().contains("GiB of heap"), r.note());
            assertEquals(0, r.samplesNs().length);
        }
        assertTrue(log.toString().contains("[cpu] the CPU backend needs"), log.toString());
        assertTrue(!log.toString().contains("measuring memory bandwidth"), "nothing runs on a device the model does not fit");
    }
}
