package internlm.cli;

import internlm.engine.Engine;
import internlm.engine.chat.ChatDefaults;
import internlm.engine.chat.ChatMessage;
import internlm.engine.chat.ChatTemplate;
import internlm.engine.generate.GenerationParams;
import internlm.engine.generate.GenerationResult;
import internlm.engine.generate.Session;
import internlm.engine.sampling.SamplerConfig;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "chat", mixinStandardHelpOptions = true,
        description = {"Interactive multi-turn chat in InternLM's ChatML format. Type /reset to start over, /exit (or end of input) to quit.",
                "Sampling defaults are InternLM's recommended ones (spec §10: InternLM2 temperature 0.8, top-p 0.8; InternLM3 temperature 1.0, "
                        + "top-p 0.8, top-k 40, repetition penalty 1.005) unless given as options."})
final class ChatCommand implements Callable<Integer> {
    @Mixin
    ModelOptions model;

    @Mixin
    SamplingOptions sampling;

    @Mixin
    ConstraintOptions constraint;

    @Spec
    CommandSpec spec;

    @Option(names = "--system", paramLabel = "TEXT", description = "System prompt (default: InternLM's own identity prompt).")
    String system;

    @Option(names = "--think", description = "InternLM3 deep-thinking mode: the long thinking system prompt, and replies of up to 8192 tokens.")
    boolean think;

    @Option(names = {"-n", "--n-predict"}, paramLabel = "N", description = "Most tokens per reply (default: 1024, with --think 8192).")
    Integer n;

    @Option(names = "--chat-template", paramLabel = "auto|internlm", defaultValue = "auto",
            description = "auto: the model's chat template if it is InternLM's ChatML (refused otherwise); internlm: InternLM's ChatML regardless.")
    String chatTemplate;

    static boolean builtInTemplate(String choice) {
        return switch (choice) {
            case "auto" -> false;
            case "internlm", "chatml" -> true;
            default -> throw new IllegalArgumentException("--chat-template must be auto or internlm, got '" + choice + "'");
        };
    }

    @Override
    public Integer call() throws Exception {
        if (think && system != null) {
            throw new IllegalArgumentException("--think sets the system prompt (the thinking prompt); give either --think or --system");
        }
        if (n != null && n < 0) {
            throw new IllegalArgumentException("--n-predict must be >= 0");
        }
        boolean builtIn = builtInTemplate(chatTemplate);
        int budget = n != null ? n : ChatDefaults.maxTokens(think);
        try (Engine engine = model.load()) {
            if (engine.isRewardModel()) {
                throw new IllegalArgumentException("this is a reward model (it has a v_head reward head): it scores conversations with 'score', it does not chat");
            }
            ChatTemplate template = ChatTemplate.forModel(engine.tokenizer(), builtIn);
            if (think) {
                template = template.withDefaultSystemPrompt(ChatTemplate.THINKING_SYSTEM_PROMPT);
            }
            SamplerConfig sc = sampling.config(spec.commandLine().getParseResult(), ChatDefaults.sampler(engine.config().family(), 0));
            // each reply is constrained on its own (a fresh matcher per generation)
            var replyConstraint = constraint.constraint(engine.tokenizer());
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
                System.err.printf("chat format: %s%s; temperature %s, top-p %s, top-k %d, repetition penalty %s; up to %d tokens per reply%n",
                        template.origin(), think ? ", deep-thinking mode" : "", sc.temperature(), sc.topP(), sc.topK(), sc.repeatPenalty(), budget);
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
                    GenerationParams params = new GenerationParams(Math.min(budget, ctx - ids.length), sc, false, List.of(), 0, false)
                            .withConstraint(replyConstraint);
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
