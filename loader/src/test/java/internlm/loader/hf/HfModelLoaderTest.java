package internlm.loader.hf;

import internlm.loader.LoadedModel;
import internlm.loader.ModelConfig;
import internlm.loader.ModelConfig.Family;
import internlm.loader.ModelConfig.RopeScaling;
import internlm.loader.ModelFormatException;
import internlm.loader.Progress;
import internlm.loader.TensorData;
import internlm.loader.Vocabulary;
import internlm.loader.gguf.GgmlType;
import internlm.loader.gguf.GgufModelLoader;
import internlm.loader.quant.Quants;
import internlm.loader.quant.TensorConversion;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

import static internlm.loader.hf.HfTestDirs.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * The HF directories of testdata/hf (written by the harness's make-hf.mjs: InternLM2 bf16 in two shards, InternLM3
 * f32, InternLM v1 bf16 with q/k/v/o biases) must load into exactly what the reference GGUF beside each holds — the
 * file llama.cpp's converter would write from it (wqkv split, LlamaModel.permute of Q/K): same tensor names and
 * dims, bit-identical values, same model description and the same vocabulary.
 */
class HfModelLoaderTest {
    @TempDir
    Path tmp;

    @ParameterizedTest
    @ValueSource(strings = {V2_BF16_SHARDED, V3_F32, V1_BF16_BIAS})
    void loadsExactlyWhatTheReferenceGgufHolds(String name) throws Exception {
        try (LoadedModel hf = HfModelLoader.load(dir(name), Progress.NONE);
             LoadedModel ref = GgufModelLoader.load(referenceGguf(name), Progress.NONE)) {
            assertEquals(new TreeSet<>(ref.tensors().keySet()), new TreeSet<>(hf.tensors().keySet()), "tensor names");
            for (TensorData r : ref.tensors().values()) {
                TensorData h = hf.tensor(r.name());
                assertArrayEquals(r.dims(), h.dims(), r.name() + " dims");
                assertArrayEquals(TensorConversion.toFloats(r), TensorConversion.toFloats(h), r.name() + " values");
                if (h.dims().length == 1) {
                    assertEquals(GgmlType.F32, h.type(), r.name() + ": vectors become F32");
                } else {
                    assertEquals(name.contains("bf16") ? GgmlType.BF16 : GgmlType.F32, h.type(), r.name() + ": matrices keep their stored type");
                }
            }
            ModelConfig a = ref.config(), b = hf.config();
            assertEquals(a.dim(), b.dim());
            assertEquals(a.layers(), b.layers());
            assertEquals(a.heads(), b.heads());
            assertEquals(a.kvHeads(), b.kvHeads());
            assertEquals(a.headDim(), b.headDim());
            assertEquals(a.ffn(), b.ffn());
            assertEquals(a.vocabSize(), b.vocabSize());
            assertEquals(a.contextLength(), b.contextLength());
            assertEquals(a.ropeTheta(), b.ropeTheta());
            assertEquals(RopeScaling.NONE, b.ropeScaling());
            assertEquals(a.rmsEps(), b.rmsEps());
            assertEquals(a.qkvBias(), b.qkvBias());
            assertEquals(a.outBias(), b.outBias());
            assertEquals(a.tiedEmbeddings(), b.tiedEmbeddings());
            assertEquals(a.family(), b.family());
            assertEquals(name.startsWith("internlm2") ? "internlm2" : name.startsWith("internlm3") ? "internlm3" : "internlm", b.architecture());

            Vocabulary va = ref.vocab(), vb = hf.vocab();
            assertArrayEquals(va.tokens(), vb.tokens(), "tokens (placeholders renamed from tokenizer_config.json)");
            assertArrayEquals(va.scores(), vb.scores(), "scores");
            assertArrayEquals(va.types(), vb.types(), "types");
            assertEquals(va.bos(), vb.bos());
            assertEquals(va.unk(), vb.unk());
            assertEquals(va.addBos(), vb.addBos());
            assertEquals(va.addEos(), vb.addEos());
            assertEquals(va.addSpacePrefix(), vb.addSpacePrefix());
            assertEquals(va.chatTemplate(), vb.chatTemplate());
            int imEnd = va.find("<|im_end|>");
            // the reference was written without --chat-eos (eos 2); llama.cpp's converter switches chat models to <|im_end|>
            assertEquals(2, va.eos());
            assertEquals(imEnd, vb.eos());
            assertArrayEquals(new int[] {2, imEnd}, hf.stopTokens(), "generation_config.json eos ids");
            assertTrue(hf.format().startsWith("HF safetensors"));
        }
    }

    @Test
    void placeholdersAreRenamedByTheAddedTokens() throws Exception {
        SentencePieceModel sp = SentencePieceModel.read(dir(V2_BF16_SHARDED).resolve("tokenizer.model"));
        assertEquals(400, sp.pieces().size());
        assertEquals("[UNUSED_TOKEN_145]", sp.pieces().get(398).piece());
        assertFalse(sp.addDummyPrefix(), "InternLM2: no dummy prefix");
        assertEquals(SentencePieceModel.MODEL_BPE, sp.modelType());
        assertTrue(sp.byteFallback());
        assertEquals("<0x0A>", sp.pieces().get(3 + 10).piece());
        assertEquals(SentencePieceModel.TYPE_BYTE, sp.pieces().get(13).type());
        try (LoadedModel hf = HfModelLoader.load(dir(V2_BF16_SHARDED), Progress.NONE)) {
            assertEquals("<|im_end|>", hf.vocab().tokens()[398]);
            assertEquals(Vocabulary.TYPE_CONTROL, hf.vocab().types()[398]);
            assertEquals(-1000f, hf.vocab().scores()[398]);
            assertEquals("HF safetensors (2 shards)", hf.format());
        }
    }

    /** tokenizer.model without its last {@code drop} pieces (they are the leading repeated field 1 of the proto). */
    static byte[] withoutLastPieces(byte[] proto, int drop) {
        java.util.List<int[]> pieces = new java.util.ArrayList<>();
        int pos = 0;
        while (pos < proto.length) {
            int start = pos;
            int tag = proto[pos++] & 0xff; // single-byte tags at the top level (fields 1-3)
            long len = 0;
            for (int shift = 0; ; shift += 7) {
                int b = proto[pos++] & 0xff;
                len |= (long) (b & 0x7f) << shift;
                if ((b & 0x80) == 0) {
                    break;
                }
            }
            pos += (int) len;
            if (tag == 0x0a) {
                pieces.add(new int[] {start, pos});
            }
        }
        int cutFrom = pieces.get(pieces.size() - drop)[0], cutTo = pieces.getLast()[1];
        byte[] out = new byte[proto.length - (cutTo - cutFrom)];
        System.arraycopy(proto, 0, out, 0, cutFrom);
        System.arraycopy(proto, cutTo, out, cutFrom, proto.length - cutTo);
        return out;
    }

    @Test
    void vocabularyIsPaddedOrTruncatedToVocabSizeAsTheConverterDoes() throws Exception {
        Path d = copy(V2_BF16_SHARDED, tmp);
        Path tm = d.resolve("tokenizer.model");
        Files.write(tm, withoutLastPieces(Files.readAllBytes(tm), 10));
        assertEquals(390, SentencePieceModel.read(tm).pieces().size());
        try (LoadedModel m = HfModelLoader.load(d, Progress.NONE); LoadedModel ref = GgufModelLoader.load(referenceGguf(V2_BF16_SHARDED), Progress.NONE)) {
            Vocabulary v = m.vocab();
            assertEquals(400, v.size());
            for (int i = 390; i < 394; i++) {
                assertEquals("[PAD" + i + "]", v.tokens()[i]);
                assertEquals(-10000f, v.scores()[i]);
                assertEquals(Vocabulary.TYPE_UNUSED, v.types()[i]);
            }
            for (int i = 394; i < 400; i++) { // added tokens land on padded ids too
                assertEquals(ref.vocab().tokens()[i], v.tokens()[i]);
                assertEquals(Vocabulary.TYPE_CONTROL, v.types()[i]);
            }
            assertTrue(m.notes().stream().anyMatch(n -> n.contains("padded with 10")), m.notes().toString());
        }
        HfConfig c = HfConfig.read(dir(V2_BF16_SHARDED).resolve("config.json"));
        HfConfig small = new HfConfig(c.file(), c.family(), c.modelType(), c.name(), c.hidden(), c.layers(), c.heads(), c.kvHeads(),
                c.headDim(), c.ffn(), 390, c.maxPositions(), c.ropeTheta(), c.ropeScaling(), c.rmsEps(), c.bias(), c.qkvBias(),
                c.tieEmbeddings(), c.bosId(), c.eosIds(), c.padId(), c.unkId());
        HfVocabulary hv = HfVocabulary.read(dir(V2_BF16_SHARDED), small);
        assertEquals(390, hv.vocabulary().size());
        assertEquals(2, hv.vocabulary().eos(), "<|im_end|> (398) is past the vocabulary: eos stays </s>");
        assertTrue(hv.notes().stream().anyMatch(n -> n.contains("are dropped")), hv.notes().toString());
    }

    @Test
    void unchangedTensorsAreViewsOfTheMappedFiles() throws Exception {
        try (LoadedModel hf = HfModelLoader.load(dir(V2_BF16_SHARDED), Progress.NONE)) {
            assertTrue(hf.tensor("blk.0.ffn_down.weight").data().isMapped(), "no copy for a tensor whose rows stay in place");
            assertTrue(hf.tensor("token_embd.weight").data().isMapped());
            assertFalse(hf.tensor("blk.0.attn_q.weight").data().isMapped(), "split out of wqkv");
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"Q8_0", "Q4_0", "F16"})
    void weightsCanBeConvertedAtLoad(String type) throws Exception {
        GgmlType t = GgmlType.valueOf(type);
        List<long[]> progress = new ArrayList<>();
        try (LoadedModel hf = HfModelLoader.load(dir(V1_BF16_BIAS), new HfModelLoader.Options(t), (s, d, n) -> progress.add(new long[] {d, n}));
             LoadedModel ref = GgufModelLoader.load(referenceGguf(V1_BF16_BIAS), Progress.NONE);
             Arena arena = Arena.ofConfined()) {
            for (TensorData r : ref.tensors().values()) {
                TensorData h = hf.tensor(r.name());
                if (r.dims().length == 1) {
                    assertEquals(GgmlType.F32, h.type());
                    continue;
                }
                assertEquals(t, h.type(), r.name());
                // the bytes are exactly ggml's reference quantization of the reference values
                float[] v = TensorConversion.toFloats(r);
                MemorySegment expect = arena.allocate(t.byteSize(v.length));
                TensorConversion.encode(v, 0, v.length, t, expect, 0);
                assertEquals(-1, expect.mismatch(h.data()), r.name() + " bytes");
            }
            assertTrue(hf.notes().getFirst().contains("converted to " + t), hf.notes().toString());
        }
        assertTrue(progress.size() > 10, "progress reported per tensor");
        assertEquals(progress.getLast()[1], progress.getLast()[0], "ends at 100%");
        assertEquals(Files.size(dir(V1_BF16_BIAS).resolve("model.safetensors")) - 8 - SafetensorsFile.open(dir(V1_BF16_BIAS).resolve("model.safetensors")).headerLength(),
                progress.getLast()[1], "total = tensor bytes");
    }

    @Test
    void ropeScalingIsReadInEveryDialect() throws Exception {
        Path d = copy(V2_BF16_SHARDED, tmp);
        Path cfg = d.resolve("config.json");
        HfTestDirs.editJson(cfg, o -> o.putObject("rope_scaling").put("type", "dynamic").put("factor", 2.0));
        assertEquals(new RopeScaling(RopeScaling.Type.DYNAMIC, 2.0), HfConfig.read(cfg).ropeScaling());
        HfTestDirs.editJson(cfg, o -> o.putObject("rope_scaling").put("rope_type", "dynamic").put("factor", 6.0));
        assertEquals(new RopeScaling(RopeScaling.Type.DYNAMIC, 6.0), HfConfig.read(cfg).ropeScaling());
        HfTestDirs.editJson(cfg, o -> o.putObject("rope_scaling").put("type", "linear").put("factor", 4));
        assertEquals(new RopeScaling(RopeScaling.Type.LINEAR, 4.0), HfConfig.read(cfg).ropeScaling());
        HfTestDirs.editJson(cfg, o -> o.putObject("rope_scaling").put("rope_type", "default"));
        assertEquals(RopeScaling.NONE, HfConfig.read(cfg).ropeScaling());
        HfTestDirs.editJson(cfg, o -> o.putObject("rope_scaling").put("type", "yarn").put("factor", 4));
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> HfConfig.read(cfg));
        assertTrue(e.getMessage().contains("rope_scaling type 'yarn' is not supported"), e.getMessage());
        HfTestDirs.editJson(cfg, o -> o.putObject("rope_scaling").put("type", "dynamic"));
        e = assertThrows(ModelFormatException.class, () -> HfConfig.read(cfg));
        assertTrue(e.getMessage().contains("rope_scaling.factor is missing"), e.getMessage());

        // InternLM v1's later revision: rotary = {base, type, scaling_factor} overrides rope_theta
        Path v1 = copy(V1_BF16_BIAS, tmp).resolve("config.json");
        HfTestDirs.editJson(v1, o -> o.putObject("rotary").put("base", 20000.0).put("type", "dynamic").put("scaling_factor", 1.0));
        HfConfig c = HfConfig.read(v1);
        assertEquals(20000.0, c.ropeTheta());
        assertEquals(new RopeScaling(RopeScaling.Type.DYNAMIC, 1.0), c.ropeScaling());
        HfTestDirs.editJson(v1, o -> o.putObject("rotary").put("base", 10000.0).put("type", "origin"));
        assertEquals(RopeScaling.NONE, HfConfig.read(v1).ropeScaling());
        try (LoadedModel m = HfModelLoader.load(d.getParent().resolve(V1_BF16_BIAS), Progress.NONE)) {
            assertEquals(Family.INTERNLM1, m.config().family());
            assertTrue(m.config().qkvBias() && m.config().outBias());
        }
    }

    @Test
    void rewardHeadIsExposedAsVHead() throws Exception {
        Path d = copy(V3_F32, tmp);
        // a reward model: v_head [1, hidden] and no LM head
        float[] head = new float[64];
        for (int i = 0; i < head.length; i++) {
            head[i] = i / 64f - 0.5f;
        }
        Map<String, RawTensor> m = HfTestDirs.map();
        m.put("v_head.weight", RawTensor.f32(new long[] {1, 64}, head));
        Files.write(d.resolve("reward-head.safetensors"), safetensors(m));
        Files.move(d.resolve("model.safetensors"), d.resolve("model-00001-of-00001.safetensors"));
        try (LoadedModel hf = HfModelLoader.load(d, Progress.NONE)) {
            TensorData v = hf.tensor("v_head.weight");
            assertArrayEquals(new long[] {64, 1}, v.dims());
            assertEquals(GgmlType.F32, v.type());
            assertArrayEquals(head, TensorConversion.toFloats(v));
            assertTrue(hf.notes().stream().anyMatch(n -> n.contains("v_head")), hf.notes().toString());
        }
    }

    @Test
    void aMissingLmHeadIsTiedOnlyWhenTheConfigSaysSo() throws Exception {
        Path d = copy(V3_F32, tmp);
        byte[] st = Files.readAllBytes(d.resolve("model.safetensors"));
        // rewrite the file without lm_head.weight
        try (SafetensorsFile f = SafetensorsFile.open(d.resolve("model.safetensors"))) {
            Map<String, RawTensor> m = map();
            for (SafetensorsFile.Tensor t : f.tensors().values()) {
                if (!t.name().equals("lm_head.weight")) {
                    m.put(t.name(), new RawTensor(t.dtype().name(), t.shape(), java.util.Arrays.copyOfRange(st, (int) t.offset(), (int) (t.offset() + t.byteSize()))));
                }
            }
            st = safetensors(m);
        }
        Files.write(d.resolve("model.safetensors"), st);
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> HfModelLoader.load(d, Progress.NONE));
        assertTrue(e.getMessage().contains("lm_head.weight) is missing from the weights and config.json says tie_word_embeddings = false"), e.getMessage());
        editJson(d.resolve("config.json"), o -> o.put("tie_word_embeddings", true));
        try (LoadedModel m = HfModelLoader.load(d, Progress.NONE)) {
            assertTrue(m.config().tiedEmbeddings());
            assertNull(m.optionalTensor("output.weight"));
        }
    }

    @Test
    void pickleCheckpointsAreRefusedWithInstructions() throws Exception {
        Path d = copy(V1_BF16_BIAS, tmp);
        Files.delete(d.resolve("model.safetensors"));
        Files.write(d.resolve("pytorch_model.bin"), new byte[] {(byte) 0x80, 2, 'c', 'o', 's'});
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> HfModelLoader.load(d, Progress.NONE));
        assertTrue(e.getMessage().contains("pytorch_model.bin") && e.getMessage().contains("safe_serialization=True"), e.getMessage());
        Files.delete(d.resolve("pytorch_model.bin"));
        e = assertThrows(ModelFormatException.class, () -> HfModelLoader.load(d, Progress.NONE));
        assertTrue(e.getMessage().contains("has no weights"), e.getMessage());
    }

    @Test
    void shapesDisagreeingWithTheConfigAreNamed() throws Exception {
        Path d = copy(V2_BF16_SHARDED, tmp);
        HfTestDirs.editJson(d.resolve("config.json"), o -> o.put("num_key_value_heads", 1));
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> HfModelLoader.load(d, Progress.NONE));
        assertTrue(e.getMessage().contains("model.layers.0.attention.wqkv.weight' has shape [128, 64] but config.json implies [96, 64]"), e.getMessage());
        assertTrue(e.getMessage().startsWith(d.resolve("model-00001-of-00002.safetensors").toString()), e.getMessage());
        HfTestDirs.editJson(d.resolve("config.json"), o -> o.put("num_key_value_heads", 2).put("num_hidden_layers", 3));
        e = assertThrows(ModelFormatException.class, () -> HfModelLoader.load(d, Progress.NONE));
        assertTrue(e.getMessage().contains("required tensor 'blk.2.attn_norm.weight' is missing"), e.getMessage());
        HfTestDirs.editJson(d.resolve("config.json"), o -> o.put("num_hidden_layers", 1));
        e = assertThrows(ModelFormatException.class, () -> HfModelLoader.load(d, Progress.NONE));
        assertTrue(e.getMessage().contains("belongs to layer 1 but config.json num_hidden_layers is 1"), e.getMessage());
        HfTestDirs.editJson(d.resolve("config.json"), o -> o.put("num_hidden_layers", 2).put("model_type", "qwen2"));
        e = assertThrows(ModelFormatException.class, () -> HfModelLoader.load(d, Progress.NONE));
        assertTrue(e.getMessage().contains("model_type 'qwen2' is not supported"), e.getMessage());
        HfTestDirs.editJson(d.resolve("config.json"), o -> o.put("model_type", "internlm2").put("vocab_size", 300));
        e = assertThrows(ModelFormatException.class, () -> HfModelLoader.load(d, Progress.NONE));
        assertTrue(e.getMessage().contains("'model.tok_embeddings.weight' has shape [400, 64] but config.json implies [300, 64]"), e.getMessage());
    }
}
