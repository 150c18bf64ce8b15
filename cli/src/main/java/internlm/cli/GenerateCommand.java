package internlm.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import internlm.engine.Engine;
import internlm.engine.generate.GenerationParams;
import internlm.engine.generate.GenerationResult;
import internlm.engine.generate.Session;
import internlm.engine.sampling.SamplerConfig;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "generate", mixinStandardHelpOptions = true,
        description = "Generate text from a prompt, streaming it to stdout (or one JSON object with --json).")
final class GenerateCommand implements Callable<Integer> {

    @Mixin
    ModelOptions model;

    static final class PromptSource {
        @Option(names = {"-p", "--prompt"}, paramLabel = "TEXT", description = "Prompt text (BOS is added when the model asks for it; special tokens like <|im_start|> are parsed).")
        String text;

        @Option(names = "--prompt-ids", paramLabel = "IDS", split = ",", description = "Prompt as comma-separated token ids, used as given.")
        int[] ids;
    }

    @ArgGroup(exclusive = true, multiplicity = "1")
    PromptSource prompt;

    @Mixin
    SamplingOptions sampling;

    @Mixin
    ConstraintOptions constraint;

    @Option(names = {"-n", "--n-predict"}, paramLabel = "N", defaultValue = "128", description = "Tokens to generate (default: ${DEFAULT-VALUE}).")
    int n;

    @Option(names = "--ignore-eos", description = "Do not stop at end-of-generation tokens.")
    boolean ignoreEos;

    @Option(names = "--stop", paramLabel = "TEXT", description = "Stop when this text is generated (repeatable).")
    List<String> stop = new ArrayList<>();

    @Option(names = "--special", description = "Print control tokens (e.g. <|im_end|>) in the text.")
    boolean special;

    @Option(names = "--json", description = "Print one JSON object: prompt, generated, text, steps (top logits), timings.")
    boolean json;

    @Option(names = "--top-logits", paramLabel = "K", defaultValue = "5", description = "With --json: highest raw logits recorded per step (default: ${DEFAULT-VALUE}).")
    int topLogits;

    @Override
    public Integer call() throws Exception {
        if (n < 0) {
            throw new IllegalArgumentException("--n-predict must be >= 0");
        }
        try (Engine engine = model.load()) {
            int[] ids = prompt.ids != null ? prompt.ids : engine.tokenizer().encode(prompt.text, true, true);
            for (int id : ids) {
                if (id < 0 || id >= engine.config().vocabSize()) {
                    throw new IllegalArgumentException("prompt token id " + id + " is outside the vocabulary (0.." + (engine.config().vocabSize() - 1) + ")");
                }
            }
            if (ids.length == 0) {
                throw new IllegalArgumentException("the prompt is empty");
            }
            int ctx = model.contextFor(engine);
            if (ids.length > engine.maxContext()) {
                throw new IllegalArgumentException("the prompt has " + ids.length + " tokens but the model's context is " + engine.config().contextLength() + " tokens");
            }
            if (ids.length > ctx) {
                throw new IllegalArgumentException("the prompt has " + ids.length + " tokens but the context is " + ctx + " tokens (raise it with --ctx, up to "
                        + Math.min(engine.maxContext(), Integer.MAX_VALUE) + ")");
            }
            SamplerConfig sc = sampling.config();
            GenerationParams params = new GenerationParams(n, sc, ignoreEos, stop, json ? topLogits : 0, special)
                    .withConstraint(constraint.constraint(engine.tokenizer()));
            if (!model.quiet) {
                System.err.println("model: " + model.modelName() + " (" + engine.config().family().label + ", " + engine.backend().description() + ")");
            }
            PrintStream out = System.out;
            GenerationResult r;
            try (Session s = engine.newSession(ctx)) {
                r = s.generate(ids, params, json ? (t, text) -> true : (t, text) -> {
                    out.print(text);
                    out.flush();
                    return true;
                });
            }
            if (json) {
                out.println(toJson(engine, r, sc));
            } else {
                out.println();
                if (!model.quiet) {
                    System.err.printf("[%d prompt tokens: %.1f tok/s; %d generated: %.2f tok/s; finish: %s]%n", ids.length,
                            r.promptTokensPerSecond(ids.length), r.generated().length, r.decodeTokensPerSecond(), r.finishReason());
                }
            }
        }
        return 0;
    }

    private String toJson(Engine engine, GenerationResult r, SamplerConfig sc) throws Exception {
        Map<String, Object> o = new LinkedHashMap<>();
        o.put("model", model.modelName());
        o.put("backend", engine.backend().description());
        o.put("prompt", r.prompt());
        o.put("generated", r.generated());
        o.put("text", r.text());
        o.put("finish_reason", r.finishReason());
        o.put("seed", sc.seed());
        List<Map<String, Object>> steps = new ArrayList<>();
        for (GenerationResult.Step st : r.steps()) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("token", st.token());
            List<Map<String, Object>> top = new ArrayList<>();
            for (GenerationResult.TopLogit t : st.top()) {
                Map<String, Object> e = new LinkedHashMap<>();
                e.put("id", t.id());
                e.put("piece", t.piece());
                e.put("logit", t.logit());
                top.add(e);
            }
            m.put("top", top);
            steps.add(m);
        }
        o.put("steps", steps);
        Map<String, Object> timings = new LinkedHashMap<>();
        timings.put("load_ms", engine.loadMillis());
        timings.put("prompt_ms", round(r.promptMillis()));
        timings.put("prompt_tok_s", round(r.promptTokensPerSecond(r.prompt().length)));
        timings.put("decode_ms", round(r.decodeMillis()));
        timings.put("decode_tok_s", round(r.decodeTokensPerSecond()));
        o.put("timings", timings);
        return new ObjectMapper().disable(SerializationFeature.FAIL_ON_EMPTY_BEANS).writeValueAsString(o);
    }

    static double round(double v) {
        return Math.round(v * 1000) / 1000.0;
    }
}
