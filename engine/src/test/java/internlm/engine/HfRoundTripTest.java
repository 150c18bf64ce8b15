package internlm.engine;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import internlm.engine.cpu.CpuBackend;
import internlm.engine.generate.Session;
import internlm.engine.model.Backend;
import internlm.engine.sampling.Sampler;
import internlm.engine.tokenizer.Tokenizer;
import internlm.loader.LoadedModel;
import internlm.loader.ModelConfig.Family;
import internlm.loader.Progress;
import internlm.loader.TensorData;
import internlm.loader.gguf.GgmlType;
import internlm.loader.gguf.GgufModelLoader;
import internlm.loader.quant.Quants;
import internlm.loader.quant.TensorConversion;
import internlm.loader.synthetic.SyntheticGguf;
import internlm.loader.synthetic.SyntheticGguf.Spec;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The tests write HF directories themselves ({@link HfDirWriter}: the inverse of the converter, written
 * independently of the loader) from GGUF models — the llama.cpp fixtures and synthetic shapes the fixtures lack — in
 * every family, dtype and sharding, and require the loader to give back the GGUF model: same tensors (bf16-rounded
 * when written as bf16), same vocabulary, llama.cpp's tokenization and greedy ids for the fixtures, the float64
 * reference's logits for the others.
 */
class HfRoundTripTest {
    @TempDir
    Path tmp;

    private static final ObjectMapper JSON = new ObjectMapper();

    @ParameterizedTest(name = "{0} as {1} {2} in {3} shard(s)")
    @CsvSource({
            "internlm2-tiny-f32, INTERNLM2, F32, 3",
            "internlm3-tiny-f32, INTERNLM3, F32, 1",
            "internlm2-d64-mha-asp-f16-s11, INTERNLM2, F16, 2",
            "llama-d64-l3-noasp-f16-s5, INTERNLM3, F16, 1"})
    void fixtureWrittenAsHfDirectoryIsLlamaCppsModel(String fixture, Family family, String dtype, int shards) throws Exception {
        Path gguf = Fixtures.fixture(fixture + ".gguf");
        Path dir = tmp.resolve(fixture);
        try (LoadedModel g = GgufModelLoader.load(gguf, Progress.NONE)) {
            HfDirWriter.write(g, dir, family, dtype, shards);
            try (LoadedModel h = Engine.loadModel(dir, Progress.NONE)) {
                assertSameModel(g, h, dtype);
                assertEquals(shards > 1 ? "HF safetensors (" + shards + " shards)" : "HF safetensors", h.format());
            }
        }
        JsonNode exp = JSON.readTree(Fixtures.expected(gguf).toFile());
        try (Engine e = Engine.load(dir, new Engine.Options("cpu", 2, null, true), Progress.NONE); Session s = e.newSession(128)) {
            Tokenizer tok = e.tokenizer();
            for (JsonNode t : exp.get("tokenize")) {
                String text = t.get("text").asText();
                assertArrayEquals(FixtureConformanceTest.ints(t.get("special")), tok.encode(text, false, true), "special ids for " + text);
                assertArrayEquals(FixtureConformanceTest.ints(t.get("no_special")), tok.encode(text, false, false), "plain ids for " + text);
                assertArrayEquals(FixtureConformanceTest.ints(t.get("with_bos")), tok.encode(text, true, true), "BOS ids for " + text);
                assertEquals(t.get("detok_special").asText(), tok.decode(FixtureConformanceTest.ints(t.get("special")), true));
            }
            JsonNode d = exp.get("decode");
            double tol = FixtureConformanceTest.tolerance(e);
            float[] l = s.prefill(FixtureConformanceTest.ints(d.get("prompt")));
            int compared = 0;
            for (JsonNode st : d.get("steps")) {
                for (JsonNode top : st.get("top")) {
                    assertEquals(top.get("logit").asDouble(), l[top.get("id").asInt()], tol, "llama.cpp logit of " + top.get("id"));
                }
                if (st.get("gap12").asDouble() < 2 * tol) {
                    break;
                }
                assertEquals(st.get("token").asInt(), Sampler.argmax(l));
                compared++;
                l = s.append(st.get("token").asInt());
            }
            assertTrue(compared >= 5, "compared " + compared);
        }
    }

    @ParameterizedTest(name = "{0} as {1}")
    @CsvSource({"INTERNLM1, BF16, 32, 16", "INTERNLM3, F32, 32, 32", "INTERNLM3, BF16, 64, 16"})
    void shapesTheFixturesLackMatchTheReference(Family family, String dtype, int dim, int headDim) throws Exception {
        // v1 with q/k/v/o biases (MHA); InternLM3 with biases and head_dim 32 != dim/heads; InternLM3 4:1 GQA in bf16
        Spec spec = switch (family) {
            case INTERNLM1 -> new Spec("llama", dim, 2, 2, 2, 0, 96, 512, 1e4, 1e-6f, GgmlType.F32, true, 3);
            default -> headDim != dim / 4
                    ? new Spec("llama", dim, 2, 4, 2, headDim, 96, 512, 5e7, 1e-5f, GgmlType.F32, true, 4)
                    : new Spec("llama", dim, 2, 4, 1, 0, 96, 512, 5e7, 1e-5f, GgmlType.F32, false, 5);
        };
        Path gguf = tmp.resolve("s.gguf");
        new SyntheticGguf(spec).write(gguf);
        Path dir = tmp.resolve("hf");
        try (LoadedModel g = GgufModelLoader.load(gguf, Progress.NONE)) {
            HfDirWriter.write(g, dir, family, dtype, 1);
            try (LoadedModel h = Engine.loadModel(dir, Progress.NONE); CpuBackend cpu = new CpuBackend(h, 2, false, Progress.NONE)) {
                assertSameModel(g, h, dtype);
                assertEquals(family, h.config().family());
                ReferenceForward ref = new ReferenceForward(h);
                float[] logits = new float[h.config().vocabSize()];
                try (Backend.Sequence st = cpu.openSequence(32)) {
                    for (int pos = 0; pos < 12; pos++) {
                        int tok = 3 + (pos * 53) % 260;
                        double[] e = ref.forward(tok, pos, h.config().ropeTheta());
                        cpu.forward(st, new int[] {tok}, 1, pos, h.config().ropeTheta(), logits);
                        double scale = 0;
                        for (double x : e) {
                            scale = Math.max(scale, Math.abs(x));
                        }
                        for (int i = 0; i < e.length; i++) {
                            assertEquals(e[i], logits[i], 2e-4 * scale + 1e-4, "position " + pos + " logit " + i);
                        }
                    }
                }
            }
        }
        assertTrue(Files.exists(dir.resolve("tokenizer.model")));
    }

    /** Same tensors (values rounded to the directory's dtype), config and vocabulary. */
    private static void assertSameModel(LoadedModel g, LoadedModel h, String dtype) {
        assertEquals(g.tensors().keySet(), h.tensors().keySet());
        for (TensorData t : g.tensors().values()) {
            TensorData u = h.tensor(t.name());
            assertArrayEquals(t.dims(), u.dims(), t.name());
            float[] a = TensorConversion.toFloats(t), b = TensorConversion.toFloats(u);
            for (int i = 0; i < a.length; i++) {
                float expect = switch (dtype) {
                    case "F32" -> a[i];
                    case "F16" -> Float.float16ToFloat(Float.floatToFloat16(a[i]));
                    default -> Quants.bf16ToFloat(Quants.floatToBf16(a[i]));
                };
                assertEquals(expect, b[i], t.name() + "[" + i + "]");
            }
        }
        assertEquals(g.config().headDim(), h.config().headDim());
        assertEquals(g.config().kvHeads(), h.config().kvHeads());
        assertEquals(g.config().qkvBias(), h.config().qkvBias());
        assertEquals(g.config().ropeTheta(), h.config().ropeTheta(), g.config().ropeTheta() * 1e-7);
        assertArrayEquals(g.vocab().tokens(), h.vocab().tokens());
        assertArrayEquals(g.vocab().types(), h.vocab().types());
        for (int i = 0; i < g.vocab().size(); i++) {
            // added tokens get the converter's score -1000 (the fixtures already have it for the ChatML specials)
            float expect = i > 2 && g.vocab().types()[i] == 3 ? -1000f : g.vocab().scores()[i];
            assertEquals(expect, h.vocab().scores()[i], "score of " + g.vocab().tokens()[i]);
        }
        assertEquals(g.vocab().addSpacePrefix(), h.vocab().addSpacePrefix());
        assertEquals(g.vocab().chatTemplate(), h.vocab().chatTemplate());
    }
}
