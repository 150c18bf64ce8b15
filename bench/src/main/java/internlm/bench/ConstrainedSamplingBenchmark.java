package internlm.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import internlm.engine.grammar.GrammarMatcher;
import internlm.engine.grammar.JsonSchemaGrammar;
import internlm.engine.grammar.TokenConstraint;
import internlm.engine.grammar.TokenTrie;
import internlm.engine.sampling.Sampler;
import internlm.engine.sampling.SamplerConfig;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * Sampling time per token with and without a JSON-schema mask, on a vocabulary of InternLM2's size (92,544 tokens).
 * Prints numbers; asserts nothing.
 *
 * <p>The vocabulary is synthetic but shaped like InternLM2's: the 256 byte tokens, SentencePiece-style words with
 * and without a leading space, CJK characters and pairs, digits, punctuation and code/JSON fragments. Logits are
 * random (a Gaussian per token, with a bonus for tokens that close strings/objects that grows within a request so
 * that outputs end); each request starts a fresh matcher, as the server does.
 *
 * <pre>java --add-modules jdk.incubator.vector -cp bench/target/benchmarks.jar internlm.bench.ConstrainedSamplingBenchmark [tokens]</pre>
 */
public final class ConstrainedSamplingBenchmark {
    static final int VOCAB = 92_544;
    static final String SCHEMA = """
            {"type": "object", "additionalProperties": false, "required": ["name", "age", "email", "tags", "address"],
             "properties": {"name": {"type": "string"}, "age": {"type": "integer"}, "email": {"type": "string"},
                            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 5},
                            "address": {"type": "object", "additionalProperties": false, "required": ["city", "zip"],
                                        "properties": {"city": {"type": "string"}, "zip": {"type": "string"}}},
                            "role": {"enum": ["admin", "user", "guest"]}, "active": {"type": "boolean"}}}""";

    public static void main(String[] args) throws Exception {
        int tokens = args.length > 0 ? Integer.parseInt(args[0]) : 20_000;
        byte[][] vocab = vocabulary();
        int end = VOCAB - 1; // an end-of-turn control token (no text)
        long t0 = System.nanoTime();
        TokenTrie trie = TokenTrie.ofBytes(vocab);
        double trieMs = (System.nanoTime() - t0) / 1e6;
        TokenConstraint c = TokenConstraint.of(JsonSchemaGrammar.of(new ObjectMapper().readTree(SCHEMA)), trie, new int[0], "bench");
        System.out.printf("vocabulary %,d tokens, trie %,d nodes (built in %.0f ms)%n", VOCAB, trie.nodeCount(), trieMs);

        float[][] pool = new float[64][VOCAB];
        SplittableRandom rnd = new SplittableRandom(1);
        for (float[] l : pool) {
            for (int i = 0; i < VOCAB; i++) {
                l[i] = (float) rnd.nextGaussian() * 2f;
            }
        }
        boolean[] closes = new boolean[VOCAB];
        for (int t = 0; t < VOCAB; t++) {
            if (vocab[t] != null) {
                for (byte b : vocab[t]) {
                    closes[t] |= b == '"' || b == '}' || b == ']';
                }
            }
        }
        closes[end] = true;
        SamplerConfig[] configs = {
                new SamplerConfig(0f, 0, 1f, 0f, 1f, 0f, 0f, -1, 7),
                new SamplerConfig(0.8f, 40, 0.8f, 0f, 1f, 0f, 0f, -1, 7),
                new SamplerConfig(0.8f, 0, 0.8f, 0f, 1f, 0f, 0f, -1, 7)};
        String[] names = {"greedy", "temp 0.8, top-k 40, top-p 0.8", "InternLM2 chat defaults (temp 0.8, top-p 0.8, no top-k)"};
        for (int k = 0; k < configs.length; k++) {
            int n = k == 2 ? Math.max(500, tokens / 20) : tokens; // the full sort of the last one is slow by itself
            run(names[k], configs[k], c, pool, closes, vocab, end, n / 4); // warm-up
            run(names[k], configs[k], c, pool, closes, vocab, end, n);
        }
    }

    private static void run(String name, SamplerConfig sc, TokenConstraint c, float[][] pool, boolean[] closes, byte[][] vocab, int end, int tokens) {
        Sampler plain = new Sampler(sc), masked = new Sampler(sc);
        float[] scratch = new float[VOCAB];
        // unconstrained
        long t0 = System.nanoTime();
        long sink = 0;
        for (int i = 0; i < tokens; i++) {
            sink += plain.sample(pool[i & 63], new int[0], 0);
        }
        double plainUs = (System.nanoTime() - t0) / 1e3 / tokens;
        // constrained: mask (allowed + apply) + sample + advance, fresh matcher per request
        long maskNs = 0, total = 0;
        int requests = 0, step = 0;
        GrammarMatcher m = c.matcher(new int[] {end});
        requests++;
        long start = System.nanoTime();
        for (int i = 0; i < tokens; i++) {
            float[] src = pool[i & 63];
            float bonus = step / 20f;
            for (int t = 0; t < VOCAB; t++) {
                scratch[t] = closes[t] ? src[t] + bonus : src[t];
            }
            long a = System.nanoTime();
            long[] allowed = m.allowed();
            maskNs += System.nanoTime() - a;
            long b = System.nanoTime();
            int tok = masked.sample(scratch, new int[0], 0, allowed);
            m.accept(tok);
            total += System.nanoTime() - b;
            step++;
            if (tok == end) {
                m = c.matcher(new int[] {end});
                requests++;
                step = 0;
            }
        }
        double wall = (System.nanoTime() - start) / 1e3 / tokens;
        double maskUs = maskNs / 1e3 / tokens, sampleUs = total / 1e3 / tokens;
        System.out.printf("%-58s %7d tokens: unconstrained %8.1f us/token | JSON schema: mask %6.1f us + masked sample/advance %8.1f us = %8.1f us/token "
                        + "(%d requests, %d states in the last)%n",
                name, tokens, plainUs, maskUs, sampleUs, maskUs + sampleUs, requests, m.states());
        if (sink == 42 && wall < 0) {
            System.out.println();
        }
    }

    /** 92,544 distinct token byte strings, the last one an empty control token. */
    static byte[][] vocabulary() {
        Set<String> pieces = new LinkedHashSet<>();
        SplittableRandom r = new SplittableRandom(92544);
        String letters = "eeeeeeeeeeeettttttttaaaaaaaooooooiiiiiinnnnnnsssssshhhhhrrrrrdddlllcccuummwwffggyyppbbvkjxqz";
        String[] punct = {"\"", "\":", "\": \"", "\",", "\", \"", "{\"", "}", "},", "]", "],", "[", "[\"", "(", ")", ");", ".", ",", ":", ";", "!", "?",
                "\n", "\n\n", "  ", "    ", "\t", "->", "==", "//", "/*", "*/", "#", "##", "<", ">", "</", "=\"", "'", "`", "```", "-", "_", "__", "\\n", "\\\""};
        for (String p : punct) {
            pieces.add(p);
            pieces.add(" " + p);
        }
        for (int d = 0; d < 1000; d++) {
            pieces.add(Integer.toString(d));
        }
        while (pieces.size() < 30_000) { // CJK characters and pairs
            char a = (char) (0x4E00 + r.nextInt(6000));
            pieces.add(r.nextInt(3) == 0 ? "" + a + (char) (0x4E00 + r.nextInt(6000)) : "" + a);
        }
        while (pieces.size() < VOCAB - 256 - 1) { // words, with and without the leading space
            int len = 1 + Math.min(12, (int) Math.abs(r.nextGaussian() * 4));
            StringBuilder w = new StringBuilder(r.nextInt(3) > 0 ? " " : "");
            for (int i = 0; i < len; i++) {
                w.append(letters.charAt(r.nextInt(letters.length())));
            }
            String s = w.toString();
            int at = s.length() - len; // capitalised now and then
            pieces.add(r.nextInt(8) == 0 ? s.substring(0, at) + Character.toUpperCase(s.charAt(at)) + s.substring(at + 1) : s);
        }
        List<byte[]> out = new ArrayList<>(VOCAB);
        for (int b = 0; b < 256; b++) {
            out.add(new byte[] {(byte) b});
        }
        for (String p : pieces) {
            out.add(p.getBytes(StandardCharsets.UTF_8));
        }
        out = out.subList(0, VOCAB - 1);
        out.add(null);
        return out.toArray(byte[][]::new);
    }
}
