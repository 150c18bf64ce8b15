package internlm.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import internlm.server.ServerRewardTest;
import internlm.engine.Engine;
import internlm.engine.chat.ChatMessage;
import internlm.engine.reward.RewardScorer;
import internlm.loader.Progress;
import internlm.loader.gguf.GgmlType;
import internlm.loader.synthetic.SyntheticGguf;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static internlm.cli.CliTest.fixture;
import static internlm.cli.CliTest.run;
import static org.junit.jupiter.api.Assertions.*;

/** chat (think mode, template recognition, InternLM defaults), score and serve as a user runs them. */
class ChatServeScoreCliTest {
    @TempDir
    Path tmp;

    @Test
    void scorePrintsTheRewardOfEachConversation() throws Exception {
        Path model = ServerRewardTest.writeRewardModel(tmp);
        Path one = tmp.resolve("conv.json");
        Files.writeString(one, "[{\"role\": \"user\", \"content\": \"What is 2+2?\"}, {\"role\": \"assistant\", \"content\": \"4\"}]");
        // the CPU backend on both sides (TornadoVM's hidden state is checked apart)
        CliTest.Result r = run("", "score", "-q", "--backend", "cpu", "-m", model.toString(), "--chat", one.toString());
        assertEquals(0, r.code(), r.err());
        double expected;
        double other;
        try (Engine e = Engine.load(model, Engine.Options.cpu(), Progress.NONE)) {
            RewardScorer s = new RewardScorer(e);
            expected = s.score(List.of(ChatMessage.user("What is 2+2?"), ChatMessage.assistant("4")));
            other = s.score(List.of(ChatMessage.user("What is 2+2?"), ChatMessage.assistant("5")));
        }
        // (2e-5: the Vector API's lane reductions may sum in another order before and after JIT compilation)
        assertEquals(expected, Double.parseDouble(r.out().strip()), 2e-5);

        Path two = tmp.resolve("two.json");
        Files.writeString(two, "[{\"messages\": [{\"role\": \"user\", \"content\": \"What is 2+2?\"}, {\"role\": \"assistant\", \"content\": \"4\"}]},"
                + " [{\"role\": \"user\", \"content\": \"What is 2+2?\"}, {\"role\": \"assistant\", \"content\": \"5\"}]]");
        r = run("", "score", "-q", "--backend", "cpu", "-m", model.toString(), "--chat", two.toString(), "--json");
        assertEquals(0, r.code(), r.err());
        JsonNode j = new ObjectMapper().readTree(r.out());
        assertEquals(expected, j.get("scores").get(0).asDouble(), 2e-5);
        assertEquals(other, j.get("scores").get(1).asDouble(), 2e-5);
        assertEquals(2, j.get("tokens").size());
    }

    @Test
    void scoreErrorsAreOneLine() throws Exception {
        Path conv = tmp.resolve("conv.json");
        Files.writeString(conv, "[{\"role\": \"user\", \"content\": \"hi\"}]");
        CliTest.Result noHead = run("", "score", "-q", "--chat", conv.toString());
        assertTrue(noHead.err().startsWith("error: this model has no reward head (tensor v_head.weight)"), noHead.err());
        Files.writeString(conv, "{not json");
        CliTest.Result notJson = run("", "score", "-q", "--chat", conv.toString());
        assertTrue(notJson.err().startsWith("error: " + conv + ": not valid JSON"), notJson.err());
        Files.writeString(conv, "[{\"role\": \"wizard\", \"content\": \"hi\"}]");
        CliTest.Result badRole = run("", "score", "-q", "--chat", conv.toString());
        assertTrue(badRole.err().contains("messages[0].role 'wizard' is not one of"), badRole.err());
        CliTest.Result missing = run("", "score", "-q", "--chat", tmp.resolve("nope.json").toString());
        assertTrue(missing.err().contains("no such file"), missing.err());
        for (CliTest.Result x : List.of(noHead, notJson, badRole, missing)) {
            assertEquals(1, x.code());
            assertEquals(1, x.err().strip().lines().count(), x.err());
        }
    }

    @Test
    void chatUsesInternLmDefaultsAndThinkMode() {
        CliTest.Result r = run("Hi\n/exit\n", "chat", "-n", "3");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.err().contains("chat format: the model's chat template (ChatML); temperature 0.8, top-p 0.8, top-k 0, repetition penalty 1.0; up to 3 tokens"), r.err());
        r = run("Hi\n/exit\n", "chat", "-m", fixture("internlm3-tiny-q8_0.gguf").toString(), "-n", "2", "--temperature", "0");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.err().contains("temperature 0.0, top-p 0.8, top-k 40, repetition penalty 1.005"), r.err());
        r = run("What is 1+1?\n/exit\n", "chat", "-m", fixture("internlm3-tiny-q8_0.gguf").toString(), "--think", "-n", "2");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.err().contains(", deep-thinking mode;"), r.err());
        r = run("", "chat", "--think");
        assertTrue(r.err().contains("up to 8192 tokens per reply"), r.err());
        r = run("", "chat", "--think", "--system", "x");
        assertEquals(1, r.code());
        assertTrue(r.err().startsWith("error: --think sets the system prompt"), r.err());
    }

    @Test
    void aForeignChatTemplateIsRefusedClearly() throws Exception {
        Path m = tmp.resolve("llama3-template.gguf");
        new SyntheticGguf(SyntheticGguf.Spec.internlm2(64, 1, 4, 2, 64, GgmlType.F32, 1))
                .metadata("tokenizer.chat_template", "{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] + '<|eot_id|>' }}{% endfor %}")
                .write(m);
        CliTest.Result r = run("hi\n", "chat", "-q", "-m", m.toString(), "-n", "2");
        assertEquals(1, r.code());
        assertTrue(r.err().startsWith("error: the model's chat template (tokenizer.chat_template"), r.err());
        assertTrue(r.err().contains("--chat-template internlm"), r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
        r = run("hi\n", "chat", "-q", "-m", m.toString(), "-n", "2", "--chat-template", "internlm");
        assertEquals(0, r.code(), r.err());
        r = run("hi\n", "chat", "-q", "-m", m.toString(), "--chat-template", "jinja");
        assertTrue(r.err().startsWith("error: --chat-template must be auto or internlm"), r.err());
    }

    @Test
    void serveRefusesBadSettingsAndBusyPorts() throws Exception {
        CliTest.Result r = run("", "serve", "-q", "--parallel", "0");
        assertEquals(1, r.code());
        assertTrue(r.err().startsWith("error: --parallel must be between 1 and 256"), r.err());
        try (ServerSocket busy = new ServerSocket(0, 1, java.net.InetAddress.getByName("127.0.0.1"))) {
            r = run("", "serve", "-q", "--port", String.valueOf(busy.getLocalPort()));
            assertEquals(1, r.code());
            // (with TornadoVM installed a note on the slot count comes first)
            String last = r.err().strip().lines().reduce((a, b) -> b).orElse("");
            assertTrue(last.startsWith("error: cannot listen on 127.0.0.1:" + busy.getLocalPort()), r.err());
        }
    }

    @Test
    void serveRefusesUnusableApiKeys() throws Exception {
        java.nio.file.Path empty = tmp.resolve("empty.key");
        java.nio.file.Files.writeString(empty, "\n");
        CliTest.Result r = run("", "serve", "-q", "--api-key-file", empty.toString());
        assertEquals(1, r.code());
        assertTrue(r.err().startsWith("error: the API key file " + empty + " is empty"), r.err());
        r = run("", "serve", "-q", "--api-key-file", tmp.resolve("missing.key").toString());
        assertTrue(r.err().startsWith("error: cannot read the API key file"), r.err());
        r = run("", "serve", "-q", "--api-key", "k", "--api-key-file", empty.toString());
        assertTrue(r.err().startsWith("error: use either --api-key or --api-key-file"), r.err());
        assertTrue(run("", "serve", "--help").out().contains("--cors-origin"));
    }

    @Test
    void helpForTheNewCommands() {
        for (String c : new String[] {"serve", "score", "chat"}) {
            CliTest.Result r = run("", c, "--help");
            assertEquals(0, r.code());
            assertTrue(r.out().contains("Usage: internlm " + c), r.out());
        }
        assertTrue(run("", "serve", "--help").out().contains("--parallel"));
    }
}
