package internlm.engine.generate;

import internlm.engine.Engine;
import internlm.engine.Fixtures;
import internlm.engine.sampling.SamplerConfig;
import internlm.loader.ModelConfig;
import internlm.loader.Progress;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class SessionTest {
    static Engine engine;

    @BeforeAll
    static void load() {
        engine = Engine.load(Fixtures.fixture("internlm2-tiny-q8_0.gguf"), Engine.Options.cpu(), Progress.NONE);
    }

    @AfterAll
    static void close() {
        engine.close();
    }

    @Test
    void promptLongerThanTheContextIsAClearError() {
        try (Session s = engine.newSession(16)) {
            int[] prompt = new int[20];
            java.util.Arrays.fill(prompt, 300);
            ContextOverflowException e = assertThrows(ContextOverflowException.class, () -> s.generate(prompt, GenerationParams.greedy(4), TokenSink.NONE));
            assertTrue(e.getMessage().contains("20 tokens do not fit in the context of 16 tokens"), e.getMessage());
        }
        assertThrows(IllegalArgumentException.class, () -> engine.newSession(engine.config().contextLength() + 1));
    }

    @Test
    void generationStopsAtTheContextEnd() {
        try (Session s = engine.newSession(12)) {
            GenerationResult r = s.generate(new int[] {1, 300, 301}, new GenerationParams(100, SamplerConfig.GREEDY, true, List.of(), 0, false), TokenSink.NONE);
            assertEquals("length", r.finishReason());
            assertEquals(12, s.length());
        }
    }

    @Test
    void reusingACachedPrefixGivesTheSameLogits() {
        int[] a = {1, 300, 301, 302, 303}, b = {1, 300, 301, 310, 311, 312};
        float[] fresh;
        try (Session s = engine.newSession(64)) {
            fresh = s.prefill(b).clone();
        }
        try (Session s = engine.newSession(64)) {
            s.prefill(a);
            float[] reused = s.prefill(b);
            assertArrayEquals(fresh, reused, 1e-5f);
        }
    }

    @Test
    void stopTokensAreFoundByText() {
        int imEnd = engine.tokenizer().tokenId("<|im_end|>");
        int eos = engine.tokenizer().tokenId("</s>");
        assertTrue(engine.isStop(imEnd));
        assertTrue(engine.isStop(eos));
        assertFalse(engine.isStop(300));
    }

    @Test
    void sameSeedSameText() {
        SamplerConfig sc = new SamplerConfig(0.9f, 40, 0.95f, 0.05f, 1.1f, 0, 0, 64, 1234);
        String a = text(sc);
        assertEquals(a, text(sc), "same seed, same text");
        // each parameter, changed alone, must change the text (so none is silently ignored)
        assertNotEquals(a, text(sc.withSeed(4321)), "seed");
        assertNotEquals(a, text(new SamplerConfig(3f, 0, 1f, 0f, 1.1f, 0, 0, 64, 1234)), "temperature");
        SamplerConfig greedy = new SamplerConfig(0f, 0, 1f, 0f, 1.1f, 0, 0, 64, 1234);
        String g = text(greedy);
        SamplerConfig open = new SamplerConfig(0.9f, 0, 1f, 0f, 1.1f, 0, 0, 64, 1234);
        assertNotEquals(g, text(open), "sampling differs from greedy");
        // truncations that leave one candidate make sampling greedy: if the stage were skipped, it would not be
        assertEquals(g, text(new SamplerConfig(0.9f, 1, 1f, 0f, 1.1f, 0, 0, 64, 1234)), "top-k");
        assertEquals(g, text(new SamplerConfig(0.9f, 0, 1e-6f, 0f, 1.1f, 0, 0, 64, 1234)), "top-p");
        assertEquals(g, text(new SamplerConfig(0.9f, 0, 1f, 1f, 1.1f, 0, 0, 64, 1234)), "min-p");
        // penalties move greedy decoding off its repetitions
        String plain = text(new SamplerConfig(0f, 0, 1f, 0f, 1f, 0, 0, 64, 1234));
        assertNotEquals(plain, g, "repeat penalty");
        assertNotEquals(plain, text(new SamplerConfig(0f, 0, 1f, 0f, 1f, 2f, 0, 64, 1234)), "frequency penalty");
        assertNotEquals(plain, text(new SamplerConfig(0f, 0, 1f, 0f, 1f, 0, 2f, 64, 1234)), "presence penalty");
    }

    private String text(SamplerConfig sc) {
        try (Session s = engine.newSession(64)) {
            return s.generate(new int[] {1, 300}, new GenerationParams(20, sc, true, List.of(), 0, false), TokenSink.NONE).text();
        }
    }

    @Test
    void dynamicNtkBaseFollowsTheSpecFormula() {
        ModelConfig c = new ModelConfig(ModelConfig.Family.INTERNLM2, "internlm2", "x", 4096, 1, 32, 8, 128, 14336, 92544, 32768,
                1e6, new ModelConfig.RopeScaling(ModelConfig.RopeScaling.Type.DYNAMIC, 2.0), 1e-5f, false, false, false);
        assertEquals(1e6, Session.ropeBase(c, 32768));
        // spec §6.1 worked values: InternLM2.5-7B, L = 65,536 → 3.05e6; L = 262,144 → 1.57e7
        assertEquals(3.05e6, Session.ropeBase(c, 65536), 0.01e6);
        assertEquals(1.57e7, Session.ropeBase(c, 262144), 0.01e7);
    }
}
