package internlm.engine;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import internlm.engine.generate.GenerationParams;
import internlm.engine.generate.GenerationResult;
import internlm.engine.generate.Session;
import internlm.engine.sampling.SamplerConfig;
import internlm.loader.ModelConfig;
import internlm.loader.ModelConfig.Family;
import internlm.loader.ModelConfig.RopeScaling;
import internlm.loader.Progress;
import internlm.loader.gguf.GgmlType;
import internlm.loader.hf.HfToGguf;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Dynamic NTK RoPE (spec §6): the rescaled base for given lengths is exactly the spec's formula (and its worked
 * values), and decoding past the trained window stays finite and matches the independent float64 reference on the
 * CPU backend — from the HF directory and from its GGUF conversion (which keeps the factor in an extra key).
 */
class DynamicNtkTest {
    @TempDir
    Path tmp;

    private static ModelConfig config(double theta, RopeScaling s, int window, int headDim) {
        return new ModelConfig(Family.INTERNLM2, "internlm2", "t", 4096, 32, 32, 8, headDim, 14336, 92544, window, theta, s, 1e-5f, false, false, false);
    }

    @Test
    void rescaledBaseIsTheSpecFormula() {
        RopeScaling dyn2 = new RopeScaling(RopeScaling.Type.DYNAMIC, 2.0);
        ModelConfig v25 = config(1e6, dyn2, 32768, 128);
        // the spec's worked values (§6.1), to the digits it gives
        assertEquals(3.05e6, Session.ropeBase(v25, 65_536), 0.005e6);
        assertEquals(1.57e7, Session.ropeBase(v25, 262_144), 0.005e7);
        ModelConfig v3 = config(5e7, new RopeScaling(RopeScaling.Type.DYNAMIC, 6.0), 32768, 128);
        assertEquals(3.61e8, Session.ropeBase(v3, 65_536), 0.005e8);
        assertEquals(9.95e8, Session.ropeBase(v3, 131_072), 0.005e8);
        // exactly the formula, for every length around and beyond the window
        for (ModelConfig c : List.of(v25, v3, config(1e4, new RopeScaling(RopeScaling.Type.DYNAMIC, 1.0), 2048, 128),
                config(1e6, dyn2, 16, 16))) {
            for (int len : new int[] {1, 15, 16, 17, 100, 2047, 2048, 2049, 4096, 32767, 32768, 32769, 65536, 1_000_000}) {
                double expect = DynamicNtkCheck.specBase(c.ropeTheta(), c.ropeScaling().factor(), c.contextLength(), c.headDim(), len);
                assertEquals(expect, Session.ropeBase(c, len), Math.ulp(expect) * 4, c.ropeScaling() + " window " + c.contextLength() + " length " + len);
            }
        }
        // within the window: the plain base; factor 1 is not a no-op past it (alpha = L/M)
        assertEquals(1e6, Session.ropeBase(v25, 32768));
        ModelConfig f1 = config(1e4, new RopeScaling(RopeScaling.Type.DYNAMIC, 1.0), 2048, 128);
        assertEquals(1e4 * Math.pow(2, 128 / 126.0), Session.ropeBase(f1, 4096), 1e-6);
        // no scaling, or linear: never rescaled
        assertEquals(1e6, Session.ropeBase(config(1e6, RopeScaling.NONE, 32768, 128), 1_000_000));
        assertEquals(1e6, Session.ropeBase(config(1e6, new RopeScaling(RopeScaling.Type.LINEAR, 4), 32768, 128), 1_000_000));
    }

    @Test
    void decodePastTheWindowMatchesTheReferenceOnTheCpu() throws Exception {
        Path dir = DynamicNtkCheck.writeModel(tmp);
        Engine.Options exact = new Engine.Options("cpu", 2, null, false);
        try (Engine e = Engine.load(dir, exact, Progress.NONE)) {
            assertEquals(DynamicNtkCheck.WINDOW, e.config().contextLength());
            assertEquals(new RopeScaling(RopeScaling.Type.DYNAMIC, DynamicNtkCheck.FACTOR), e.config().ropeScaling());
            // a 20-token prompt (past the window of 16 already) and 30 more tokens, up to 3x the window
            double worst = DynamicNtkCheck.run(e.model(), e.backend(), 20, 30, 2e-4);
            assertTrue(worst < 1e-3, "largest difference " + worst);

            // the rescaling matters: the plain base gives clearly different logits at length 20
            ReferenceForward plain = new ReferenceForward(e.model(), 64);
            ReferenceForward scaled = new ReferenceForward(e.model(), 64);
            double[] p = null, s = null;
            double b20 = DynamicNtkCheck.specBase(1e6, 2.0, 16, 16, 20);
            for (int i = 0; i < 20; i++) {
                p = plain.forward(3 + (i * 37) % 256, i, 1e6);
                s = scaled.forward(3 + (i * 37) % 256, i, b20);
            }
            double d = 0;
            for (int i = 0; i < p.length; i++) {
                d = Math.max(d, Math.abs(p[i] - s[i]));
            }
            assertTrue(d > 1e-2, "dynamic NTK changes the logits: " + d);
        }
        // the GGUF conversion keeps the factor (internlm.rope.dynamic_factor) and runs identically
        Path gguf = tmp.resolve("dyn.gguf");
        HfToGguf.convert(dir, gguf, GgmlType.F32, Progress.NONE);
        try (Engine g = Engine.load(gguf, exact, Progress.NONE)) {
            assertEquals(RopeScaling.Type.DYNAMIC, g.config().ropeScaling().type());
            DynamicNtkCheck.run(g.model(), g.backend(), 20, 30, 2e-4);
        }
    }

    @Test
    void contextBeyondTheWindowOnlyWithDynamicScaling() throws Exception {
        Path dir = DynamicNtkCheck.writeModel(tmp);
        try (Engine e = Engine.load(dir, Engine.Options.cpu(), Progress.NONE);
             Session s = e.newSession(100_000)) { // the KV cache grows by doubling, nothing of this size is allocated
            GenerationParams greedy = new GenerationParams(60, SamplerConfig.GREEDY, true, List.of(), 0, false);
            GenerationResult r = s.generate(new int[] {1, 300, 301}, greedy, (t, text) -> true);
            assertEquals(60, r.generated().length);
            assertEquals(63, s.length());
        }
        ObjectMapper om = new ObjectMapper();
        Path cfg = dir.resolve("config.json");
        ObjectNode o = (ObjectNode) om.readTree(cfg.toFile());
        o.putNull("rope_scaling");
        om.writeValue(cfg.toFile(), o);
        try (Engine e = Engine.load(dir, Engine.Options.cpu(), Progress.NONE)) {
            assertEquals(16, e.maxContext());
            IllegalArgumentException x = assertThrows(IllegalArgumentException.class, () -> e.newSession(17));
            assertTrue(x.getMessage().contains("exceeds the model's trained window of 16 tokens"), x.getMessage());
            try (Session s = e.newSession(16)) {
                assertThrows(IllegalArgumentException.class, () -> s.prefill(new int[17]));
            }
        }
    }
}
