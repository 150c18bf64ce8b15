package internlm.engine.grammar;

import java.util.ArrayList;
import java.util.List;

import static internlm.engine.grammar.Grammar.ref;

/**
 * A small grammar notation (the one llama.cpp's GBNF made familiar), for {@code --grammar FILE}:
 * <pre>
 * root   ::= answer "." | "no"            # rules: name ::= alternatives; the start rule is root
 * answer ::= [a-z]+ ( " " [a-z]+ ){0,3}   # literals "…", classes [a-z] [^"\\], groups, * + ? {m} {m,} {m,n}
 * tool   ::= &lt;|action_start|&gt; "x"        # a control token, matched as that one token
 * </pre>
 * Escapes in literals and classes: {@code \n \r \t \\ \" \] \- \xHH \\uHHHH}. {@code .} is any character. Comments
 * run from {@code #} to the end of the line. Errors name the line and column.
 */
public final class GrammarSyntax {
    private final String src;
    private int pos;

    private GrammarSyntax(String src) {
        this.src = src;
    }

    public static Grammar parse(String text) {
        return new GrammarSyntax(text).grammar();
    }

    private Grammar grammar() {
        Grammar.Builder b = new Grammar.Builder();
        skip();
        if (pos >= src.length()) {
            throw error("the grammar is empty");
        }
        while (pos < src.length()) {
            String name = name();
            if (name == null) {
                throw error("expected a rule name");
            }
            skip();
            if (!src.startsWith("::=", pos)) {
                throw error("expected '::=' after rule name '" + name + "'");
            }
            pos += 3;
            Grammar.Expr body = alternatives(false);
            try {
                b.rule(name, body);
            } catch (GrammarException e) {
                throw error(e.getMessage());
            }
        }
        return b.build();
    }

    private Grammar.Expr alternatives(boolean nested) {
        List<Grammar.Expr> opts = new ArrayList<>();
        opts.add(sequence(nested));
        while (true) {
            skip();
            if (pos < src.length() && src.charAt(pos) == '|') {
                pos++;
                opts.add(sequence(nested));
            } else {
                return Grammar.alt(opts);
            }
        }
    }

    private Grammar.Expr sequence(boolean nested) {
        List<Grammar.Expr> items = new ArrayList<>();
        while (true) {
            skip();
            if (pos >= src.length()) {
                break;
            }
            char c = src.charAt(pos);
            if (c == '|' || c == ')') {
                break;
            }
            if (!nested && startsRule()) {
                break;
            }
            Grammar.Expr item = item();
            items.add(postfix(item));
        }
        return items.size() == 1 ? items.getFirst() : new Grammar.Seq(items);
    }

    private boolean startsRule() {
        int save = pos;
        String n = name();
        skip();
        boolean r = n != null && src.startsWith("::=", pos);
        pos = save;
        return r;
    }

    private Grammar.Expr item() {
        char c = src.charAt(pos);
        switch (c) {
            case '"' -> {
                pos++;
                StringBuilder sb = new StringBuilder();
                while (true) {
                    if (pos >= src.length()) {
                        throw error("unterminated string literal");
                    }
                    char d = src.charAt(pos);
                    if (d == '"') {
                        pos++;
                        break;
                    }
                    sb.appendCodePoint(d == '\\' ? escape() : nextCodePoint());
                }
                if (sb.isEmpty()) {
                    return Grammar.empty();
                }
                return Grammar.literal(sb.toString());
            }
            case '[' -> {
                return charClass();
            }
            case '(' -> {
                pos++;
                Grammar.Expr e = alternatives(true);
                skip();
                if (pos >= src.length() || src.charAt(pos) != ')') {
                    throw error("expected ')'");
                }
                pos++;
                return e;
            }
            case '.' -> {
                pos++;
                return Grammar.chars(new int[] {0, 0x10FFFF});
            }
            case '<' -> {
                int end = src.indexOf('>', pos);
                if (!src.startsWith("<|", pos) || end < 0 || src.charAt(end - 1) != '|') {
                    throw error("expected a control token such as <|action_start|>");
                }
                String t = src.substring(pos, end + 1);
                pos = end + 1;
                return new Grammar.Token(t);
            }
            default -> {
                String n = name();
                if (n == null) {
                    throw error("unexpected character '" + c + "'");
                }
                return ref(n);
            }
        }
    }

    private Grammar.Expr postfix(Grammar.Expr e) {
        while (pos < src.length()) {
            char c = src.charAt(pos);
            if (c == '*') {
                pos++;
                e = Grammar.star(e);
            } else if (c == '+') {
                pos++;
                e = Grammar.repeat(e, 1, -1);
            } else if (c == '?') {
                pos++;
                e = Grammar.optional(e);
            } else if (c == '{') {
                pos++;
                int min = number();
                int max = min;
                if (pos < src.length() && src.charAt(pos) == ',') {
                    pos++;
                    max = pos < src.length() && Character.isDigit(src.charAt(pos)) ? number() : -1;
                }
                if (pos >= src.length() || src.charAt(pos) != '}') {
                    throw error("expected '}' to close the repetition count");
                }
                pos++;
                if (max >= 0 && max < min) {
                    throw error("repetition {" + min + "," + max + "} has max < min");
                }
                if (Math.max(min, max) > 10_000) {
                    throw error("repetition count above 10000");
                }
                e = Grammar.repeat(e, min, max);
            } else {
                break;
            }
        }
        return e;
    }

    private int number() {
        int start = pos;
        while (pos < src.length() && Character.isDigit(src.charAt(pos))) {
            pos++;
        }
        if (start == pos || pos - start > 6) {
            throw error("expected a repetition count");
        }
        return Integer.parseInt(src.substring(start, pos));
    }

    private Grammar.Expr charClass() {
        pos++; // [
        boolean negate = pos < src.length() && src.charAt(pos) == '^';
        if (negate) {
            pos++;
        }
        List<Integer> ranges = new ArrayList<>();
        while (true) {
            if (pos >= src.length()) {
                throw error("unterminated character class");
            }
            if (src.charAt(pos) == ']') {
                pos++;
                break;
            }
            int lo = classChar();
            int hi = lo;
            if (pos + 1 < src.length() && src.charAt(pos) == '-' && src.charAt(pos + 1) != ']') {
                pos++;
                hi = classChar();
                if (hi < lo) {
                    throw error("character range out of order");
                }
            }
            ranges.add(lo);
            ranges.add(hi);
        }
        int[] r = ranges.stream().mapToInt(Integer::intValue).toArray();
        if (negate) {
            r = Grammar.complement(r);
        }
        if (r.length == 0) {
            throw error("the character class matches nothing");
        }
        return Grammar.chars(r);
    }

    private int classChar() {
        return src.charAt(pos) == '\\' ? escape() : nextCodePoint();
    }

    private int nextCodePoint() {
        int cp = src.codePointAt(pos);
        pos += Character.charCount(cp);
        return cp;
    }

    private int escape() {
        pos++; // backslash
        if (pos >= src.length()) {
            throw error("unfinished escape");
        }
        char c = src.charAt(pos++);
        return switch (c) {
            case 'n' -> '\n';
            case 'r' -> '\r';
            case 't' -> '\t';
            case 'x' -> hex(2);
            case 'u' -> hex(4);
            case 'U' -> hex(8);
            case '\\', '"', ']', '[', '-', '^' -> c;
            default -> throw error("unknown escape \\" + c);
        };
    }

    private int hex(int n) {
        if (pos + n > src.length()) {
            throw error("expected " + n + " hex digits");
        }
        try {
            int v = Integer.parseInt(src.substring(pos, pos + n), 16);
            pos += n;
            if (v > 0x10FFFF) {
                throw error("code point out of range");
            }
            return v;
        } catch (NumberFormatException e) {
            throw error("expected " + n + " hex digits");
        }
    }

    private String name() {
        int start = pos;
        while (pos < src.length() && (Character.isLetterOrDigit(src.charAt(pos)) || src.charAt(pos) == '-' || src.charAt(pos) == '_')) {
            pos++;
        }
        return pos > start ? src.substring(start, pos) : null;
    }

    private void skip() {
        while (pos < src.length()) {
            char c = src.charAt(pos);
            if (c == '#') {
                while (pos < src.length() && src.charAt(pos) != '\n') {
                    pos++;
                }
            } else if (Character.isWhitespace(c)) {
                pos++;
            } else {
                return;
            }
        }
    }

    private GrammarException error(String msg) {
        int line = 1, col = 1;
        for (int i = 0; i < Math.min(pos, src.length()); i++) {
            if (src.charAt(i) == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
        return new GrammarException("grammar line " + line + ", column " + col + ": " + msg);
    }
}
