package internlm.engine.grammar;

import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/** The grammar notation, the compiler's refusals, UTF-8 classes and control tokens, checked through a matcher. */
class GrammarTest {
    /** Whether the grammar matches exactly {@code text} (fed byte by byte through single-byte tokens). */
    static boolean matches(Grammar g, String text) {
        ConstrainedWalk w = new ConstrainedWalk();
        GrammarMatcher m = w.constraint(g).matcher(new int[] {w.endToken});
        for (byte b : text.getBytes(StandardCharsets.UTF_8)) {
            int t = b & 0xff; // token t is the single byte t
            if (!m.allows(t)) {
                return false;
            }
            m.accept(t);
        }
        return m.complete() && m.allows(w.endToken);
    }

    @Test
    void notationLiteralsClassesGroupsAndRepetition() {
        Grammar g = GrammarSyntax.parse("""
                # a comment
                root ::= answer " " digit{2} ( "!" | "?" )?
                answer ::= "yes" | "no" | [a-z]+ ( "-" [a-z]+ )*
                digit ::= [0-9]
                """);
        for (String ok : List.of("yes 42", "no 00!", "well-then-ok 17?", "x 99")) {
            assertTrue(matches(g, ok), ok);
        }
        for (String bad : List.of("yes 4", "yes 421", "Yes 42", "yes  42", "-a 11", "a- 11", "yes 42!!", "")) {
            assertFalse(matches(g, bad), bad);
        }
    }

    @Test
    void boundedAndOpenRepetitionCounts() {
        Grammar g = GrammarSyntax.parse("root ::= \"a\"{2,4} \"b\"{3} \"c\"{1,}");
        assertTrue(matches(g, "aabbbc"));
        assertTrue(matches(g, "aaaabbbccccc"));
        assertFalse(matches(g, "abbbc"));
        assertFalse(matches(g, "aaaaabbbc"));
        assertFalse(matches(g, "aabbc"));
        assertFalse(matches(g, "aabbb"));
    }

    @Test
    void negatedClassesAndEscapesAreUnicodeAware() {
        Grammar g = GrammarSyntax.parse("root ::= \"\\\"\" [^\"\\\\\\n]* \"\\\"\" [\\u00e9\\x41-\\x43]");
        assertTrue(matches(g, "\"héllo 日本 😀\"é"));
        assertTrue(matches(g, "\"\"B"));
        assertFalse(matches(g, "\"a\nb\"A"), "newline excluded");
        assertFalse(matches(g, "\"a\"D"));
        assertFalse(matches(g, "\"a\\\"A"), "backslash excluded");
        // a class of code points accepts exactly their UTF-8 encodings: check random code points against the class
        Grammar cjk = GrammarSyntax.parse("root ::= [\\u4e00-\\u9fff\\U0001F600-\\U0001F64F]");
        SplittableRandom r = new SplittableRandom(1);
        for (int i = 0; i < 300; i++) {
            int cp = r.nextInt(0x1FFFF);
            if (cp >= 0xD800 && cp <= 0xDFFF) {
                continue;
            }
            boolean in = (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x1F600 && cp <= 0x1F64F);
            assertEquals(in, matches(cjk, new String(Character.toChars(cp))), Integer.toHexString(cp));
        }
    }

    @Test
    void dotMatchesAnyWholeCharacter() {
        Grammar g = GrammarSyntax.parse("root ::= . .");
        assertTrue(matches(g, "aé"));
        assertTrue(matches(g, "😀日"));
        assertFalse(matches(g, "abc"));
        // a lone continuation byte is never a character
        ConstrainedWalk w = new ConstrainedWalk();
        assertFalse(w.constraint(g).matcher(new int[] {w.endToken}).allows(0x80));
    }

    @Test
    void refusalsNameTheProblem() {
        assertMessage("left-recursive", "root ::= root \"x\" | \"y\"");
        assertMessage("left-recursive", "root ::= a\na ::= b? root \"x\" | \"z\"\nb ::= \"q\"");
        assertMessage("never finish", "root ::= \"a\" root");
        assertMessage("not defined", "root ::= missing");
        assertMessage("no 'root'", "start ::= \"a\"");
        assertMessage("defined twice", "root ::= \"a\"\nroot ::= \"b\"");
        assertMessage("line 2", "root ::= \"a\"\n  ( \"b\" ");
        assertMessage("unterminated", "root ::= \"abc");
        assertMessage("max < min", "root ::= \"a\"{3,1}");
        assertMessage("unknown escape", "root ::= \"\\q\"");
    }

    private static void assertMessage(String part, String grammar) {
        GrammarException e = assertThrows(GrammarException.class, () -> GrammarSyntax.parse(grammar), grammar);
        assertTrue(e.getMessage().contains(part), e.getMessage());
    }

    @Test
    void controlTokensAreMatchedAsWholeTokensOnly() {
        Grammar g = GrammarSyntax.parse("root ::= <|start|> \"ab\" <|end|>");
        assertEquals(List.of("<|start|>", "<|end|>"), g.controlTokens());
        ConstrainedWalk w = new ConstrainedWalk();
        int start = 1000, end = 1001;
        List<byte[]> v = new ArrayList<>(java.util.Arrays.asList(w.bytes));
        while (v.size() < 1002) {
            v.add(null);
        }
        TokenConstraint c = TokenConstraint.of(g, TokenTrie.ofBytes(v.toArray(byte[][]::new)), new int[] {start, end}, "t");
        GrammarMatcher m = c.matcher(new int[] {w.endToken});
        assertTrue(m.allows(start));
        assertFalse(m.allows('<'), "the text of a control token is not the token");
        m.accept(start);
        m.accept('a');
        assertFalse(m.allows(end));
        m.accept('b');
        assertTrue(m.allows(end));
        assertFalse(m.complete());
        m.accept(end);
        assertTrue(m.complete());
        assertThrows(IllegalStateException.class, () -> m.accept('a'));
    }

    @Test
    void multiByteTokensNeedEveryByteAllowed() {
        ConstrainedWalk w = new ConstrainedWalk();
        Grammar g = GrammarSyntax.parse("root ::= \"tru\" \"e\" | \"nul\"");
        GrammarMatcher m = w.constraint(g).matcher(new int[] {w.endToken});
        int trueToken = -1, nullToken = -1;
        for (int t = 256; t < w.bytes.length; t++) {
            if (w.bytes[t] != null && new String(w.bytes[t], StandardCharsets.UTF_8).equals("true")) {
                trueToken = t;
            }
            if (w.bytes[t] != null && new String(w.bytes[t], StandardCharsets.UTF_8).equals("null")) {
                nullToken = t;
            }
        }
        assertTrue(m.allows(trueToken), "\"true\" as one token");
        assertFalse(m.allows(nullToken), "\"null\" runs past what the grammar allows");
        assertFalse(m.allows(w.endToken), "not complete yet");
        m.accept(trueToken);
        assertTrue(m.complete());
        long[] allowed = m.allowed();
        int count = 0;
        for (long x : allowed) {
            count += Long.bitCount(x);
        }
        assertEquals(1, count, "only the end token is left");
    }

    @Test
    void longRepetitionsKeepTheAutomatonSmall() {
        // right recursion must not grow the stack: 5000 characters of a string reach a handful of states
        Grammar g = JsonSchemaGrammar.anyObject();
        ConstrainedWalk w = new ConstrainedWalk();
        GrammarMatcher m = w.constraint(g).matcher(new int[] {w.endToken});
        for (byte b : "{\"k\": \"".getBytes(StandardCharsets.UTF_8)) {
            m.accept(b & 0xff);
        }
        for (int i = 0; i < 5000; i++) {
            m.accept('a' + i % 26);
            m.allowed();
        }
        assertTrue(m.states() < 50, m.states() + " states");
    }
}
