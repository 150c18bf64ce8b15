package internlm.engine.generate;

import internlm.engine.Engine;
import internlm.engine.Fixtures;
import internlm.engine.model.Backend;
import internlm.engine.model.Batch;
import internlm.engine.sampling.SamplerConfig;
import internlm.engine.testing.ForwardingBackend;
import internlm.engine.testing.ScriptedBackend;
import internlm.loader.Progress;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.*;

/** Continuous batching: generations run together give what each gives alone, in shared forward passes. */
class SchedulerTest {
    private static final TokenSink NONE = (t, text) -> true;

    private static int[] prompt(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int[] p = new int[n];
        for (int i = 0; i < n; i++) {
            p[i] = 3 + r.nextInt(250);
        }
        return p;
    }

    private static GenerationParams params(int i) {
        // greedy for some, seeded sampling with penalties for others, log-probabilities for one
        SamplerConfig s = i % 2 == 0 ? SamplerConfig.GREEDY : new SamplerConfig(0.9f, 40, 0.95f, 0.05f, 1.1f, 0.1f, 0.1f, 64, 1000L + i);
        return new GenerationParams(24 + 5 * i, s, true, List.of(), i == 1 ? 3 : 0, false);
    }

    @Test
    void generationsTogetherGiveWhatEachGivesAlone() throws Exception {
        try (Engine e = Engine.load(Fixtures.fixture("internlm2-d256-l2-h4-kv2-f512-v1000-s3-q8_0.gguf"), new Engine.Options("cpu", 2, null, true), Progress.NONE)) {
            int n = 5;
            int[][] prompts = new int[n][];
            List<GenerationResult> alone = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                prompts[i] = prompt(3 + 17 * i, i);
                try (Session s = e.newSession(256)) {
                    alone.add(s.generate(prompts[i], params(i), NONE));
                }
            }
            List<Session> sessions = new ArrayList<>();
            try (Scheduler sch = new Scheduler(e.backend(), 16)) {
                List<Scheduler.Running> runs = new ArrayList<>();
                for (int i = 0; i < n; i++) {
                    Session s = e.newSession(256);
                    sessions.add(s);
                    runs.add(sch.submit(s, prompts[i], params(i)));
                }
                for (int i = 0; i < n; i++) {
                    List<Integer> streamed = new ArrayList<>();
                    GenerationResult r = runs.get(i).deliver((t, text) -> {
                        if (t >= 0) {
                            streamed.add(t);
                        }
                        return true;
                    }, () -> { });
                    assertArrayEquals(alone.get(i).generated(), r.generated(), "generation " + i);
                    assertEquals(alone.get(i).text(), r.text());
                    assertEquals(r.generated().length, streamed.size(), "every token streamed to the submitting thread");
                    for (int k = 0; k < r.steps().size(); k++) {
                        // batch invariance: the same log-probabilities, bit for bit
                        assertEquals(alone.get(i).steps().get(k).logit(), r.steps().get(k).logit(), 0f);
                    }
                }
                assertTrue(sch.widestBatch() > 1, "rows of several generations shared a forward pass");
                assertTrue(sch.widestBatch() <= 16, "at most the budget per step while only prompts ran: " + sch.widestBatch());
                int tokens = 0;
                for (GenerationResult r : alone) {
                    tokens += r.generated().length + r.prompt().length;
                }
                assertTrue(sch.steps() < tokens / 2, sch.steps() + " steps for " + tokens + " rows");
            } finally {
                sessions.forEach(Session::close);
            }
        }
    }

    @Test
    void decodeRowsFirstThenPromptChunksWithinTheBudget() throws Exception {
        internlm.loader.LoadedModel m = Engine.loadModel(Fixtures.fixture("internlm2-d256-l2-h4-kv2-f512-v1000-s3-q8_0.gguf"), Progress.NONE);
        internlm.loader.ModelConfig c = m.config();
        internlm.engine.tokenizer.Tokenizer tok = new internlm.engine.tokenizer.Tokenizer(m.vocab());
        ScriptedBackend b = new ScriptedBackend(c.vocabSize(), c.dim(), (t, len) -> 5);
        List<Integer> widths = new ArrayList<>();
        Backend recording = new Recording(b, widths);
        try (Scheduler sch = new Scheduler(recording, 10);
             Session a = new Session(recording, c, tok, new int[0], 512);
             Session d = new Session(recording, c, tok, new int[0], 512)) {
            GenerationParams p = new GenerationParams(30, SamplerConfig.GREEDY, true, List.of(), 0, false);
            Scheduler.Running ra = sch.submit(a, prompt(4, 1), p);
            Thread.sleep(50); // a is decoding when the long prompt arrives
            Scheduler.Running rd = sch.submit(d, prompt(95, 2), p);
            assertEquals(30, ra.deliver(NONE, () -> { }).generated().length);
            assertEquals(30, rd.deliver(NONE, () -> { }).generated().length);
            // the 95-token prompt went in chunks of at most 10 rows minus the decode row next to it
            for (int w : widths) {
                assertTrue(w <= 10, "step of " + w + " rows");
            }
            assertTrue(widths.stream().filter(w -> w == 10).count() >= 9, "prompt chunks filled the budget: " + widths);
        }
    }

    @Test
    void cancelledAndFailingGenerationsEndWithoutStoppingTheOthers() throws Exception {
        internlm.loader.LoadedModel m = Engine.loadModel(Fixtures.fixture("internlm2-d256-l2-h4-kv2-f512-v1000-s3-q8_0.gguf"), Progress.NONE);
        ScriptedBackend b = new ScriptedBackend(m.config().vocabSize(), m.config().dim(), (t, len) -> 5);
        b.delay(2);
        internlm.engine.tokenizer.Tokenizer tok = new internlm.engine.tokenizer.Tokenizer(m.vocab());
        AtomicInteger failNext = new AtomicInteger();
        Backend flaky = new Recording(b, new ArrayList<>()) {
            @Override
            public void forward(Batch batch) {
                if (failNext.getAndSet(0) == 1) {
                    throw new IllegalStateException("device lost");
                }
                super.forward(batch);
            }
        };
        ExecutorService ex = Executors.newCachedThreadPool();
        try (Scheduler sch = new Scheduler(flaky, 64);
             Session s1 = new Session(flaky, m.config(), tok, new int[0], 4096);
             Session s2 = new Session(flaky, m.config(), tok, new int[0], 4096)) {
            GenerationParams p = new GenerationParams(3000, SamplerConfig.GREEDY, true, List.of(), 0, false);
            Scheduler.Running r1 = sch.submit(s1, prompt(5, 1), p);
            Scheduler.Running r2 = sch.submit(s2, prompt(5, 2), p);
            AtomicInteger seen = new AtomicInteger();
            // the consumer of r1 goes away after 20 tokens: r1 ends at its next step
            Future<GenerationResult> f1 = ex.submit(() -> r1.deliver((t, text) -> seen.incrementAndGet() < 20, () -> { }));
            GenerationResult g1 = f1.get(30, TimeUnit.SECONDS);
            assertEquals("cancelled", g1.finishReason());
            assertTrue(g1.generated().length < 40, "ended soon after: " + g1.generated().length);
            // a failing forward pass ends what was in it with the error; an idle callback that throws cancels too
            failNext.set(1);
            RuntimeException x = assertThrows(RuntimeException.class, () -> r2.deliver(NONE, () -> { }));
            assertEquals("device lost", x.getMessage());
            // the scheduler goes on with new work
            GenerationResult again = sch.submit(s1, prompt(5, 3), new GenerationParams(7, SamplerConfig.GREEDY, true, List.of(), 0, false))
                    .deliver(NONE, () -> { });
            assertEquals(7, again.generated().length);
            b.hold();
            Scheduler.Running r3 = sch.submit(s2, prompt(5, 4), p);
            Future<?> f3 = ex.submit(() -> assertThrows(IOException.class, () -> r3.deliver(NONE, () -> {
                throw new IOException("client gone");
            })));
            Thread.sleep(1500);
            b.release();
            f3.get(30, TimeUnit.SECONDS);
        } finally {
            b.release();
            ex.shutdownNow();
        }
    }

    /** A backend that records the width of every batch. */
    private static class Recording extends ForwardingBackend {
        private final List<Integer> widths;

        Recording(Backend inner, List<Integer> widths) {
            super(inner);
            this.widths = widths;
        }

        @Override
        public void forward(Batch batch) {
            synchronized (widths) {
                widths.add(batch.size());
            }
            inner.forward(batch);
        }
    }
}
