package internlm.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import internlm.server.Requests;
import internlm.engine.Engine;
import internlm.engine.chat.ChatMessage;
import internlm.engine.chat.ChatTemplate;
import internlm.engine.generate.Session;
import internlm.engine.reward.RewardScorer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "score", mixinStandardHelpOptions = true,
        description = {"Score conversations with an InternLM2-Reward model (a model with a v_head.weight reward head).",
                "--chat FILE holds OpenAI-style messages: [{\"role\": \"user\", \"content\": ...}, {\"role\": \"assistant\", ...}], "
                        + "or {\"messages\": [...]}, or an array of such conversations (one score per line). Higher is better."})
final class ScoreCommand implements Callable<Integer> {
    @Mixin
    ModelOptions model;

    @Option(names = "--chat", required = true, paramLabel = "FILE", description = "JSON file with the conversation(s) to score.")
    Path chat;

    @Option(names = "--json", description = "Print one JSON object: scores and token counts.")
    boolean json;

    @Option(names = "--chat-template", paramLabel = "auto|internlm", defaultValue = "auto",
            description = "auto: the model's chat template if it is InternLM's ChatML; internlm: InternLM's ChatML regardless.")
    String chatTemplate;

    @Override
    public Integer call() throws Exception {
        List<List<ChatMessage>> conversations = read(chat);
        boolean builtIn = ChatCommand.builtInTemplate(chatTemplate);
        try (Engine engine = model.load()) {
            RewardScorer scorer = new RewardScorer(engine, ChatTemplate.forModel(engine.tokenizer(), builtIn));
            List<int[]> encoded = new ArrayList<>();
            int longest = 16;
            for (List<ChatMessage> c : conversations) {
                int[] ids = scorer.encode(c);
                encoded.add(ids);
                longest = Math.max(longest, ids.length);
            }
            int ctx = Math.max(model.contextFor(engine), longest);
            if (longest > engine.maxContext()) {
                throw new IllegalArgumentException("a conversation has " + longest + " tokens but the model's context is " + engine.config().contextLength() + " tokens");
            }
            List<Double> scores = new ArrayList<>();
            try (Session s = engine.newSession(Math.min(ctx, engine.maxContext()))) {
                for (int[] ids : encoded) {
                    scores.add(scorer.score(s, ids));
                }
            }
            if (json) {
                Map<String, Object> o = new LinkedHashMap<>();
                o.put("model", model.modelName());
                o.put("scores", scores);
                o.put("tokens", encoded.stream().map(a -> a.length).toList());
                System.out.println(new ObjectMapper().writeValueAsString(o));
            } else {
                for (double d : scores) {
                    System.out.println(String.format(java.util.Locale.ROOT, "%.6f", d));
                }
            }
        }
        return 0;
    }

    /** The conversations in a file: one (a messages array or {"messages": [...]}) or an array of them. */
    static List<List<ChatMessage>> read(Path file) {
        JsonNode n;
        try {
            n = new ObjectMapper().readTree(Files.readAllBytes(file));
        } catch (NoSuchFileException e) {
            throw new IllegalArgumentException(file + ": no such file");
        } catch (IOException e) {
            throw new IllegalArgumentException(file + ": not valid JSON (" + e.getMessage().lines().findFirst().orElse("") + ")");
        }
        List<JsonNode> convs = new ArrayList<>();
        if (n != null && n.isArray() && !n.isEmpty() && (n.get(0).isArray() || n.get(0).has("messages"))) {
            n.forEach(convs::add);
        } else {
            convs.add(n);
        }
        List<List<ChatMessage>> out = new ArrayList<>();
        for (int i = 0; i < convs.size(); i++) {
            JsonNode c = convs.get(i);
            JsonNode msgs = c != null && c.isObject() ? c.get("messages") : c;
            try {
                out.add(Requests.messagesOf(msgs));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(file + (convs.size() > 1 ? " (conversation " + i + ")" : "") + ": " + e.getMessage());
            }
        }
        return out;
    }
}
