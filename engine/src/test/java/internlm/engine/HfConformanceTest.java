package internlm.engine;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import internlm.engine.generate.Session;
import internlm.engine.sampling.Sampler;
import internlm.engine.tokenizer.Tokenizer;
import internlm.loader.LoadedModel;
import internlm.loader.Progress;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The synthetic HF directories of testdata/hf (make-hf.mjs: InternLM2 bf16 in two shards, InternLM3 f32, InternLM v1
 * bf16 with q/k/v/o biases), loaded as directories: tokenization must be identical to llama.cpp's on the reference
 * GGUF beside each (NAME.expected.json), their greedy ids must be llama.cpp's, and their logits must equal — to
 * float rounding — what the engine computes from the reference GGUF itself (the "GGUF fixture path").
 */
class HfConformanceTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    static Path hf(String name) {
        return Fixtures.testdata().resolve("hf").resolve(name);
    }

    @ParameterizedTest
    @ValueSource(strings = {"internlm2-tiny-bf16-2shards", "internlm3-small-f32", "internlm-v1-tiny-bias-bf16"})
    void tokenizationIsLlamaCpps(String name) throws Exception {
        JsonNode exp = JSON.readTree(hf(name + ".expected.json").toFile());
        try (LoadedModel m = Engine.loadModel(hf(name), Progress.NONE)) {
            Tokenizer tok = new Tokenizer(m.vocab());
            for (JsonNode t : exp.get("tokenize")) {
                String text = t.get("text").asText();
                String what = " for " + JSON.writeValueAsString(text);
                int[] special = FixtureConformanceTest.ints(t.get("special"));
                assertArrayEquals(FixtureConformanceTest.ints(t.get("no_special")), tok.encode(text, false, false), "ids without special parsing" + what);
                assertArrayEquals(special, tok.encode(text, false, true), "ids with special parsing" + what);
                assertArrayEquals(FixtureConformanceTest.ints(t.get("with_bos")), tok.encode(text, true, true), "ids with BOS" + what);
                assertEquals(t.get("detok").asText(), tok.decode(special, false), "detokenization" + what);
                assertEquals(t.get("detok_special").asText(), tok.decode(special, true), "detokenization with specials" + what);
                for (int i = 0; i < special.length; i++) {
                    assertEquals(t.get("special_pieces").get(i).asText(), tok.piece(special[i]), "piece " + i + what);
                }
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"internlm2-tiny-bf16-2shards", "internlm3-small-f32", "internlm-v1-tiny-bias-bf16"})
    void greedyDecodeIsLlamaCppsAndLogitsEqualTheGgufPath(String name) throws Exception {
        JsonNode d = JSON.readTree(hf(name + ".expected.json").toFile()).get("decode");
        Engine.Options cpu = new Engine.Options("cpu", 2, null, true);
        try (Engine dir = Engine.load(hf(name), cpu, Progress.NONE);
             Engine gguf = Engine.load(hf(name + ".gguf"), cpu, Progress.NONE);
             Session a = dir.newSession(64);
             Session b = gguf.newSession(64)) {
            double tol = 1e-3; // F32 math on identical values (BF16 rows are exact in F32)
            float[] la = a.prefill(FixtureConformanceTest.ints(d.get("prompt")));
            float[] lb = b.prefill(FixtureConformanceTest.ints(d.get("prompt")));
            JsonNode steps = d.get("steps");
            int compared = 0;
            boolean tie = false;
            for (int i = 0; i < steps.size(); i++) {
                JsonNode st = steps.get(i);
                for (int v = 0; v < la.length; v++) {
                    assertEquals(lb[v], la[v], 1e-4, "step " + i + ": HF directory vs GGUF logit " + v);
                }
                for (JsonNode top : st.get("top")) {
                    assertEquals(top.get("logit").asDouble(), la[top.get("id").asInt()], tol, "step " + i + " llama.cpp logit of " + top.get("id"));
                }
                tie |= st.get("gap12").asDouble() < 2 * tol;
                if (!tie) {
                    assertEquals(st.get("token").asInt(), Sampler.argmax(la), "greedy id at step " + i);
                    compared++;
                }
                la = a.append(st.get("token").asInt());
                lb = b.append(st.get("token").asInt());
            }
            assertTrue(compared >= 8, "compared " + compared + " steps");
            assertTrue(dir.isStop(dir.tokenizer().tokenId("<|im_end|>")) && dir.isStop(2), "stop ids from generation_config.json");
        }
    }
}
