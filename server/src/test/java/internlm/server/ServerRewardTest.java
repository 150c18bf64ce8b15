package internlm.server;

import com.fasterxml.jackson.databind.JsonNode;
import internlm.engine.Engine;
import internlm.engine.chat.ChatMessage;
import internlm.engine.reward.RewardScorer;
import internlm.loader.Progress;
import internlm.loader.gguf.GgmlType;
import internlm.loader.synthetic.SyntheticGguf;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/** POST /v1/rewards on a synthetic InternLM2-Reward model (random weights, reward token, v_head). */
public class ServerRewardTest {
    static Path dir;
    static Engine engine;
    static OpenAiServer server;
    static Http http;

    /** A small reward model file (also used by the CLI's score test). */
    public static Path writeRewardModel(Path dir) throws Exception {
        SyntheticGguf g = new SyntheticGguf(SyntheticGguf.Spec.internlm2(64, 2, 4, 2, 96, GgmlType.F32, 3));
        g.extraToken(RewardScorer.REWARD_TOKEN, 5);
        float[] head = new float[64];
        SplittableRandom r = new SplittableRandom(9);
        for (int i = 0; i < head.length; i++) {
            head[i] = (float) (r.nextDouble() * 2 - 1);
        }
        g.extraTensor(new SyntheticGguf.Tensor("v_head.weight", GgmlType.F32, new long[] {64, 1}, head, null));
        Path p = dir.resolve("tiny-reward.gguf");
        g.write(p);
        return p;
    }

    @BeforeAll
    static void start() throws Exception {
        dir = Files.createTempDirectory("reward");
        engine = Engine.load(writeRewardModel(dir), Engine.Options.cpu(), Progress.NONE);
        server = new OpenAiServer(engine, new ServerConfig("127.0.0.1", 0, 1, 4, 512, "tiny-reward", false, false, 1 << 20, 2000), null);
        server.start();
        http = new Http(server.port(), null);
    }

    @AfterAll
    static void stop() throws Exception {
        server.close();
        engine.close();
        try (var s = Files.list(dir)) {
            for (Path p : s.toList()) {
                Files.delete(p);
            }
        }
        Files.delete(dir);
    }

    @Test
    void scoresAreTheEnginesScores() throws Exception {
        RewardScorer scorer = new RewardScorer(engine);
        String[] answers = {"4", "5, obviously"};
        for (String a : answers) {
            String body = "{\"model\": \"tiny-reward\", \"messages\": [{\"role\": \"user\", \"content\": \"What is 2+2?\"}, {\"role\": \"assistant\", \"content\": \"" + a + "\"}]}";
            Http.Reply r = http.post("/v1/rewards", body);
            assertEquals(200, r.status(), r.body());
            JsonNode j = r.json();
            assertEquals("reward", j.get("object").asText());
            List<ChatMessage> conv = List.of(ChatMessage.user("What is 2+2?"), ChatMessage.assistant(a));
            assertEquals(scorer.score(conv), j.get("score").asDouble(), 1e-5);
            assertEquals(scorer.encode(conv).length, j.get("usage").get("prompt_tokens").asInt());
        }
    }

    @Test
    void aRewardModelDoesNotChat() throws Exception {
        Http.Reply r = http.post("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}");
        assertEquals(400, r.status());
        assertEquals("reward_model", r.json().get("error").get("code").asText());
        r = http.post("/v1/rewards", "{\"messages\": []}");
        assertEquals(400, r.status());
        assertEquals("messages", r.json().get("error").get("param").asText());
    }
}
