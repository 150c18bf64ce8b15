package internlm.loader.synthetic;

import internlm.loader.LoadedModel;
import internlm.loader.ModelConfig;
import internlm.loader.Progress;
import internlm.loader.TensorData;
import internlm.loader.gguf.GgmlType;
import internlm.loader.gguf.GgufFile;
import internlm.loader.gguf.GgufModelLoader;
import internlm.loader.gguf.GgufWriter;
import internlm.loader.quant.Quants;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.RandomAccessFile;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SyntheticModelsTest {

    /** Parameter counts the spec derives from the released configs (§2.3, "Derived sizes"), in billions. */
    @Test
    void parameterCountsMatchTheSpec() {
        Map<String, Double> spec = Map.of("internlm-7b", 7.32, "internlm-20b", 20.09, "internlm2.5-1.8b", 1.89,
                "internlm2.5-7b", 7.74, "internlm2.5-20b", 19.86, "internlm3-8b", 8.80);
        assertEquals(spec.keySet(), SyntheticModels.CATALOG.stream().map(SyntheticModels.Shape::name).collect(java.util.stream.Collectors.toSet()));
        for (var e : spec.entrySet()) {
            long params = SyntheticModels.tensors(SyntheticModels.parse(e.getKey() + ":f16", 0)).stream().mapToLong(SyntheticModels.TensorSpec::elements).sum();
            assertEquals(e.getValue(), Math.round(params / 1e7) / 100.0, 1e-9, e.getKey() + ": " + params);
        }
    }

    /**
     * InternLM2.5-7B in Q8_0 without generating a weight: the header is written to a sparse file of the full size and
     * loaded through the normal GGUF loader, which checks every tensor's shape against the metadata. Expected values
     * are the spec's (§2.2: hidden 4096, 32 layers, 32 heads, 8 KV heads of 128, intermediate 14336, vocab 92544;
     * §7.1: tensor names and dims; Q8_0 = 34 bytes per 32 weights, norms F32).
     */
    @Test
    void internlm25_7bQ8_0HasTheRealTensorListAndBytes(@TempDir Path tmp) throws Exception {
        SyntheticModels.Choice c = SyntheticModels.parse("internlm2.5-7b:q8_0", 0);
        GgufWriter w = SyntheticModels.writer(c);
        byte[] header = w.header();
        Path f = tmp.resolve("7b.gguf");
        Files.write(f, header);
        try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "rw")) {
            raf.setLength(header.length + w.dataSize());
        }
        long h = 4096, kv = 8 * 128, ff = 14336, v = 92544;
        long matrix = 2 * h * v + 32 * (2 * h * h + 2 * h * kv + 3 * h * ff);
        long norms = (2 * 32 + 1) * h;
        long expectBytes = matrix / 32 * 34 + norms * 4;
        try (LoadedModel m = GgufModelLoader.load(f, Progress.NONE)) {
            ModelConfig cfg = m.config();
            assertEquals(ModelConfig.Family.INTERNLM2, cfg.family());
            assertEquals(4096, cfg.dim());
            assertEquals(32, cfg.layers());
            assertEquals(32, cfg.heads());
            assertEquals(8, cfg.kvHeads());
            assertEquals(128, cfg.headDim());
            assertEquals(14336, cfg.ffn());
            assertEquals(92544, cfg.vocabSize());
            assertEquals(32768, cfg.contextLength());
            assertEquals(1e6, cfg.ropeTheta(), 1e-3);
            assertEquals(ModelConfig.RopeScaling.Type.DYNAMIC, cfg.ropeScaling().type());
            assertEquals(2 + 32 * 9 + 1, m.tensors().size());
            long bytes = 0;
            for (TensorData t : m.tensors().values()) {
                bytes += t.data().byteSize();
                assertEquals(t.dims().length == 1 ? GgmlType.F32 : GgmlType.Q8_0, t.type(), t.name());
            }
            assertEquals(expectBytes, bytes);
            assertEquals(expectBytes, SyntheticModels.tensors(c).stream().mapToLong(SyntheticModels.TensorSpec::bytes).sum());
            assertEquals(h * kv, m.tensor("blk.31.attn_k.weight").elements());
            assertEquals(ff, m.tensor("blk.0.ffn_down.weight").rowLength());
            assertEquals(h, m.tensor("output.weight").rowLength());
            assertEquals(v, m.tensor("output.weight").rows());
            assertEquals(92542, m.vocab().find("<|im_end|>"));
            assertEquals(92543, m.vocab().find("<|im_start|>"));
            assertEquals(3 + 0x41, m.vocab().find("<0x41>"));
            assertEquals(header.length + w.dataSize(), SyntheticModels.fileSize(c));
        }
        try (GgufFile g = GgufFile.open(f)) {
            assertEquals("internlm2.5-7b:q8_0", SyntheticModels.labelOf(g));
        }
    }

    @Test
    void otherFamiliesLoadWithTheirLayouts(@TempDir Path tmp) throws Exception {
        for (String name : new String[] {"internlm3-8b:bf16", "internlm-7b:q4_0", "internlm-20b:f16"}) {
            SyntheticModels.Choice c = SyntheticModels.parse(name, 0);
            GgufWriter w = SyntheticModels.writer(c);
            Path f = tmp.resolve(name.replace(':', '-') + ".gguf");
            Files.write(f, w.header());
            try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "rw")) {
                raf.setLength(w.header().length + w.dataSize());
            }
            try (LoadedModel m = GgufModelLoader.load(f, Progress.NONE)) {
                ModelConfig cfg = m.config();
                switch (c.shape().name()) {
                    case "internlm3-8b" -> {
                        assertEquals(ModelConfig.Family.INTERNLM3, cfg.family());
                        assertEquals(128512, cfg.vocabSize());
                        assertEquals(2, cfg.kvHeads());
                        assertEquals(48, cfg.layers());
                        assertEquals(5e7, cfg.ropeTheta(), 1);
                        assertEquals(128131, m.vocab().find("<|im_end|>"));
                        assertEquals(GgmlType.BF16, m.tensor("blk.0.attn_q.weight").type());
                    }
                    case "internlm-7b" -> {
                        assertEquals(ModelConfig.Family.INTERNLM1, cfg.family());
                        assertTrue(cfg.qkvBias() && cfg.outBias());
                        assertEquals(32, cfg.kvHeads());
                        assertEquals(11008, cfg.ffn());
                        assertEquals(103168, cfg.vocabSize());
                        assertNotNull(m.optionalTensor("blk.0.attn_output.bias"));
                    }
                    default -> {
                        assertEquals(ModelConfig.Family.INTERNLM1, cfg.family());
                        assertEquals(60, cfg.layers());
                        assertEquals(5120, cfg.dim());
                        assertNull(m.optionalTensor("blk.0.attn_q.bias"));
                    }
                }
            }
        }
    }

    /** A one-layer cut, generated for real (in memory and to a file): same bytes, values in range, seeded. */
    @Test
    void generatedWeightsAreSeededAndInRange(@TempDir Path tmp) throws Exception {
        SyntheticModels.Choice c = SyntheticModels.parse("internlm2.5-1.8b:q8_0", 1);
        assertEquals("internlm2.5-1.8b:q8_0 (1 of 24 layers)", c.label());
        Path f = tmp.resolve("one.gguf");
        SyntheticModels.writeFile(c, f, 7, Progress.NONE);
        try (Arena arena = Arena.ofShared(); LoadedModel mapped = GgufModelLoader.load(f, Progress.NONE);
             LoadedModel mem = SyntheticModels.load(c, null, 7, Progress.NONE)) {
            MemorySegment img = SyntheticModels.image(c, 7, arena, Progress.NONE);
            assertEquals(Files.size(f), img.byteSize());
            assertEquals(-1, MemorySegment.ofArray(Files.readAllBytes(f)).mismatch(img));
            assertTrue(mem.format().contains("synthetic"));
            TensorData q = mem.tensor("blk.0.attn_q.weight");
            float[] row = new float[2048];
            Quants.dequantize(q.type(), q.data(), 0, row, 0, row.length);
            double amp = Math.sqrt(3.0 / 2048) * 1.25 * 128 / 127, ss = 0;
            for (float x : row) {
                assertTrue(Math.abs(x) <= amp, "weight " + x + " beyond " + amp);
                ss += x * x;
            }
            double rms = Math.sqrt(ss / row.length);
            assertTrue(rms > 0.3 * Math.sqrt(1.0 / 2048) && rms < 2 * Math.sqrt(1.0 / 2048), "rms " + rms);
            TensorData n = mapped.tensor("blk.0.attn_norm.weight");
            float[] norm = new float[2048];
            Quants.dequantize(n.type(), n.data(), 0, norm, 0, norm.length);
            for (float x : norm) {
                assertTrue(x >= 0.8f && x <= 1.2f, "norm weight " + x);
            }
            MemorySegment other = SyntheticModels.image(c, 8, arena, Progress.NONE);
            assertTrue(other.mismatch(img) >= 0, "another seed gives other weights");
        }
    }

    @Test
    void badNamesAreExplained() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SyntheticModels.parse("internlm9-1b", 0));
        assertTrue(e.getMessage().contains("internlm2.5-7b"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> SyntheticModels.parse("internlm2.5-7b:q6_k", 0));
        assertTrue(e.getMessage().contains("q8_0"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> SyntheticModels.parse("internlm2.5-7b:q8_0", 33));
        assertTrue(e.getMessage().contains("32 layers"), e.getMessage());
    }
}
