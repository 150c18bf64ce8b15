package internlm.engine.generate;

import internlm.engine.Engine;
import internlm.engine.Fixtures;
import internlm.engine.SamplingBackend;
import internlm.engine.grammar.GrammarSyntax;
import internlm.engine.grammar.TokenConstraint;
import internlm.engine.sampling.SamplerConfig;
import internlm.loader.LoadedModel;
import internlm.loader.Progress;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Generation with a backend that samples where the logits are (SAMPLE rows: only the id comes back) gives the tokens
 * of host sampling for the same seed, alone and through the scheduler; requests that need the logits on the host
 * (a grammar, logprobs) still get them.
 */
class BackendSamplingTest {
    static final SamplerConfig[] CONFIGS = {
        new SamplerConfig(0.8f, 0, 0.8f, 0f, 1f, 0f, 0f, 64, 11),
        new SamplerConfig(0.8f, 40, 0.95f, 0.05f, 1.1f, 0f, 0f, 64, 12),
        new SamplerConfig(1.0f, 40, 0.8f, 0f, 1.005f, 0f, 0f, -1, 13),
        new SamplerConfig(1.3f, 0, 1f, 0f, 1.2f, 0.3f, 0.5f, 16, 14),
        new SamplerConfig(0f, 0, 1f, 0f, 1.3f, 0.1f, 0f, 8, 15),
    };

    @Test
    void sampledRowsGiveTheTokensOfHostSampling() throws Exception {
        LoadedModel m = Engine.loadModel(Fixtures.fixture("internlm2-tiny-q8_0.gguf"), Progress.NONE);
        SamplingBackend backend = new SamplingBackend(Engine.createBackend(m, Engine.Options.cpu(), Progress.NONE));
        try (Engine host = Engine.load(Fixtures.fixture("internlm2-tiny-q8_0.gguf"), Engine.Options.cpu(), Progress.NONE);
             Engine device = Engine.create(m, backend)) {
            int[] prompt = {1, 300, 301, 302, 303, 304};
            for (SamplerConfig c : CONFIGS) {
                GenerationParams p = new GenerationParams(40, c, true, List.of(), 0, false);
                GenerationResult a, b;
                try (Session s = host.newSession(128)) {
                    a = s.generate(prompt, p, TokenSink.NONE);
                }
                int before = backend.sampleRows.get();
                try (Session s = device.newSession(128)) {
                    b = s.generate(prompt, p, TokenSink.NONE);
                }
                assertArrayEquals(a.generated(), b.generated(), c.toString());
                assertEquals(40, backend.sampleRows.get() - before, "every token sampled by the backend: " + c);
            }
            // several generations in one batch, through the scheduler (the server's path), prompts in chunks
            try (Scheduler sched = new Scheduler(device.backend(), 4)) {
                Scheduler.Running[] runs = new Scheduler.Running[CONFIGS.length];
                Session[] sessions = new Session[CONFIGS.length];
                for (int i = 0; i < CONFIGS.length; i++) {
                    sessions[i] = device.newSession(128);
                    runs[i] = sched.submit(sessions[i], prompt, new GenerationParams(24, CONFIGS[i], true, List.of(), 0, false));
                }
                for (int i = 0; i < CONFIGS.length; i++) {
                    GenerationResult r = runs[i].deliver(TokenSink.NONE, () -> { });
                    sessions[i].close();
                    try (Session s = host.newSession(128)) {
                        assertArrayEquals(s.generate(prompt, new GenerationParams(24, CONFIGS[i], true, List.of(), 0, false), TokenSink.NONE).generated(),
                                r.generated(), "scheduled " + CONFIGS[i]);
                    }
                }
            }
            // logprobs and grammars need the logits on the host
            int logits = backend.logitRows.get(), samples = backend.sampleRows.get();
            try (Session s = device.newSession(128)) {
                s.generate(prompt, new GenerationParams(5, CONFIGS[0], true, List.of(), 3, false), TokenSink.NONE);
                s.generate(prompt, new GenerationParams(5, CONFIGS[0], true, List.of(), 0, false)
                        .withConstraint(TokenConstraint.of(GrammarSyntax.parse("root ::= [a-z]+"), device.tokenizer(), "words")), TokenSink.NONE);
            }
            assertEquals(samples, backend.sampleRows.get());
            assertEquals(logits + 10, backend.logitRows.get());
        }
    }
}
