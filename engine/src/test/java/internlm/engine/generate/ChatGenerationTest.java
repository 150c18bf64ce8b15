package internlm.engine.generate;

import internlm.engine.Engine;
import internlm.engine.Fixtures;
import internlm.engine.chat.ChatMessage;
import internlm.engine.chat.ChatTemplate;
import internlm.engine.sampling.SamplerConfig;
import internlm.engine.testing.ScriptedBackend;
import internlm.engine.tokenizer.Tokenizer;
import internlm.loader.Progress;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.*;

/** Stop handling, kept action tokens and log-probabilities of Session.generate. */
class ChatGenerationTest {
    static Engine scripted(Function<String, String> reply) {
        return ScriptedBackend.engine(Fixtures.fixture("internlm2-tiny-q8_0.gguf"), ScriptedBackend.chat(reply));
    }

    record Streamed(GenerationResult result, String text, List<Integer> tokens) {}

    static Streamed run(Engine e, List<ChatMessage> msgs, GenerationParams p) {
        ChatTemplate t = new ChatTemplate(e.tokenizer());
        StringBuilder streamed = new StringBuilder();
        List<Integer> toks = new ArrayList<>();
        try (Session s = e.newSession(512)) {
            GenerationResult r = s.generate(t.encode(msgs, true), p, (tok, text) -> {
                streamed.append(text);
                toks.add(tok);
                return true;
            });
            return new Streamed(r, streamed.toString(), toks);
        }
    }

    @Test
    void stopStringSpanningTokensEndsGenerationAndNeverReachesTheSink() {
        String reply = "Hello world, STOP here and more";
        try (Engine e = scripted(prompt -> reply)) {
            Tokenizer tok = e.tokenizer();
            // the stop string really spans several tokens of the reply
            int[] ids = tok.encode(reply, false, true);
            StringBuilder acc = new StringBuilder();
            int startTok = -1, endTok = -1;
            for (int i = 0; i < ids.length; i++) {
                int before = acc.length();
                acc.append(tok.decode(new int[] {ids[i]}, false));
                if (startTok < 0 && acc.length() > reply.indexOf("ld, ST")) {
                    startTok = i;
                }
                if (endTok < 0 && acc.length() >= reply.indexOf("ld, ST") + 6) {
                    endTok = i;
                }
                assertTrue(acc.length() > before);
            }
            assertTrue(endTok > startTok, "stop string spans tokens " + startTok + ".." + endTok);

            GenerationParams p = new GenerationParams(100, SamplerConfig.GREEDY, false, List.of("ld, ST", "never"), 0, false);
            Streamed s = run(e, List.of(ChatMessage.user("hi")), p);
            assertEquals("stop", s.result().finishReason());
            assertEquals("Hello wor", s.result().text());
            assertEquals("Hello wor", s.text(), "the sink saw exactly the text before the stop string");
            assertEquals(endTok + 1, s.result().generated().length, "generation ended at the token completing the stop string");
        }
    }

    @Test
    void endOfTurnIsAStopAndIsNotRendered() {
        try (Engine e = scripted(prompt -> "Short.")) {
            Streamed s = run(e, List.of(ChatMessage.user("hi")), new GenerationParams(100, SamplerConfig.GREEDY, false, List.of(), 0, false));
            assertEquals("stop", s.result().finishReason());
            assertEquals("Short.", s.text());
            int last = s.result().generated()[s.result().generated().length - 1];
            assertEquals(e.tokenizer().tokenId("<|im_end|>"), last);
            Streamed cut = run(e, List.of(ChatMessage.user("hi")), new GenerationParams(3, SamplerConfig.GREEDY, false, List.of(), 0, false));
            assertEquals("length", cut.result().finishReason());
            assertEquals(3, cut.result().generated().length);
        }
    }

    @Test
    void actionTokensAreKeptAsTextAndGenerationStopsAfterActionEnd() {
        String call = "<|action_start|><|plugin|>\n{\"name\": \"f\", \"parameters\": {\"x\": 1}}<|action_end|>";
        try (Engine e = scripted(prompt -> "Sure." + call + "after")) {
            ChatTemplate t = new ChatTemplate(e.tokenizer());
            GenerationParams tools = new GenerationParams(200, SamplerConfig.GREEDY, false, List.of(), 0, false,
                    t.actionTokens(), new int[] {t.actionEndToken()});
            Streamed s = run(e, List.of(ChatMessage.user("hi")), tools);
            assertEquals("stop", s.result().finishReason());
            assertEquals("Sure." + call, s.text());
            assertEquals(t.actionEndToken(), s.result().generated()[s.result().generated().length - 1]);
            // without them, control tokens are not text and generation runs to the end of the turn
            Streamed plain = run(e, List.of(ChatMessage.user("hi")), new GenerationParams(200, SamplerConfig.GREEDY, false, List.of(), 0, false));
            assertEquals("Sure.\n{\"name\": \"f\", \"parameters\": {\"x\": 1}}after", plain.text());
        }
    }

    @Test
    void stepsCarryTheModelsLogProbabilities() {
        try (Engine e = Engine.load(Fixtures.fixture("internlm2-tiny-q8_0.gguf"), Engine.Options.cpu(), Progress.NONE)) {
            int[] prompt = new ChatTemplate(e.tokenizer()).encode(List.of(ChatMessage.user("Hello")), true);
            List<GenerationResult.Step> seen = new ArrayList<>();
            List<Integer> order = new ArrayList<>();
            GenerationResult r;
            SamplerConfig sc = new SamplerConfig(0.9f, 40, 0.95f, 0.05f, 1f, 0f, 0f, 64, 7);
            try (Session s = e.newSession(512)) {
                r = s.generate(prompt, new GenerationParams(8, sc, true, List.of(), 4, false), new TokenSink() {
                    @Override
                    public boolean accept(int token, String text) {
                        if (token >= 0) {
                            order.add(token);
                        }
                        return true;
                    }

                    @Override
                    public void step(GenerationResult.Step step) {
                        assertEquals(seen.size(), order.size(), "step() comes before accept()");
                        seen.add(step);
                    }
                });
            }
            assertEquals(r.steps(), seen);
            assertEquals(8, seen.size());
            // recompute each step's distribution independently and compare log-softmax values
            try (Session check = e.newSession(512)) {
                for (int i = 0; i < seen.size(); i++) {
                    int[] seq = java.util.Arrays.copyOf(prompt, prompt.length + i);
                    System.arraycopy(r.generated(), 0, seq, prompt.length, i);
                    float[] l = check.prefill(seq);
                    double max = Double.NEGATIVE_INFINITY, sum = 0;
                    for (float v : l) {
                        max = Math.max(max, v);
                    }
                    for (float v : l) {
                        sum += Math.exp(v - max);
                    }
                    double lse = max + Math.log(sum);
                    GenerationResult.Step st = seen.get(i);
                    assertEquals(r.generated()[i], st.token());
                    assertEquals(l[st.token()] - lse, st.logprob(), 1e-4);
                    assertTrue(st.logprob() <= 0);
                    assertEquals(4, st.top().size());
                    for (int k = 0; k < 4; k++) {
                        assertEquals(l[st.top().get(k).id()] - lse, st.logprob(st.top().get(k).logit()), 1e-4);
                        if (k > 0) {
                            assertTrue(st.top().get(k).logit() <= st.top().get(k - 1).logit());
                        }
                    }
                }
            }
        }
    }
}
