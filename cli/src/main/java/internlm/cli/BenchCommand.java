package internlm.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import internlm.engine.Engine;
import internlm.engine.generate.Session;
import internlm.engine.model.Backend;
import internlm.engine.model.Batch;
import internlm.engine.model.Rope;
import internlm.engine.sampling.Sampler;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;

@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Measure prompt processing (pp) and decode (tg) speed like llama-bench, optionally next to llama.cpp's numbers.")
final class BenchCommand implements Callable<Integer> {
    @Mixin
    ModelOptions model;

    @Option(names = {"-p", "--prompt-tokens"}, defaultValue = "128", description = "Prompt length (default: ${DEFAULT-VALUE}).")
    int promptTokens;

    @Option(names = {"-n", "--gen-tokens"}, defaultValue = "64", description = "Decoded tokens (default: ${DEFAULT-VALUE}).")
    int genTokens;

    @Option(names = {"-r", "--reps"}, defaultValue = "3", description = "Timed repetitions after one warm-up (default: ${DEFAULT-VALUE}).")
    int reps;

    @Option(names = "--llamacpp-json", paramLabel = "FILE",
            description = "llama.cpp's numbers for the same model and threads (the JSON of the harness's reference.mjs --sections bench): prints our/llama.cpp ratios.")
    Path llamacpp;

    @Option(names = "--json", description = "Print one JSON object.")
    boolean json;

    @Option(names = {"-s", "--sequences"}, paramLabel = "N[,N...]", split = ",",
            description = "Also decode N sequences together (one batch of one row per sequence per step) and report the aggregate decode tok/s, for each N given (e.g. -s 4,16). Default: only the single-sequence test.")
    List<Integer> sequences = new ArrayList<>();

    @Override
    public Integer call() throws Exception {
        if (promptTokens < 1 || genTokens < 1 || reps < 1 || sequences.stream().anyMatch(n -> n < 1)) {
            throw new IllegalArgumentException("-p, -n, -r and --sequences must be at least 1");
        }
        try (Engine engine = model.load(sequences.stream().mapToInt(Integer::intValue).max().orElse(1))) {
            int ctx = promptTokens + genTokens + 8;
            if (ctx > engine.maxContext()) {
                throw new IllegalArgumentException("-p + -n exceed the model's context of " + engine.config().contextLength() + " tokens");
            }
            int vocab = engine.config().vocabSize();
            SplittableRandom rnd = new SplittableRandom(12345);
            int[] prompt = new int[promptTokens];
            prompt[0] = Math.max(0, engine.model().vocab().bos());
            for (int i = 1; i < promptTokens; i++) {
                prompt[i] = rnd.nextInt(Math.min(vocab, 259), Math.max(vocab - 6, 260));
            }
            if (!model.quiet) {
                System.err.println("model: " + model.modelName() + " (" + engine.config().family().label + "), " + engine.backend().description());
                System.err.println("warming up ...");
            }
            run(engine, java.util.Arrays.copyOf(prompt, Math.min(16, promptTokens)), 4);
            List<double[]> results = new ArrayList<>();
            for (int r = 0; r < reps; r++) {
                double[] res = run(engine, prompt, genTokens);
                results.add(res);
                if (!model.quiet) {
                    System.err.printf("rep %d: pp%d %.2f tok/s, tg%d %.2f tok/s%n", r + 1, promptTokens, res[0], genTokens, res[1]);
                }
            }
            double[] pp = results.stream().mapToDouble(a -> a[0]).toArray(), tg = results.stream().mapToDouble(a -> a[1]).toArray();
            Map<Integer, double[]> together = new LinkedHashMap<>();
            for (int count : sequences) {
                double[] agg = new double[reps];
                for (int r = 0; r < reps; r++) {
                    agg[r] = decodeTogether(engine, java.util.Arrays.copyOf(prompt, Math.min(16, promptTokens)), genTokens, count);
                    if (!model.quiet) {
                        System.err.printf("rep %d: %d sequences decoding together: %.2f tok/s in all%n", r + 1, count, agg[r]);
                    }
                }
                together.put(count, agg);
            }
            double[] ref = llamacpp != null ? llamaCpp(llamacpp) : null;
            if (json) {
                Map<String, Object> o = new LinkedHashMap<>();
                o.put("model", model.modelName());
                o.put("backend", engine.backend().description());
                o.put("prompt_tokens", promptTokens);
                o.put("gen_tokens", genTokens);
                o.put("pp_tok_s", pp);
                o.put("tg_tok_s", tg);
                o.put("pp_mean", mean(pp));
                o.put("tg_mean", mean(tg));
                o.put("pp_median", median(pp));
                o.put("tg_median", median(tg));
                for (Map.Entry<Integer, double[]> e : together.entrySet()) {
                    o.put("tg_x" + e.getKey() + "_aggregate_tok_s", e.getValue());
                    o.put("tg_x" + e.getKey() + "_aggregate_median", median(e.getValue()));
                }
                if (ref != null) {
                    o.put("llamacpp_pp_tok_s", ref[0]);
                    o.put("llamacpp_tg_tok_s", ref[1]);
                    o.put("pp_ratio", median(pp) / ref[0]);
                    o.put("tg_ratio", median(tg) / ref[1]);
                }
                System.out.println(new ObjectMapper().writeValueAsString(o));
            } else {
                System.out.printf("| model | backend | test | tok/s |%n|---|---|---|---|%n");
                String name = model.model != null ? model.model.getFileName().toString() : ModelOptions.EMBEDDED;
                System.out.printf("| %s | %s | pp%d | %.2f ± %.2f (median %.2f) |%n", name, engine.backend().description(), promptTokens, mean(pp), sd(pp), median(pp));
                System.out.printf("| %s | %s | tg%d | %.2f ± %.2f (median %.2f) |%n", name, engine.backend().description(), genTokens, mean(tg), sd(tg), median(tg));
                for (Map.Entry<Integer, double[]> e : together.entrySet()) {
                    double[] agg = e.getValue();
                    System.out.printf("| %s | %s | tg%d × %d sequences (aggregate) | %.2f ± %.2f (median %.2f) |%n", name, engine.backend().description(), genTokens,
                            e.getKey(), mean(agg), sd(agg), median(agg));
                }
                if (ref != null) {
                    System.out.printf("llama.cpp (same model, from %s, median of its reps): pp %.2f tok/s, tg %.2f tok/s%n", llamacpp.getFileName(), ref[0], ref[1]);
                    System.out.printf("ratio to llama.cpp (median / median): prompt %.2fx, decode %.2fx%n", median(pp) / ref[0], median(tg) / ref[1]);
                }
            }
        }
        return 0;
    }

    /** One rep: prefill the prompt, then greedy-decode n tokens; returns {pp tok/s, tg tok/s}. */
    private static double[] run(Engine engine, int[] prompt, int n) {
        try (Session s = engine.newSession(prompt.length + n + 8)) {
            long t0 = System.nanoTime();
            float[] l = s.prefill(prompt);
            long t1 = System.nanoTime();
            for (int i = 0; i < n; i++) {
                l = s.append(Sampler.argmax(l));
            }
            long t2 = System.nanoTime();
            return new double[] {prompt.length * 1e9 / (t1 - t0), n * 1e9 / (t2 - t1)};
        }
    }

    /**
     * {@code count} sequences, each prefilled with the prompt (its first token varied), then {@code n} greedy steps with
     * one batch of one row per sequence; returns the aggregate decode tok/s (count · n / time).
     */
    private static double decodeTogether(Engine engine, int[] prompt, int n, int count) {
        Backend backend = engine.backend();
        Backend.Sequence[] seqs = new Backend.Sequence[count];
        try {
            int[] next = new int[count];
            int capacity = prompt.length + n + 8;
            for (int s = 0; s < count; s++) {
                seqs[s] = backend.openSequence(capacity);
                int[] p = prompt.clone();
                p[p.length - 1] = (p[p.length - 1] + s) % engine.config().vocabSize();
                Batch b = new Batch(p.length);
                for (int i = 0; i < p.length; i++) {
                    b.add(seqs[s], i, p[i], Rope.base(engine.config(), p.length), i == p.length - 1 ? Batch.Output.ARGMAX : Batch.Output.NONE, null);
                }
                backend.forward(b);
                next[s] = b.argmax(p.length - 1);
            }
            Batch b = new Batch(count);
            long t0 = System.nanoTime();
            for (int step = 0; step < n; step++) {
                b.clear();
                for (int s = 0; s < count; s++) {
                    b.add(seqs[s], prompt.length + step, next[s], Rope.base(engine.config(), prompt.length + step + 1), Batch.Output.ARGMAX, null);
                }
                backend.forward(b);
                for (int s = 0; s < count; s++) {
                    next[s] = b.argmax(s);
                }
            }
            return (double) count * n * 1e9 / (System.nanoTime() - t0);
        } finally {
            for (Backend.Sequence s : seqs) {
                if (s != null) {
                    s.close();
                }
            }
        }
    }

    /**
     * Median prompt and decode tok/s of llama.cpp's own counters in a harness bench JSON (the median, not the mean:
     * one rep slowed by a cold page cache or a noisy neighbour must not move the ratio).
     */
    static double[] llamaCpp(Path file) throws Exception {
        JsonNode reps = new ObjectMapper().readTree(file.toFile()).path("bench").path("reps");
        if (!reps.isArray() || reps.isEmpty()) {
            throw new IllegalArgumentException(file + ": no bench.reps (expected the JSON of reference.mjs --sections bench)");
        }
        double[] pp = new double[reps.size()], tg = new double[reps.size()];
        for (int i = 0; i < reps.size(); i++) {
            JsonNode r = reps.get(i);
            pp[i] = r.path("llama_perf").path("prompt_eval").path("tok_s").asDouble(r.path("prompt_tok_s").asDouble());
            tg[i] = r.path("llama_perf").path("eval").path("tok_s").asDouble(r.path("decode_tok_s").asDouble());
        }
        return new double[] {median(pp), median(tg)};
    }

    static double mean(double[] a) {
        double s = 0;
        for (double v : a) {
            s += v;
        }
        return s / a.length;
    }

    static double median(double[] a) {
        double[] s = a.clone();
        java.util.Arrays.sort(s);
        int n = s.length;
        return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    }

    static double sd(double[] a) {
        double m = mean(a), s = 0;
        for (double v : a) {
            s += (v - m) * (v - m);
        }
        return a.length > 1 ? Math.sqrt(s / (a.length - 1)) : 0;
    }
}
