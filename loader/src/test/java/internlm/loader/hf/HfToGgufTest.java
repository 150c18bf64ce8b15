package internlm.loader.hf;

import internlm.loader.LoadedModel;
import internlm.loader.ModelConfig.Family;
import internlm.loader.ModelConfig.RopeScaling;
import internlm.loader.ModelFormatException;
import internlm.loader.Progress;
import internlm.loader.TensorData;
import internlm.loader.gguf.GgmlType;
import internlm.loader.gguf.GgufFile;
import internlm.loader.gguf.GgufModelLoader;
import internlm.loader.gguf.GgufTensor;
import internlm.loader.gguf.GgufValue;
import internlm.loader.quant.TensorConversion;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;

import static internlm.loader.hf.HfTestDirs.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * {@code convert} output against the reference GGUF make-hf.mjs wrote for the same directory (the file llama.cpp's
 * converter would write; llama.cpp's greedy ids for it are in NAME.expected.json and are checked against our engine
 * on the converted file by the CLI tests): same tensors byte for byte (F32), same metadata except where this
 * converter deliberately follows llama.cpp's converter more closely (eos = {@code <|im_end|>}) or adds its own keys.
 */
class HfToGgufTest {
    @TempDir
    Path tmp;

    /** Keys whose values may differ from the reference, and why. */
    private static final Set<String> DIFFERENT = Set.of(
            "general.name",                      // the reference names the make-model run, we the directory
            "tokenizer.ggml.eos_token_id");      // <|im_end|> for chat models, as llama.cpp's converter (checked below)

    @ParameterizedTest
    @ValueSource(strings = {V2_BF16_SHARDED, V3_F32, V1_BF16_BIAS})
    void f32ConversionEqualsTheReferenceGguf(String name) throws Exception {
        Path out = tmp.resolve(name + ".gguf");
        HfToGguf.Result r = HfToGguf.convert(dir(name), out, GgmlType.F32, Progress.NONE);
        assertEquals(Files.size(out), r.bytes());
        try (GgufFile ours = GgufFile.open(out); GgufFile ref = GgufFile.open(referenceGguf(name))) {
            assertEquals(ref.tensors().keySet(), ours.tensors().keySet(), "tensor names");
            for (GgufTensor t : ref.tensors().values()) {
                GgufTensor o = ours.tensor(t.name());
                assertArrayEquals(t.dims(), o.dims(), t.name());
                assertEquals(t.type(), o.type(), t.name());
                assertEquals(-1, t.data().mismatch(o.data()), t.name() + " bytes");
            }
            for (Map.Entry<String, GgufValue> e : ref.metadata().entrySet()) {
                String k = e.getKey();
                if (DIFFERENT.contains(k) || (name.equals(V1_BF16_BIAS) && k.equals("tokenizer.ggml.padding_token_id"))) {
                    continue; // v1: config.json pad_token_id is 0 (internlm-20b's), the reference keeps make-model's 2
                }
                assertTrue(ours.has(k), "missing key " + k);
                GgufValue a = e.getValue(), b = ours.metadata().get(k);
                assertEquals(a.type(), b.type(), k + " type");
                assertEquals(a.elementType(), b.elementType(), k + " element type");
                assertTrue(Objects.deepEquals(a.value(), b.value()), k + ": " + a.describe(5) + " vs " + b.describe(5));
            }
            Set<String> extra = new TreeSet<>(ours.metadata().keySet());
            extra.removeAll(ref.metadata().keySet());
            assertEquals(Set.of(GgufModelLoader.KEY_FAMILY), extra, "keys the reference does not have");
            int imEnd = java.util.Arrays.asList(ours.getStringArray("tokenizer.ggml.tokens")).indexOf("<|im_end|>");
            assertEquals(imEnd, ours.getLong("tokenizer.ggml.eos_token_id"));
        }
        // and it loads back into the same model as the directory
        try (LoadedModel a = HfModelLoader.load(dir(name), Progress.NONE); LoadedModel b = GgufModelLoader.load(out, Progress.NONE)) {
            assertEquals(a.config().family(), b.config().family());
            assertArrayEquals(a.vocab().tokens(), b.vocab().tokens());
            assertEquals(a.vocab().eos(), b.vocab().eos());
            for (TensorData t : a.tensors().values()) {
                assertArrayEquals(TensorConversion.toFloats(t), TensorConversion.toFloats(b.tensor(t.name())), t.name());
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"Q8_0", "Q4_0", "F16", "BF16"})
    void matricesAreWrittenInTheRequestedTypeNormsInF32(String type) throws Exception {
        GgmlType t = GgmlType.valueOf(type);
        Path out = tmp.resolve("m.gguf");
        HfToGguf.convert(dir(V2_BF16_SHARDED), out, t, Progress.NONE);
        try (GgufFile f = GgufFile.open(out); LoadedModel ref = GgufModelLoader.load(referenceGguf(V2_BF16_SHARDED), Progress.NONE);
             Arena arena = Arena.ofConfined()) {
            assertEquals(HfToGguf.fileType(t), f.getLong("general.file_type"));
            for (GgufTensor g : f.tensors().values()) {
                if (g.dims().length == 1) {
                    assertEquals(GgmlType.F32, g.type(), g.name());
                    continue;
                }
                assertEquals(t, g.type(), g.name());
                float[] v = TensorConversion.toFloats(ref.tensor(g.name()));
                MemorySegment expect = arena.allocate(t.byteSize(v.length));
                TensorConversion.encode(v, 0, v.length, t, expect, 0);
                assertEquals(-1, expect.mismatch(g.data()), g.name() + ": ggml's reference conversion of the same values");
            }
        }
    }

    @Test
    void rowsThatAreNotWholeBlocksFallBackToF16() {
        assertEquals(GgmlType.Q4_0, TensorConversion.matrixType(GgmlType.Q4_0, 192));
        assertEquals(GgmlType.F16, TensorConversion.matrixType(GgmlType.Q4_0, 176));
        assertEquals(GgmlType.F16, TensorConversion.matrixType(GgmlType.Q8_0, 100));
        assertEquals(GgmlType.BF16, TensorConversion.matrixType(GgmlType.BF16, 100));
    }

    @Test
    void dynamicScalingFamilyAndRewardHeadSurviveTheRoundTrip() throws Exception {
        Path d = copy(V1_BF16_BIAS, tmp);
        editJson(d.resolve("config.json"), o -> o.putObject("rotary").put("base", 10000.0).put("type", "dynamic").put("scaling_factor", 2.0));
        float[] head = new float[64];
        head[3] = 1.5f;
        Map<String, RawTensor> m = map();
        m.put("v_head.weight", RawTensor.f32(new long[] {1, 64}, head));
        Files.write(d.resolve("v_head.safetensors"), safetensors(m));
        Files.move(d.resolve("model.safetensors"), d.resolve("model-00001-of-00001.safetensors"));
        Path out = tmp.resolve("dyn.gguf");
        HfToGguf.Result r = HfToGguf.convert(d, out, GgmlType.Q8_0, Progress.NONE);
        assertTrue(r.notes().stream().anyMatch(n -> n.contains("v_head.weight")), r.notes().toString());
        assertTrue(r.notes().stream().anyMatch(n -> n.contains("dynamic NTK")), r.notes().toString());
        try (GgufFile f = GgufFile.open(out)) {
            assertEquals(2.0, f.getDouble(GgufModelLoader.KEY_DYNAMIC_FACTOR));
            assertFalse(f.has("llama.rope.scaling.type"), "llama.cpp would refuse an unknown scaling type");
        }
        try (LoadedModel g = GgufModelLoader.load(out, Progress.NONE)) {
            assertEquals(new RopeScaling(RopeScaling.Type.DYNAMIC, 2.0), g.config().ropeScaling());
            assertEquals(Family.INTERNLM1, g.config().family());
            TensorData v = g.tensor("v_head.weight");
            assertEquals(GgmlType.F32, v.type());
            assertArrayEquals(new long[] {64, 1}, v.dims());
            assertArrayEquals(head, TensorConversion.toFloats(v));
        }
    }

    @Test
    void aFailedConversionLeavesNoFile() throws Exception {
        Path d = copy(V3_F32, tmp);
        byte[] st = Files.readAllBytes(d.resolve("model.safetensors"));
        Files.write(d.resolve("model.safetensors"), java.util.Arrays.copyOf(st, st.length - 100));
        Path out = tmp.resolve("x.gguf");
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> HfToGguf.convert(d, out, GgmlType.F16, Progress.NONE));
        assertTrue(e.getMessage().contains("model.safetensors"), e.getMessage());
        assertFalse(Files.exists(out));
        try (var s = Files.list(tmp)) {
            assertTrue(s.noneMatch(p -> p.getFileName().toString().endsWith(".part")));
        }
    }
}
