package internlm.engine.grammar;

import internlm.engine.tokenizer.Tokenizer;

import java.util.Arrays;
import java.util.Map;
import java.util.WeakHashMap;

/**
 * The text tokens of a vocabulary as a byte trie in preorder, so that the allowed tokens of a grammar state are found
 * by one walk that drops a whole subtree as soon as its prefix is refused. Control and other special tokens, and
 * tokens without bytes, are left out (a grammar names control tokens itself). Built once per tokenizer.
 */
public final class TokenTrie {
    private static final Map<Tokenizer, TokenTrie> CACHE = new WeakHashMap<>();

    final int vocabSize;
    /** Per node, in preorder: its byte, its depth (1 = first byte), the index just past its subtree. */
    final byte[] label;
    final int[] depth;
    final int[] next;
    /** Tokens ending at node i: tokens[tokFrom[i] .. tokFrom[i + 1]). */
    final int[] tokFrom;
    final int[] tokens;
    final int maxDepth;
    /** Each text token's bytes (null for the others), kept for advancing a matcher over a sampled token. */
    private final byte[][] tokenBytes;

    private TokenTrie(int vocabSize, byte[][] bytes) {
        this.vocabSize = vocabSize;
        Integer[] order = new Integer[vocabSize];
        int count = 0;
        for (int i = 0; i < vocabSize; i++) {
            if (bytes[i] != null && bytes[i].length > 0) {
                order[count++] = i;
            }
        }
        Integer[] ids = Arrays.copyOf(order, count);
        Arrays.sort(ids, (a, b) -> {
            int c = Arrays.compareUnsigned(bytes[a], bytes[b]);
            return c != 0 ? c : Integer.compare(a, b);
        });
        int cap = 0, deepest = 0;
        for (Integer id : ids) {
            cap += bytes[id].length;
            deepest = Math.max(deepest, bytes[id].length);
        }
        byte[] lab = new byte[cap];
        int[] dep = new int[cap], nxt = new int[cap], from = new int[cap + 1];
        int[] toks = new int[count];
        int[] open = new int[deepest + 1];
        int nodes = 0, nt = 0, curDepth = 0;
        byte[] prev = new byte[0];
        for (Integer id : ids) {
            byte[] b = bytes[id];
            int lcp = 0;
            while (lcp < Math.min(prev.length, b.length) && prev[lcp] == b[lcp]) {
                lcp++;
            }
            for (int d = curDepth; d > lcp; d--) {
                nxt[open[d]] = nodes;
            }
            for (int d = lcp + 1; d <= b.length; d++) {
                lab[nodes] = b[d - 1];
                dep[nodes] = d;
                from[nodes] = nt;
                open[d] = nodes++;
            }
            curDepth = b.length;
            toks[nt++] = id;
            prev = b;
        }
        for (int d = curDepth; d > 0; d--) {
            nxt[open[d]] = nodes;
        }
        from[nodes] = nt;
        this.label = Arrays.copyOf(lab, nodes);
        this.depth = Arrays.copyOf(dep, nodes);
        this.next = Arrays.copyOf(nxt, nodes);
        this.tokFrom = Arrays.copyOf(from, nodes + 1);
        this.tokens = toks;
        this.maxDepth = deepest;
        this.tokenBytes = new byte[vocabSize][];
        for (Integer id : ids) {
            tokenBytes[id] = bytes[id].clone();
        }
    }

    /** The bytes of text token {@code id}, or null when it is not one (control, special, empty or out of range). */
    byte[] bytes(int id) {
        return id >= 0 && id < tokenBytes.length ? tokenBytes[id] : null;
    }

    /** The trie of a tokenizer's text tokens (built on first use, then shared). */
    public static TokenTrie of(Tokenizer tok) {
        synchronized (CACHE) {
            return CACHE.computeIfAbsent(tok, TokenTrie::build);
        }
    }

    private static TokenTrie build(Tokenizer tok) {
        int n = tok.size();
        byte[][] bytes = new byte[n][];
        for (int i = 0; i < n; i++) {
            bytes[i] = tok.isSpecial(i) ? null : tok.pieceBytes(i, false);
        }
        return new TokenTrie(n, bytes);
    }

    /** A trie over given token bytes (null or empty: not a text token). */
    public static TokenTrie ofBytes(byte[][] tokenBytes) {
        return new TokenTrie(tokenBytes.length, tokenBytes);
    }

    public int nodeCount() {
        return label.length;
    }
}
