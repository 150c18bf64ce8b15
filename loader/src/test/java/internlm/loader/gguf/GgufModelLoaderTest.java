package internlm.loader.gguf;

import internlm.loader.LoadedModel;
import internlm.loader.ModelConfig;
import internlm.loader.ModelFormatException;
import internlm.loader.Progress;
import internlm.loader.TestData;
import internlm.loader.Vocabulary;
import internlm.loader.quant.Quants;
import internlm.loader.synthetic.SyntheticGguf;
import internlm.loader.synthetic.SyntheticGguf.Spec;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

class GgufModelLoaderTest {
    @TempDir
    Path tmp;

    @Test
    void internlm2FixtureDescription() {
        try (LoadedModel m = GgufModelLoader.load(TestData.fixture("internlm2-tiny-q8_0.gguf"), Progress.NONE)) {
            ModelConfig c = m.config();
            assertEquals(ModelConfig.Family.INTERNLM2, c.family());
            assertEquals(64, c.dim());
            assertEquals(2, c.layers());
            assertEquals(4, c.heads());
            assertEquals(2, c.kvHeads());
            assertEquals(16, c.headDim());
            assertEquals(192, c.ffn());
            assertEquals(400, c.vocabSize());
            assertEquals(2048, c.contextLength());
            assertEquals(1e6, c.ropeTheta(), 1e-3);
            Vocabulary v = m.vocab();
            assertEquals(1, v.bos());
            assertEquals(v.find("<|im_end|>"), v.eos(), "--chat-eos fixtures use <|im_end|> as eos");
            assertTrue(v.addBos());
            assertFalse(v.addSpacePrefix());
            assertNotNull(v.chatTemplate());
        }
    }

    @Test
    void internlm3FixtureDescription() {
        try (LoadedModel m = GgufModelLoader.load(TestData.fixture("internlm3-tiny-f32.gguf"), Progress.NONE)) {
            ModelConfig c = m.config();
            assertEquals(ModelConfig.Family.INTERNLM3, c.family());
            assertEquals("llama", c.architecture());
            assertEquals(8, c.heads());
            assertEquals(1, c.kvHeads());
            assertEquals(16, c.headDim());
            assertEquals(5e7, c.ropeTheta(), 1);
            assertTrue(m.vocab().addSpacePrefix());
        }
    }

    @Test
    void headDimFromKeyLengthAndBiasesAreRead() throws Exception {
        Path p = tmp.resolve("v.gguf");
        new SyntheticGguf(new Spec("llama", 64, 1, 4, 2, 32, 96, 512, 1e4, 1e-6f, GgmlType.F32, true, 1)).write(p);
        try (LoadedModel m = GgufModelLoader.load(p, Progress.NONE)) {
            assertEquals(32, m.config().headDim());
            assertEquals(128, m.config().qDim());
            assertTrue(m.config().qkvBias());
            assertTrue(m.config().outBias());
            assertEquals(ModelConfig.Family.INTERNLM1, m.config().family());
        }
    }

    private ModelFormatException refuse(SyntheticGguf g) throws Exception {
        Path p = tmp.resolve("bad" + System.nanoTime() + ".gguf");
        g.write(p);
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> GgufModelLoader.load(p, Progress.NONE).close());
        assertTrue(e.getMessage().startsWith(p.toString()), e.getMessage());
        return e;
    }

    private static SyntheticGguf tiny() {
        return new SyntheticGguf(Spec.internlm2(64, 1, 4, 2, 96, GgmlType.F32, 3));
    }

    @Test
    void unknownArchitectureIsRefused() throws Exception {
        ModelFormatException e = refuse(tiny().metadata("general.architecture", "qwen2"));
        assertTrue(e.getMessage().contains("unsupported architecture 'qwen2'"), e.getMessage());
    }

    @Test
    void missingOrMisshapenTensorsAreNamed() throws Exception {
        ModelFormatException e = refuse(tiny().override("blk.0.ffn_up.weight", t -> null));
        assertTrue(e.getMessage().contains("required tensor 'blk.0.ffn_up.weight' is missing"), e.getMessage());
        e = refuse(tiny().override("blk.0.attn_k.weight", t -> new SyntheticGguf.Tensor(t.name(), t.type(), new long[] {64, 48}, new float[64 * 48], null)));
        assertTrue(e.getMessage().contains("'blk.0.attn_k.weight' has shape [64, 48] but the metadata implies [64, 32]"), e.getMessage());
    }

    @Test
    void missingMetadataAndUnsupportedTypesAreNamed() throws Exception {
        ModelFormatException e = refuse(tiny().metadata("internlm2.block_count", "two"));
        assertTrue(e.getMessage().contains("internlm2.block_count") && e.getMessage().contains("expected an integer"), e.getMessage());
        e = refuse(tiny().metadata("tokenizer.ggml.model", "gpt2"));
        assertTrue(e.getMessage().contains("tokenizer model 'gpt2'"), e.getMessage());
        e = refuse(tiny().override("blk.0.ffn_gate.weight", t -> new SyntheticGguf.Tensor(t.name(), GgmlType.Q5_K, new long[] {256, 24}, null, new byte[24 * 176])));
        assertTrue(e.getMessage().contains("type Q5_K, which this engine does not run"), e.getMessage());
        e = refuse(tiny().metadata("internlm2.rope.scaling.type", "yarn"));
        assertTrue(e.getMessage().contains("RoPE scaling type 'yarn'"), e.getMessage());
    }

    @Test
    void kQuantTensorsAreRequantizedToQ8_0AtLoad() throws Exception {
        // a 256x4 Q4_K ffn_gate made of hand-built blocks (d=1/16, dmin=0, all sub-scales 2, nibble pattern)
        int dim = 256;
        byte[] raw = new byte[4 * 144];
        MemorySegment s = MemorySegment.ofArray(raw);
        for (int r = 0; r < 4; r++) {
            long o = 144L * r;
            s.set(Quants.F16, o, Float.floatToFloat16(1 / 16f));
            s.set(Quants.F16, o + 2, Float.floatToFloat16(0f));
            for (int j = 0; j < 4; j++) {
                s.set(ValueLayout.JAVA_BYTE, o + 4 + j, (byte) 2);      // scales 0..3 = 2, mins 0
                s.set(ValueLayout.JAVA_BYTE, o + 12 + j, (byte) 2);     // scales 4..7 low bits = 2
            }
            for (int i = 0; i < 128; i++) {
                s.set(ValueLayout.JAVA_BYTE, o + 16 + i, (byte) ((i + r) % 16 | (((i + 3) % 16) << 4)));
            }
        }
        Path p = tmp.resolve("k.gguf");
        new SyntheticGguf(Spec.internlm2(dim, 1, 4, 2, 4, GgmlType.F32, 5))
                .override("blk.0.ffn_gate.weight", t -> new SyntheticGguf.Tensor(t.name(), GgmlType.Q4_K, new long[] {dim, 4}, null, raw))
                .write(p);
        try (LoadedModel m = GgufModelLoader.load(p, Progress.NONE)) {
            var t = m.tensor("blk.0.ffn_gate.weight");
            assertEquals(GgmlType.Q8_0, t.type());
            float[] expect = new float[4 * dim], got = new float[4 * dim];
            Quants.dequantize(GgmlType.Q4_K, s, 0, expect, 0, expect.length);
            Quants.dequantize(GgmlType.Q8_0, t.data(), 0, got, 0, got.length);
            for (int i = 0; i < got.length; i++) {
                assertEquals(expect[i], got[i], 1.875f / 127 * 0.57 + 1e-6, "element " + i);  // max |value| = 1/16·2·15
            }
            assertTrue(m.notes().stream().anyMatch(n -> n.contains("requantized to Q8_0")));
        }
    }
}
