package internlm.engine;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import internlm.engine.generate.Session;
import internlm.engine.sampling.Sampler;
import internlm.engine.tokenizer.Tokenizer;
import internlm.loader.Progress;
import internlm.loader.TensorData;
import internlm.loader.gguf.GgmlType;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Every fixture against llama.cpp: tokenization (three texts, with and without special-token parsing, with BOS, and
 * both detokenizations) must be identical; the CPU backend's greedy ids must equal llama.cpp's up to the first step
 * whose top-1/top-2 gap is below twice the logit tolerance, and the logits of llama.cpp's top-5 ids must agree
 * within the tolerance of the model's weight type.
 *
 * <p>Tolerances (absolute, on logits of magnitude ~10-20) and why:
 * <ul>
 *   <li>F32: 1e-3 — same math in float32; only summation order differs (observed ≤ 2e-5).</li>
 *   <li>F16/BF16: 2e-2 — llama.cpp multiplies in F32 on AMX/F16C machines but rounds activations to F16 on its
 *       generic path; either way ≤ ~1e-2 after a few layers (observed ≤ 8e-3).</li>
 *   <li>Q8_0 and Q4_0: 0.3 — we round activations to Q8_0 exactly as ggml-cpu's x86 quantizer does (d = max/127
 *       as f16, x·127/max rounded half to even), so most small models agree to ~1e-5 (observed ≤ 2e-6). The same
 *       rounding magnifies last-bit differences of summation order (ours vs llama.cpp's scalar/AVX2/VNNI/AMX
 *       kernels): an activation on a rounding boundary moves one Q8_0 step, and the logits by ~0.1 (observed 0.06 and
 *       0.14 on three shipped fixtures, ~0.2 on a 1.8B-shaped model). The kernels themselves are checked tightly
 *       against an independent reference in ReferenceForwardTest.</li>
 * </ul>
 * A model's tolerance is the largest over the types of its matrices. The errors behind it are relative (F16 rounding
 * of activations, one Q8_0 step of an activation that sits on a rounding boundary), so at a step whose largest logit
 * exceeds 20 in magnitude (models made with a large lm_head gain) the tolerance grows in proportion, tolerance ·
 * |top-1 logit| / 20 (observed at logits ~52–66: F16 0.025, Q8_0 0.33).
 */
class FixtureConformanceTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    static double tolerance(GgmlType t) {
        return switch (t) {
            case F32 -> 1e-3;
            case F16, BF16 -> 2e-2;
            case Q8_0 -> 0.3;
            case Q4_0 -> 0.3;
            default -> throw new IllegalArgumentException(t.name());
        };
    }

    static double tolerance(Engine e) {
        double tol = 0;
        for (TensorData t : e.model().tensors().values()) {
            if (t.dims().length == 2) {
                tol = Math.max(tol, tolerance(t.type()));
            }
        }
        return tol;
    }

    static int[] ints(JsonNode n) {
        int[] r = new int[n.size()];
        for (int i = 0; i < r.length; i++) {
            r[i] = n.get(i).asInt();
        }
        return r;
    }

    @TestFactory
    List<DynamicTest> everyFixture() throws Exception {
        List<DynamicTest> tests = new ArrayList<>();
        for (Path gguf : Fixtures.all()) {
            String name = gguf.getFileName().toString();
            tests.add(DynamicTest.dynamicTest(name + " tokenization", () -> tokenization(gguf)));
            tests.add(DynamicTest.dynamicTest(name + " greedy decode", () -> decode(gguf, false)));
            tests.add(DynamicTest.dynamicTest(name + " greedy decode, f16 KV cache", () -> decode(gguf, true)));
        }
        assertTrue(tests.size() >= 33, "fixtures found: " + tests.size() / 3);
        return tests;
    }

    private void tokenization(Path gguf) throws Exception {
        JsonNode exp = JSON.readTree(Fixtures.expected(gguf).toFile());
        try (var m = Engine.loadModel(gguf, Progress.NONE)) {
            Tokenizer tok = new Tokenizer(m.vocab());
            for (JsonNode t : exp.get("tokenize")) {
                String text = t.get("text").asText();
                String what = " for " + JSON.writeValueAsString(text);
                assertArrayEquals(ints(t.get("no_special")), tok.encode(text, false, false), "ids without special parsing" + what);
                assertArrayEquals(ints(t.get("special")), tok.encode(text, false, true), "ids with special parsing" + what);
                assertArrayEquals(ints(t.get("with_bos")), tok.encode(text, true, true), "ids with BOS" + what);
                int[] special = ints(t.get("special"));
                assertEquals(t.get("detok").asText(), tok.decode(special, false), "detokenization" + what);
                assertEquals(t.get("detok_special").asText(), tok.decode(special, true), "detokenization with specials" + what);
                for (int i = 0; i < special.length; i++) {
                    assertEquals(t.get("special_pieces").get(i).asText(), tok.piece(special[i]), "piece " + i + what);
                }
            }
        }
    }

    /**
     * Greedy decode against llama.cpp's (run with an f32 cache). With our cache in half precision ({@code kvF16}) the
     * cache's rounding counts like an F16 matrix's: the tolerance is at least F16's.
     */
    private void decode(Path gguf, boolean kvF16) throws Exception {
        JsonNode d = JSON.readTree(Fixtures.expected(gguf).toFile()).get("decode");
        try (Engine e = Engine.load(gguf, new Engine.Options("cpu", 2, null, true, 0, kvF16, false, null), Progress.NONE);
             Session s = e.newSession(256)) {
            double tol = kvF16 ? Math.max(tolerance(e), tolerance(GgmlType.F16)) : tolerance(e);
            float[] logits = s.prefill(ints(d.get("prompt")));
            JsonNode steps = d.get("steps");
            int comparedIds = 0;
            double maxDev = 0;
            boolean tie = false;
            for (int i = 0; i < steps.size(); i++) {
                JsonNode st = steps.get(i);
                double stepTol = tol * Math.max(1, Math.abs(st.get("top").get(0).get("logit").asDouble()) / 20);
                for (JsonNode top : st.get("top")) {
                    int id = top.get("id").asInt();
                    maxDev = Math.max(maxDev, Math.abs(top.get("logit").asDouble() - logits[id]));
                    assertEquals(top.get("logit").asDouble(), logits[id], stepTol, "step " + i + " logit of token " + id);
                }
                if (!tie && st.get("gap12").asDouble() < 2 * stepTol) {
                    tie = true; // from here llama.cpp's own choice depends on rounding: stop comparing ids
                }
                if (!tie) {
                    assertEquals(st.get("token").asInt(), Sampler.argmax(logits), "greedy id at step " + i + " (gap12 " + st.get("gap12").asDouble() + ")");
                    comparedIds++;
                }
                logits = s.append(st.get("token").asInt()); // follow llama.cpp's sequence so later steps stay comparable
            }
            // with Q4_0 on AMX machines the first near-tie can come at step 0; the Q4_0 kernels are checked tightly
            // against an independent reference in ReferenceForwardTest
            assertTrue(comparedIds >= 1 || tol >= 0.3, "no step compared");
            System.out.println(gguf.getFileName() + (kvF16 ? " (f16 KV)" : "") + ": greedy ids identical for " + comparedIds + "/" + steps.size() + " steps (tolerance " + tol + ", largest logit difference " + maxDev + ")");
        }
    }

    @org.junit.jupiter.api.Test
    void embeddedDemoModelIsTheQ8Fixture() throws Exception {
        // the CLI's built-in model is a copy of this fixture; keep them in step
        Path demo = Path.of("../cli/src/main/resources/models/demo-internlm2-tiny-q8_0.gguf");
        if (java.nio.file.Files.exists(demo)) {
            assertEquals(-1, java.nio.file.Files.mismatch(demo, Fixtures.fixture("internlm2-tiny-q8_0.gguf")));
        }
        assertEquals(0, Arrays.asList(1, 2).indexOf(1));
    }
}
