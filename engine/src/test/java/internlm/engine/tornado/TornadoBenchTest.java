package internlm.engine.tornado;

import internlm.engine.bench.BenchPlan;
import internlm.engine.bench.BenchRow;
import internlm.engine.bench.BenchRunner;
import internlm.engine.bench.KernelRow;
import internlm.loader.LoadedModel;
import internlm.loader.Progress;
import internlm.loader.gguf.GgmlType;
import internlm.loader.gguf.GgufModelLoader;
import internlm.loader.synthetic.SyntheticGguf;
import internlm.loader.synthetic.SyntheticModels;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** The benchmark's TornadoVM side on a real device (runs when the JVM runs under TornadoVM, e.g. PoCL). */
class TornadoBenchTest {
    static final String DEVICE = System.getProperty("internlm.test.device", "0:0");

    @BeforeAll
    static void tornado() {
        assumeTrue(TornadoSupport.available(), "TornadoVM is not available in this JVM");
        TornadoSupport.prepareRuntime(1L << 30);
    }

    @Test
    void deviceDescriptionAndBandwidth() {
        TornadoProbe.Device d = TornadoProbe.device(DEVICE);
        assertFalse(d.name().isBlank());
        assertTrue(List.of("OpenCL", "PTX", "SPIR-V").contains(d.backend()), d.backend());
        assertTrue(d.memory() > 0);
        assertFalse(TornadoProbe.version().equals("unknown"));
        TornadoProbe.Bandwidth b = TornadoProbe.bandwidth(DEVICE, 16L << 20, 2);
        assertTrue(b.gbPerSecond() > 0.01 && b.gbPerSecond() < 100_000, b.toString());
    }

    @Test
    void kernelTableChecksEveryKernelAgainstItsReference() throws Exception {
        List<KernelRow> rows = new ArrayList<>();
        SyntheticModels.Shape s = SyntheticModels.parse("internlm2.5-1.8b", 0).shape();
        KernelBench.run(new KernelBench.Plan(List.of(DEVICE), s, List.of(GgmlType.Q8_0), List.of("rmsnorm", "attention", "argmax", "qkv"),
                List.of("wg64", "cache", "groups"), new int[] {300}, 2, false, 16L << 20, "test"), new PrintStream(new ByteArrayOutputStream()), rows::add);
        // qkv with the norm from a pass and fused, the norm pass plain and rounding, attention in one pass and split
        assertEquals(List.of("qkv Q8_0 wg64", "qkv Q8_0 wg64 norm", "qkv Q8_0 wg64 l16", "qkv Q8_0 wg64 l16 norm", "rmsnorm wg64", "rmsnorm wg64 round", "attention f32 cache wg128",
                "attention f32 cache wg128 split8", "attention f32 cache wg128 split32", "argmax 64 groups wg256"),
                rows.stream().map(r -> r.kernel() + " " + r.variant()).toList());
        for (KernelRow r : rows) {
            assertEquals("ok", r.check(), r.toString());
            assertTrue(r.medianUs() > 0 && r.gbs() > 0, r.toString());
        }
    }

    @Test
    void benchMatrixOnTheDevice(@TempDir Path tmp) throws Exception {
        Path f = tmp.resolve("m.gguf");
        new SyntheticGguf(SyntheticGguf.Spec.internlm2(64, 2, 4, 2, 128, GgmlType.Q8_0, 3)).write(f);
        List<BenchRow> rows = new ArrayList<>();
        try (LoadedModel m = GgufModelLoader.load(f, Progress.NONE)) {
            BenchPlan plan = new BenchPlan(new int[] {4}, new int[] {3}, new int[] {0, 5}, new int[] {1, 2}, 2, List.of(DEVICE), 1, false, 16L << 20);
            new BenchRunner(plan, new PrintStream(new ByteArrayOutputStream()), Progress.NONE, "test").run(m, new BenchRunner.Source("m.gguf", false, 0), rows::add);
        }
        assertEquals(8, rows.size());
        for (BenchRow r : rows) {
            // the batched TornadoVM backend holds a KV cache slot for each concurrent sequence
            assertEquals("ok", r.status(), r.toString());
            if (r.ok() && r.nGen() > 0) {
                assertTrue(r.rooflineTs() > 0 && r.rooflineFraction() > 0, r.toString());
            }
        }
    }

    /** InternLM2.5-20B in F16 (~40 GB) on a device with less memory: too_large rows, nothing allocated (a sparse file: no weight read). */
    @Test
    void modelTooLargeForTheDeviceIsReportedFirst(@TempDir Path tmp) throws Exception {
        TornadoProbe.Device d = TornadoProbe.device(DEVICE);
        assumeTrue(d.memory() < 38L << 30, "the device would hold a 20B F16 model");
        Path f = internlm.engine.bench.BenchRunnerTest.sparse(tmp, "internlm2.5-20b:f16");
        List<BenchRow> rows = new ArrayList<>();
        try (LoadedModel m = GgufModelLoader.load(f, Progress.NONE)) {
            BenchPlan plan = new BenchPlan(new int[] {4}, new int[] {2}, new int[] {0}, new int[] {1}, 1, List.of(DEVICE), 1, false, 16L << 20);
            new BenchRunner(plan, new PrintStream(new ByteArrayOutputStream()), Progress.NONE, "test").run(m, new BenchRunner.Source("20b", true, 0), rows::add);
        }
        assertEquals(2, rows.size());
        for (BenchRow r : rows) {
            assertEquals("too_large", r.status(), r.toString());
            assertTrue(r.note().contains("needs") && r.note().contains("GiB on the device"), r.note());
        }
    }
}
