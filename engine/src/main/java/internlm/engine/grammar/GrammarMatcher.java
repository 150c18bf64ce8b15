package internlm.engine.grammar;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Where one sequence stands in its grammar, and which tokens may come next.
 *
 * <p>The grammar runs as a set of stacks (a pushdown automaton; each stack frame is a position in an alternative,
 * rule references push, ends of alternatives pop). Every distinct set of stacks reached becomes a numbered state,
 * and the step from a state over a byte is computed once and remembered (a lazily built automaton), so walking the
 * vocabulary trie from a state costs an array look-up per trie node after the first time. The mask of a state is
 * remembered too: in JSON most steps return to a state seen before (inside a string, after a comma, …).
 *
 * <p>Not thread-safe: one matcher per sequence.
 */
public final class GrammarMatcher {
    private static final int DEAD = -1;
    private static final int MAX_STATES = 10_000; // about 10 MB of transitions, then the caches start afresh
    private static final int MASK_CACHE = 64;

    private final Grammar g;
    private final TokenTrie trie;
    private final int[] controlIds;
    private final int[] endTokens;
    private final int symbols;
    private final int words;

    // stack nodes (hash-consed): node 0 is the empty stack (the grammar has matched a whole root)
    private int[] nodePos = new int[1024], nodeParent = new int[1024];
    private int nodes;
    private final Map<Long, Integer> nodeIndex = new HashMap<>();

    // states: sorted node-id sets
    private final List<int[]> stateNodes = new ArrayList<>();
    private final List<int[]> transitions = new ArrayList<>(); // per state and symbol, see step()
    private final Map<Key, Integer> stateIndex = new HashMap<>();
    private final Map<Integer, long[]> masks = new LinkedHashMap<>(16, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<Integer, long[]> e) {
            return size() > MASK_CACHE;
        }
    };

    private int current;
    private boolean ended;

    GrammarMatcher(Grammar g, TokenTrie trie, int[] controlIds, int[] endTokens) {
        this.g = g;
        this.trie = trie;
        this.controlIds = controlIds.clone();
        this.endTokens = endTokens.clone();
        this.symbols = 256 + g.tokens.size();
        this.words = (trie.vocabSize + 63) >>> 6;
        reset();
    }

    private void reset() {
        nodes = 0;
        nodeIndex.clear();
        stateNodes.clear();
        transitions.clear();
        stateIndex.clear();
        masks.clear();
        nodePos[0] = -1;
        nodeParent[0] = -1;
        nodes = 1;
        Expansion x = new Expansion();
        for (int a : g.alternatives[g.root]) {
            expand(node(a, 0), x);
        }
        current = state(x.result());
    }

    /** Whether the output so far is a complete sentence of the grammar (an end token is allowed now). */
    public boolean complete() {
        return contains(stateNodes.get(current), 0);
    }

    /** Whether an end token has been accepted. */
    public boolean ended() {
        return ended;
    }

    /**
     * The tokens allowed next, as a bitset over the vocabulary (bit {@code t} of word {@code t / 64}). The array is
     * shared with the matcher's cache: do not modify it.
     */
    public long[] allowed() {
        long[] m = masks.get(current);
        if (m == null) {
            m = computeMask(current);
            masks.put(current, m);
        }
        return m;
    }

    /** Whether {@code token} may come next. */
    public boolean allows(int token) {
        long[] m = allowed();
        return token >= 0 && (token >>> 6) < m.length && (m[token >>> 6] & (1L << token)) != 0;
    }

    /** Moves past {@code token}; refuses a token the grammar does not allow here. */
    public void accept(int token) {
        if (ended) {
            throw new IllegalStateException("the grammar has ended; no token may follow");
        }
        for (int k = 0; k < controlIds.length; k++) {
            if (controlIds[k] == token) {
                int s = step(current, 256 + k);
                if (s == DEAD) {
                    throw new IllegalStateException("token " + token + " is not allowed by the grammar here");
                }
                current = s;
                return;
            }
        }
        for (int e : endTokens) {
            if (e == token) {
                if (!complete()) {
                    throw new IllegalStateException("the output is not complete; an end token is not allowed here");
                }
                ended = true;
                return;
            }
        }
        byte[] bytes = trie.bytes(token);
        if (bytes == null) {
            throw new IllegalStateException("token " + token + " has no text and is not allowed by the grammar");
        }
        int s = current;
        for (byte b : bytes) {
            s = step(s, b & 0xff);
            if (s == DEAD) {
                throw new IllegalStateException("token " + token + " is not allowed by the grammar here");
            }
        }
        current = s;
        if (stateNodes.size() > MAX_STATES) {
            compact();
        }
    }

    /** Number of automaton states built so far (for tests and diagnostics). */
    public int states() {
        return stateNodes.size();
    }

    // ------------------------------------------------------------------ masks

    private long[] computeMask(int state) {
        long[] m = new long[words];
        byte[] label = trie.label;
        int[] depth = trie.depth, next = trie.next, from = trie.tokFrom, toks = trie.tokens;
        int[] st = new int[trie.maxDepth + 1];
        st[0] = state;
        int n = label.length;
        int i = 0;
        while (i < n) {
            int d = depth[i];
            int s = step(st[d - 1], label[i] & 0xff);
            if (s == DEAD) {
                i = next[i];
                continue;
            }
            st[d] = s;
            for (int k = from[i], e = from[i + 1]; k < e; k++) {
                int t = toks[k];
                m[t >>> 6] |= 1L << t;
            }
            i++;
        }
        for (int k = 0; k < controlIds.length; k++) {
            if (step(state, 256 + k) != DEAD) {
                m[controlIds[k] >>> 6] |= 1L << controlIds[k];
            }
        }
        if (contains(stateNodes.get(state), 0)) {
            for (int e : endTokens) {
                m[e >>> 6] |= 1L << e;
            }
        }
        return m;
    }


    // ------------------------------------------------------------------ the automaton

    private int step(int state, int symbol) {
        int[] t = transitions.get(state);
        int v = t[symbol];
        if (v != 0) {
            return v - 2;
        }
        int s = advance(state, symbol);
        t[symbol] = s + 2; // stored shifted by two: 0 is "not computed yet", 1 is DEAD
        return s;
    }

    private int advance(int state, int symbol) {
        Expansion x = new Expansion();
        for (int node : stateNodes.get(state)) {
            if (node == 0) {
                continue;
            }
            int pos = nodePos[node];
            boolean match = switch (g.kind[pos]) {
                case Grammar.BYTES -> symbol < 256 && (g.byteSets[g.arg[pos]][symbol >>> 6] & (1L << symbol)) != 0;
                case Grammar.TOKEN -> symbol == 256 + g.arg[pos];
                default -> false;
            };
            if (match) {
                expand(node(pos + 1, nodeParent[node]), x);
            }
        }
        return x.size == 0 ? DEAD : state(x.result());
    }

    /** Expands a stack until its top is a terminal (or it is empty), adding the resulting stacks. */
    private void expand(int node, Expansion x) {
        if (!x.seen(node)) {
            return;
        }
        if (node == 0) {
            x.add(0);
            return;
        }
        int pos = nodePos[node];
        switch (g.kind[pos]) {
            case Grammar.END -> expand(nodeParent[node], x);
            case Grammar.REF -> {
                // a reference in last place continues where its rule's caller does: no frame is pushed, so right
                // recursion (every repetition) runs in constant stack depth and revisits the same states
                int cont = g.kind[pos + 1] == Grammar.END ? nodeParent[node] : node(pos + 1, nodeParent[node]);
                for (int a : g.alternatives[g.arg[pos]]) {
                    expand(node(a, cont), x);
                }
            }
            default -> x.add(node);
        }
    }

    private int node(int pos, int parent) {
        long key = ((long) pos << 32) | (parent & 0xffffffffL);
        Integer id = nodeIndex.get(key);
        if (id != null) {
            return id;
        }
        if (nodes == nodePos.length) {
            nodePos = Arrays.copyOf(nodePos, nodes * 2);
            nodeParent = Arrays.copyOf(nodeParent, nodes * 2);
        }
        nodePos[nodes] = pos;
        nodeParent[nodes] = parent;
        nodeIndex.put(key, nodes);
        return nodes++;
    }

    private int state(int[] sortedNodes) {
        Key k = new Key(sortedNodes);
        Integer id = stateIndex.get(k);
        if (id != null) {
            return id;
        }
        int s = stateNodes.size();
        stateNodes.add(sortedNodes);
        transitions.add(new int[symbols]);
        stateIndex.put(k, s);
        return s;
    }

    /** Starts the caches afresh, keeping only the current state (bounds memory in very long outputs). */
    private void compact() {
        List<int[]> stacks = new ArrayList<>();
        for (int node : stateNodes.get(current)) {
            List<Integer> frames = new ArrayList<>();
            for (int n = node; n != 0; n = nodeParent[n]) {
                frames.add(nodePos[n]);
            }
            stacks.add(frames.stream().mapToInt(Integer::intValue).toArray());
        }
        nodeIndex.clear();
        stateNodes.clear();
        transitions.clear();
        stateIndex.clear();
        masks.clear();
        nodes = 1;
        int[] rebuilt = new int[stacks.size()];
        for (int i = 0; i < stacks.size(); i++) {
            int[] frames = stacks.get(i);
            int n = 0;
            for (int f = frames.length - 1; f >= 0; f--) {
                n = node(frames[f], n);
            }
            rebuilt[i] = n;
        }
        Arrays.sort(rebuilt);
        current = state(rebuilt);
    }

    private static boolean contains(int[] sorted, int v) {
        return Arrays.binarySearch(sorted, v) >= 0;
    }

    /** Result set of one expansion, with the nodes already visited (expansion is a graph walk, not a tree). */
    private static final class Expansion {
        private final java.util.HashSet<Integer> visited = new java.util.HashSet<>();
        private int[] out = new int[8];
        private int size;

        boolean seen(int node) {
            return visited.add(node);
        }

        void add(int node) {
            if (size == out.length) {
                out = Arrays.copyOf(out, size * 2);
            }
            out[size++] = node;
        }

        int[] result() {
            int[] r = Arrays.copyOf(out, size);
            Arrays.sort(r);
            return r;
        }
    }

    private record Key(int[] nodes) {
        @Override
        public boolean equals(Object o) {
            return o instanceof Key k && Arrays.equals(nodes, k.nodes);
        }

        @Override
        public int hashCode() {
            return Arrays.hashCode(nodes);
        }
    }
}
