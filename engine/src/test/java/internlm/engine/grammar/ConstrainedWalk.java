package internlm.engine.grammar;

import internlm.engine.sampling.Sampler;
import internlm.engine.sampling.SamplerConfig;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * A test vocabulary (every single byte, JSON-ish multi-byte pieces, one end token) and a random "model" that samples
 * through a matcher's mask: random logits, with a bonus growing with the step for tokens that close something
 * ({@code " ] }} or the end token), so that walks finish. Each step checks that some token is allowed.
 */
final class ConstrainedWalk {
    static final String[] PIECES = {"{\"", "\":", "\": ", "\", \"", "\",\"", "\"}", "\"]", "},", "}]", "]}", "[{", "[\"",
            "true", "false", "null", "12", "0.5", "-3", "e7", "name", "abc", " the", "ok", "\n  ", "  ", ", ", ": ",
            "\\n", "\\\"", "\\u00e9", "é", "日本", "😀", "{}", "[]", "\"\"", "1", "00", "x\"", "a b", "},{", "\"a\"", "\"b\""};
    final byte[][] bytes;
    final int endToken;
    final TokenTrie trie;

    ConstrainedWalk() {
        List<byte[]> v = new ArrayList<>();
        for (int b = 0; b < 256; b++) {
            v.add(new byte[] {(byte) b});
        }
        for (String p : PIECES) {
            v.add(p.getBytes(StandardCharsets.UTF_8));
        }
        endToken = v.size();
        v.add(null); // the end token has no text
        bytes = v.toArray(byte[][]::new);
        trie = TokenTrie.ofBytes(bytes);
    }

    TokenConstraint constraint(Grammar g) {
        return TokenConstraint.of(g, trie, new int[0], "test");
    }

    /** Runs one random walk to the end token; returns the text, or fails the test if it dead-ends or runs on. */
    String walk(Grammar g, long seed, int maxSteps) {
        GrammarMatcher m = constraint(g).matcher(new int[] {endToken});
        SplittableRandom rnd = new SplittableRandom(seed);
        Sampler sampler = new Sampler(new SamplerConfig(1f, 0, 1f, 0f, 1f, 0f, 0f, 0, seed));
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        float[] logits = new float[bytes.length];
        for (int step = 0; step < maxSteps; step++) {
            long[] allowed = m.allowed();
            boolean any = false;
            for (long w : allowed) {
                any |= w != 0;
            }
            if (!any) {
                fail("dead end after " + out.toString(StandardCharsets.UTF_8));
            }
            float bonus = step / 15f;
            for (int t = 0; t < logits.length; t++) {
                logits[t] = (float) rnd.nextGaussian() + (closes(t) ? bonus : 0f);
            }
            int t = sampler.sample(logits, new int[0], 0, allowed);
            assertTrue(m.allows(t), "sampled a masked token");
            m.accept(t);
            if (t == endToken) {
                assertTrue(m.ended());
                return out.toString(StandardCharsets.UTF_8);
            }
            out.writeBytes(bytes[t]);
        }
        fail("no end after " + maxSteps + " tokens: " + out.toString(StandardCharsets.UTF_8));
        return null;
    }

    private boolean closes(int t) {
        if (t == endToken) {
            return true;
        }
        for (byte b : bytes[t]) {
            if (b == '"' || b == ']' || b == '}') {
                return true;
            }
        }
        return false;
    }
}
