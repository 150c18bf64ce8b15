package internlm.engine.grammar;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A context-free grammar over bytes (and a few whole control tokens), compiled into flat alternatives that a
 * {@link GrammarMatcher} runs as stacks. Rules are built from {@link Expr}s; repetition and nested alternatives become
 * helper rules. The start rule is {@code root}. Compiling refuses what the stack matcher cannot run: undefined rules,
 * left recursion (it would expand forever) and rules that can never finish (a matcher could reach a state from which
 * no output ends).
 *
 * <p>Immutable once built; one grammar serves any number of matchers on any threads.
 */
public final class Grammar {
    static final int END = 0, BYTES = 1, REF = 2, TOKEN = 3;

    /** Element kinds at each position; an alternative is a run of elements closed by END. */
    final int[] kind;
    /** Per position: the byte-set index (BYTES), the rule (REF) or the control-token index (TOKEN). */
    final int[] arg;
    /** Per rule: the positions where its alternatives start. */
    final int[][] alternatives;
    /** Byte sets, each 256 bits in four longs. */
    final long[][] byteSets;
    /** Control tokens the grammar names, by their text (e.g. {@code <|action_start|>}). */
    final List<String> tokens;
    final int root;
    private final List<String> ruleNames;

    private Grammar(int[] kind, int[] arg, int[][] alternatives, long[][] byteSets, List<String> tokens, int root,
                    List<String> ruleNames) {
        this.kind = kind;
        this.arg = arg;
        this.alternatives = alternatives;
        this.byteSets = byteSets;
        this.tokens = List.copyOf(tokens);
        this.root = root;
        this.ruleNames = List.copyOf(ruleNames);
    }

    /** The control tokens the grammar uses, by text. */
    public List<String> controlTokens() {
        return tokens;
    }

    public int ruleCount() {
        return alternatives.length;
    }

    String ruleName(int r) {
        return ruleNames.get(r);
    }

    // ------------------------------------------------------------------ expressions

    /** A grammar expression. */
    public sealed interface Expr permits Bytes, Seq, Alt, Ref, Token, Repeat {}

    /** One byte out of a set. */
    public record Bytes(long[] set) implements Expr {
        public Bytes {
            set = set.clone();
        }
    }

    public record Seq(List<Expr> items) implements Expr {
        public Seq {
            items = List.copyOf(items);
        }
    }

    public record Alt(List<Expr> options) implements Expr {
        public Alt {
            options = List.copyOf(options);
        }
    }

    /** A reference to a rule by name. */
    public record Ref(String rule) implements Expr {}

    /** One whole control token (matched by that token only, never by its text's bytes). */
    public record Token(String text) implements Expr {}

    /** {@code min} to {@code max} repetitions ({@code max} −1: unbounded). */
    public record Repeat(Expr item, int min, int max) implements Expr {
        public Repeat {
            if (min < 0 || (max >= 0 && max < min)) {
                throw new GrammarException("bad repetition count {" + min + "," + max + "}");
            }
        }
    }

    public static Expr seq(Expr... items) {
        return items.length == 1 ? items[0] : new Seq(List.of(items));
    }

    public static Expr alt(Expr... options) {
        return options.length == 1 ? options[0] : new Alt(List.of(options));
    }

    public static Expr alt(List<Expr> options) {
        return options.size() == 1 ? options.getFirst() : new Alt(options);
    }

    public static Expr ref(String rule) {
        return new Ref(rule);
    }

    public static Expr empty() {
        return new Seq(List.of());
    }

    public static Expr optional(Expr e) {
        return new Repeat(e, 0, 1);
    }

    public static Expr star(Expr e) {
        return new Repeat(e, 0, -1);
    }

    public static Expr repeat(Expr e, int min, int max) {
        return new Repeat(e, min, max);
    }

    /** The UTF-8 bytes of {@code text}, in order. */
    public static Expr literal(String text) {
        byte[] b = text.getBytes(StandardCharsets.UTF_8);
        List<Expr> items = new ArrayList<>(b.length);
        for (byte x : b) {
            items.add(byteRange(x & 0xff, x & 0xff));
        }
        return items.size() == 1 ? items.getFirst() : new Seq(items);
    }

    public static Bytes byteRange(int lo, int hi) {
        long[] s = new long[4];
        for (int b = lo; b <= hi; b++) {
            s[b >>> 6] |= 1L << (b & 63);
        }
        return new Bytes(s);
    }

    /**
     * One character (a Unicode scalar value, as UTF-8) out of the code-point ranges {@code ranges} (pairs lo, hi,
     * inclusive); surrogates are never matched.
     */
    public static Expr chars(int[] ranges) {
        List<Expr> options = new ArrayList<>();
        for (int i = 0; i < ranges.length; i += 2) {
            Utf8Ranges.split(ranges[i], ranges[i + 1], options);
        }
        if (options.isEmpty()) {
            throw new GrammarException("empty character class");
        }
        return mergeSingleBytes(options);
    }

    /** Complement of code-point ranges (sorted or not) over all of Unicode. */
    public static int[] complement(int[] ranges) {
        BitSet in = new BitSet(0x110000);
        for (int i = 0; i < ranges.length; i += 2) {
            in.set(ranges[i], ranges[i + 1] + 1);
        }
        List<Integer> out = new ArrayList<>();
        int cp = in.nextClearBit(0);
        while (cp <= 0x10FFFF) {
            int end = Math.min(in.nextSetBit(cp) < 0 ? 0x110000 : in.nextSetBit(cp), 0x110000) - 1;
            out.add(cp);
            out.add(end);
            cp = in.nextClearBit(end + 1);
        }
        return out.stream().mapToInt(Integer::intValue).toArray();
    }

    private static Expr mergeSingleBytes(List<Expr> options) {
        long[] single = new long[4];
        boolean any = false;
        List<Expr> rest = new ArrayList<>();
        for (Expr e : options) {
            if (e instanceof Bytes b) {
                for (int i = 0; i < 4; i++) {
                    single[i] |= b.set()[i];
                }
                any = true;
            } else {
                rest.add(e);
            }
        }
        if (any) {
            rest.addFirst(new Bytes(single));
        }
        return alt(rest);
    }

    // ------------------------------------------------------------------ building

    /** Collects rules by name, then {@link #build()}s the grammar rooted at {@code root}. */
    public static final class Builder {
        private final Map<String, Expr> rules = new LinkedHashMap<>();

        public Builder rule(String name, Expr body) {
            if (rules.putIfAbsent(name, body) != null) {
                throw new GrammarException("rule '" + name + "' is defined twice");
            }
            return this;
        }

        public boolean has(String name) {
            return rules.containsKey(name);
        }

        public Grammar build() {
            if (!rules.containsKey("root")) {
                throw new GrammarException("the grammar has no 'root' rule");
            }
            return new Compiler(rules).compile();
        }
    }

    private static final class Compiler {
        private final Map<String, Expr> source;
        private final Map<String, Integer> ids = new HashMap<>();
        private final List<String> names = new ArrayList<>();
        private final List<List<List<int[]>>> bodies = new ArrayList<>(); // rule → alternatives → (kind, arg)
        private final List<long[]> sets = new ArrayList<>();
        private final Map<String, Integer> setIds = new HashMap<>();
        private final List<String> tokens = new ArrayList<>();

        Compiler(Map<String, Expr> source) {
            this.source = source;
        }

        Grammar compile() {
            for (String n : source.keySet()) {
                id(n);
            }
            for (Map.Entry<String, Expr> e : source.entrySet()) {
                bodies.set(ids.get(e.getKey()), alternativesOf(e.getValue()));
            }
            int n = names.size();
            List<Integer> kinds = new ArrayList<>(), args = new ArrayList<>();
            int[][] alts = new int[n][];
            for (int r = 0; r < n; r++) {
                List<List<int[]>> body = bodies.get(r);
                if (body == null) {
                    throw new GrammarException("rule '" + names.get(r) + "' is used but not defined");
                }
                alts[r] = new int[body.size()];
                for (int a = 0; a < body.size(); a++) {
                    alts[r][a] = kinds.size();
                    for (int[] el : body.get(a)) {
                        kinds.add(el[0]);
                        args.add(el[1]);
                    }
                    kinds.add(END);
                    args.add(0);
                }
            }
            Grammar g = new Grammar(kinds.stream().mapToInt(Integer::intValue).toArray(),
                    args.stream().mapToInt(Integer::intValue).toArray(), alts, sets.toArray(long[][]::new), tokens,
                    ids.get("root"), names);
            Checks.run(g);
            return g;
        }

        private int id(String name) {
            Integer id = ids.get(name);
            if (id == null) {
                id = names.size();
                ids.put(name, id);
                names.add(name);
                bodies.add(null);
            }
            return id;
        }

        private int helper(String hint, List<List<int[]>> body) {
            int r = id("_" + hint + names.size());
            bodies.set(r, body);
            return r;
        }

        private List<List<int[]>> alternativesOf(Expr e) {
            List<List<int[]>> out = new ArrayList<>();
            if (e instanceof Alt a) {
                for (Expr o : a.options()) {
                    out.addAll(alternativesOf(o));
                }
            } else {
                List<int[]> seq = new ArrayList<>();
                append(e, seq);
                out.add(seq);
            }
            return out;
        }

        private void append(Expr e, List<int[]> seq) {
            switch (e) {
                case Bytes b -> seq.add(new int[] {BYTES, setId(b.set())});
                case Seq s -> s.items().forEach(x -> append(x, seq));
                case Ref r -> seq.add(new int[] {REF, id(r.rule())});
                case Token t -> {
                    int k = tokens.indexOf(t.text());
                    if (k < 0) {
                        k = tokens.size();
                        tokens.add(t.text());
                    }
                    seq.add(new int[] {TOKEN, k});
                }
                case Alt a -> seq.add(new int[] {REF, helper("alt", alternativesOf(a))});
                case Repeat rep -> appendRepeat(rep, seq);
            }
        }

        private void appendRepeat(Repeat rep, List<int[]> seq) {
            List<int[]> item = new ArrayList<>();
            append(rep.item(), item);
            for (int i = 0; i < rep.min(); i++) {
                seq.addAll(item);
            }
            if (rep.max() < 0) {
                // tail ::= item tail | ε  (right recursion: the matcher never expands it without consuming)
                int tail = id("_star" + names.size());
                List<int[]> more = new ArrayList<>(item);
                more.add(new int[] {REF, tail});
                bodies.set(tail, List.of(more, List.of()));
                seq.add(new int[] {REF, tail});
            } else if (rep.max() > rep.min()) {
                // opt_k ::= item opt_{k-1} | ε, nested (max - min) deep
                int next = -1;
                for (int k = 0; k < rep.max() - rep.min(); k++) {
                    List<int[]> some = new ArrayList<>(item);
                    if (next >= 0) {
                        some.add(new int[] {REF, next});
                    }
                    next = helper("opt", List.of(some, List.of()));
                }
                seq.add(new int[] {REF, next});
            }
        }

        private int setId(long[] set) {
            String key = Arrays.toString(set);
            return setIds.computeIfAbsent(key, k -> {
                sets.add(set.clone());
                return sets.size() - 1;
            });
        }
    }

    /** Refusals for grammars the matcher cannot run safely. */
    private static final class Checks {
        static void run(Grammar g) {
            int n = g.ruleCount();
            boolean[] nullable = new boolean[n];
            boolean[] productive = new boolean[n];
            boolean changed = true;
            while (changed) {
                changed = false;
                for (int r = 0; r < n; r++) {
                    for (int start : g.alternatives[r]) {
                        boolean nul = true, prod = true;
                        for (int p = start; g.kind[p] != END; p++) {
                            if (g.kind[p] == REF) {
                                nul &= nullable[g.arg[p]];
                                prod &= productive[g.arg[p]];
                            } else {
                                nul = false;
                                if (g.kind[p] == BYTES && isEmptySet(g.byteSets[g.arg[p]])) {
                                    prod = false;
                                }
                            }
                        }
                        if (nul && !nullable[r]) {
                            nullable[r] = true;
                            changed = true;
                        }
                        if (prod && !productive[r]) {
                            productive[r] = true;
                            changed = true;
                        }
                    }
                }
            }
            for (int r = 0; r < n; r++) {
                if (!productive[r]) {
                    throw new GrammarException("rule '" + g.ruleName(r) + "' can never finish (every alternative recurses or matches nothing)");
                }
            }
            // left recursion: a rule reachable from itself through leftmost (possibly after nullable) references
            List<List<Integer>> left = new ArrayList<>();
            for (int r = 0; r < n; r++) {
                List<Integer> l = new ArrayList<>();
                for (int start : g.alternatives[r]) {
                    for (int p = start; g.kind[p] == REF; p++) {
                        l.add(g.arg[p]);
                        if (!nullable[g.arg[p]]) {
                            break;
                        }
                    }
                }
                left.add(l);
            }
            int[] color = new int[n];
            for (int r = 0; r < n; r++) {
                if (color[r] == 0) {
                    leftCycle(r, left, color, g);
                }
            }
        }

        private static void leftCycle(int r, List<List<Integer>> left, int[] color, Grammar g) {
            color[r] = 1;
            for (int s : left.get(r)) {
                if (color[s] == 1) {
                    throw new GrammarException("rule '" + g.ruleName(s) + "' is left-recursive (it can expand to itself without consuming input); "
                            + "write the repetition with * or + instead");
                }
                if (color[s] == 0) {
                    leftCycle(s, left, color, g);
                }
            }
            color[r] = 2;
        }

        private static boolean isEmptySet(long[] s) {
            return (s[0] | s[1] | s[2] | s[3]) == 0;
        }
    }
}
