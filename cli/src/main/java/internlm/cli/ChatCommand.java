package internlm.cli;

import internlm.engine.Engine;
import internlm.engine.chat.ChatMessage;
import internlm.engine.chat.ChatTemplate;
import internlm.engine.generate.GenerationParams;
import internlm.engine.generate.GenerationResult;
import internlm.engine.generate.Session;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "chat", mixinStandardHelpOptions = true,
        description = "Interactive multi-turn chat with the model's ChatML template. Type /reset to start over, /exit (or end of input) to quit.")
final class ChatCommand implements Callable<Integer> {
    @Mixin
    ModelOptions model;

    @Mixin
    SamplingOptions sampling;

    @Option(names = "--system", paramLabel = "TEXT", description = "System prompt (default: InternLM's own identity prompt).")
    String system;

    @Option(names = {"-n", "--n-predict"}, paramLabel = "N", defaultValue = "1024", description = "Most tokens per reply (default: ${DEFAULT-VALUE}).")
    int n;

    @Override
    public Integer call() throws Exception {
        try (Engine engine = model.load()) {
            ChatTemplate template = new ChatTemplate(engine.tokenizer());
            int ctx = model.contextFor(engine);
            List<ChatMessage> history = new ArrayList<>();
            if (system != null) {
                history.add(ChatMessage.system(system));
            }
            int base = history.size();
            BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
            boolean interactive = System.console() != null;
            if (!model.quiet) {
                System.err.println("model: " + model.modelName() + " (" + engine.config().family().label + ", " + engine.backend().description() + ")");
                System.err.println("chat: /reset to clear the conversation, /exit to quit");
            }
            try (Session session = engine.newSession(ctx)) {
                while (true) {
                    if (interactive) {
                        System.out.print("> ");
                        System.out.flush();
                    }
                    String line = in.readLine();
                    if (line == null || line.strip().equals("/exit") || line.strip().equals("/quit")) {
                        break;
                    }
                    if (line.strip().equals("/reset")) {
                        while (history.size() > base) {
                            history.remove(history.size() - 1);
                        }
                        session.reset();
                        System.out.println("(conversation cleared)");
                        continue;
                    }
                    if (line.isBlank()) {
                        continue;
                    }
                    history.add(ChatMessage.user(line));
                    int[] ids = template.encode(history, true);
                    if (ids.length >= ctx) {
                        history.remove(history.size() - 1);
                        System.out.println("(the conversation no longer fits in the context of " + ctx + " tokens: /reset, or restart with a larger --ctx)");
                        continue;
                    }
                    GenerationParams params = new GenerationParams(n, sampling.config(), false, List.of(), 0, false);
                    GenerationResult r = session.generate(ids, params, (t, text) -> {
                        System.out.print(text);
                        System.out.flush();
                        return true;
                    });
                    System.out.println();
                    if (r.finishReason().equals("length")) {
                        System.out.println("(reply cut at " + r.generated().length + " tokens)");
                    }
                    history.add(ChatMessage.assistant(r.text()));
                }
            }
        }
        return 0;
    }
}
