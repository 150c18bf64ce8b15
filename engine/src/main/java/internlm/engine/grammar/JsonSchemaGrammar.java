package internlm.engine.grammar;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static internlm.engine.grammar.Grammar.alt;
import static internlm.engine.grammar.Grammar.literal;
import static internlm.engine.grammar.Grammar.optional;
import static internlm.engine.grammar.Grammar.ref;
import static internlm.engine.grammar.Grammar.repeat;
import static internlm.engine.grammar.Grammar.seq;
import static internlm.engine.grammar.Grammar.star;

/**
 * Grammars for JSON: any JSON value or object, or the JSON texts valid under a JSON Schema. The schema subset is
 * what clients send for structured output: {@code type} (object, array, string, number, integer, boolean, null, or
 * a list of them), {@code properties}, {@code required}, {@code additionalProperties} (false, true or a schema),
 * {@code enum}, {@code const}, {@code items}, {@code minItems}/{@code maxItems}, {@code minLength}/{@code maxLength},
 * {@code anyOf}, {@code $ref} into {@code $defs}/{@code definitions} (recursion included); annotations (title,
 * description, default, examples, …) are ignored. Any other keyword is refused with its name, since the output
 * could otherwise break it.
 *
 * <p>Objects are written with their required properties first, then the optional ones, each in the schema's order;
 * properties outside {@code properties} are never generated. Whitespace between tokens is limited (a space, or a
 * newline and up to 20 spaces/tabs), integers to 15 digits (exact as a double, as JavaScript clients read them; a long in Java), fractions to 16, so a model cannot run on in padding or digits.
 */
public final class JsonSchemaGrammar {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Set<String> ANNOTATIONS = Set.of("title", "description", "default", "examples", "$schema", "$id",
            "$comment", "deprecated", "readOnly", "writeOnly", "$defs", "definitions", "strict", "name");

    private final Grammar.Builder b;
    private final JsonNode root;
    private final String prefix;
    private final Map<String, String> refRules = new HashMap<>();
    private int counter;

    private JsonSchemaGrammar(Grammar.Builder b, JsonNode root, String prefix) {
        this.b = b;
        this.root = root;
        this.prefix = prefix;
        if (!b.has("json-value")) {
            commonInto(b);
        }
    }

    /** Any JSON object (OpenAI's {@code response_format: json_object}). */
    public static Grammar anyObject() {
        Grammar.Builder b = new Grammar.Builder();
        new JsonSchemaGrammar(b, JsonNodeFactory.instance.objectNode(), "");
        b.rule("root", ref("object"));
        return b.build();
    }

    /** JSON texts valid under {@code schema}. */
    public static Grammar of(JsonNode schema) {
        Grammar.Builder b = new Grammar.Builder();
        String r = into(b, schema, "");
        b.rule("root", ref(r));
        return b.build();
    }

    /**
     * Adds the rules for {@code schema} to {@code builder} (the shared JSON rules once, the schema's own under
     * names starting with {@code prefix}) and returns the name of the rule matching the schema's values.
     */
    public static String into(Grammar.Builder builder, JsonNode schema, String prefix) {
        return new JsonSchemaGrammar(builder, schema, prefix).schema(schema, "#");
    }

    private Grammar.Builder builder() {
        return b;
    }

    private static void commonInto(Grammar.Builder b) {
        b.rule("ws", optional(alt(literal(" "), seq(literal("\n"), repeat(Grammar.chars(new int[] {' ', ' ', '\t', '\t'}), 0, 20)))));
        Grammar.Expr hex = Grammar.chars(new int[] {'0', '9', 'a', 'f', 'A', 'F'});
        // \\u escapes of surrogates are left out: a lone one is not a character
        Grammar.Expr hexNoSurrogate = alt(seq(Grammar.chars(new int[] {'0', '9', 'a', 'c', 'A', 'C', 'e', 'f', 'E', 'F'}), hex, hex, hex),
                seq(Grammar.chars(new int[] {'d', 'd', 'D', 'D'}), Grammar.chars(new int[] {'0', '7'}), hex, hex));
        b.rule("json-char", alt(Grammar.chars(Grammar.complement(new int[] {'"', '"', '\\', '\\', 0, 0x1F})),
                seq(literal("\\"), alt(Grammar.chars(new int[] {'"', '"', '\\', '\\', '/', '/', 'b', 'b', 'f', 'f', 'n', 'n', 'r', 'r', 't', 't'}),
                        seq(literal("u"), hexNoSurrogate)))));
        b.rule("string", seq(literal("\""), star(ref("json-char")), literal("\"")));
        Grammar.Expr digit = Grammar.chars(new int[] {'0', '9'});
        b.rule("integer", seq(optional(literal("-")), alt(literal("0"), seq(Grammar.chars(new int[] {'1', '9'}), repeat(digit, 0, 14)))));
        b.rule("number", seq(ref("integer"), optional(seq(literal("."), repeat(digit, 1, 16))),
                optional(seq(Grammar.chars(new int[] {'e', 'e', 'E', 'E'}), optional(Grammar.chars(new int[] {'-', '-', '+', '+'})), repeat(digit, 1, 2)))));
        b.rule("boolean", alt(literal("true"), literal("false")));
        b.rule("null", literal("null"));
        b.rule("json-value", alt(ref("object"), ref("array"), ref("string"), ref("number"), ref("boolean"), ref("null")));
        b.rule("member", seq(ref("string"), ref("ws"), literal(":"), ref("ws"), ref("json-value"), ref("ws")));
        b.rule("object", seq(literal("{"), ref("ws"), optional(seq(ref("member"), star(seq(literal(","), ref("ws"), ref("member"))))), literal("}")));
        b.rule("array", seq(literal("["), ref("ws"), optional(seq(ref("json-value"), ref("ws"),
                star(seq(literal(","), ref("ws"), ref("json-value"), ref("ws"))))), literal("]")));
    }

    private String fresh(String hint) {
        return prefix + hint + "-" + (counter++);
    }

    private String define(String hint, Grammar.Expr body) {
        String name = fresh(hint);
        builder().rule(name, body);
        return name;
    }

    /** The rule for a schema at JSON pointer {@code where} (for messages). */
    private String schema(JsonNode s, String where) {
        if (s.isBoolean()) {
            if (!s.booleanValue()) {
                throw new GrammarException("the schema at " + where + " is false: no value is valid");
            }
            return "json-value";
        }
        if (!s.isObject()) {
            throw new GrammarException("the schema at " + where + " must be an object or a boolean");
        }
        for (Iterator<String> it = s.fieldNames(); it.hasNext(); ) {
            String k = it.next();
            if (!ANNOTATIONS.contains(k) && !KNOWN.contains(k)) {
                throw new GrammarException("unsupported JSON Schema keyword '" + k + "' at " + where
                        + " (supported: type, properties, required, additionalProperties, enum, const, items, minItems, maxItems, "
                        + "minLength, maxLength, anyOf, $ref with $defs)");
            }
        }
        if (s.has("$ref")) {
            if (s.size() > 1 && hasAssertionsBesides(s, "$ref")) {
                throw new GrammarException("$ref beside other keywords is not supported (at " + where + ")");
            }
            return resolveRef(s.get("$ref").asText(), where);
        }
        if (s.has("const")) {
            return define("const", literal(compact(s.get("const"))));
        }
        if (s.has("enum")) {
            JsonNode e = s.get("enum");
            if (!e.isArray() || e.isEmpty()) {
                throw new GrammarException("enum at " + where + " must be a non-empty array");
            }
            List<Grammar.Expr> opts = new ArrayList<>();
            for (JsonNode v : e) {
                if (typesAllow(s, v)) {
                    opts.add(literal(compact(v)));
                }
            }
            if (opts.isEmpty()) {
                throw new GrammarException("no enum value at " + where + " has the schema's type");
            }
            return define("enum", alt(opts));
        }
        if (s.has("anyOf")) {
            JsonNode a = s.get("anyOf");
            if (!a.isArray() || a.isEmpty()) {
                throw new GrammarException("anyOf at " + where + " must be a non-empty array");
            }
            if (hasAssertionsBesides(s, "anyOf")) {
                throw new GrammarException("anyOf beside other keywords is not supported (at " + where + "); put them inside each branch");
            }
            List<Grammar.Expr> opts = new ArrayList<>();
            for (int i = 0; i < a.size(); i++) {
                opts.add(ref(schema(a.get(i), where + "/anyOf/" + i)));
            }
            return define("anyof", alt(opts));
        }
        List<String> types = types(s, where);
        List<Grammar.Expr> opts = new ArrayList<>();
        for (String t : types) {
            opts.add(ref(switch (t) {
                case "object" -> object(s, where);
                case "array" -> array(s, where);
                case "string" -> string(s, where);
                case "number" -> "number";
                case "integer" -> "integer";
                case "boolean" -> "boolean";
                case "null" -> "null";
                default -> throw new GrammarException("unknown type '" + t + "' at " + where);
            }));
        }
        return opts.size() == 1 ? ((Grammar.Ref) opts.getFirst()).rule() : define("types", alt(opts));
    }

    private static final Set<String> KNOWN = Set.of("type", "properties", "required", "additionalProperties", "enum", "const",
            "items", "minItems", "maxItems", "minLength", "maxLength", "anyOf", "$ref");

    private static boolean hasAssertionsBesides(JsonNode s, String key) {
        for (Iterator<String> it = s.fieldNames(); it.hasNext(); ) {
            String k = it.next();
            if (!k.equals(key) && KNOWN.contains(k)) {
                return true;
            }
        }
        return false;
    }

    private List<String> types(JsonNode s, String where) {
        JsonNode t = s.get("type");
        if (t == null) {
            if (s.has("properties") || s.has("additionalProperties") || s.has("required")) {
                return List.of("object");
            }
            if (s.has("items") || s.has("minItems") || s.has("maxItems")) {
                return List.of("array");
            }
            if (s.has("minLength") || s.has("maxLength")) {
                return List.of("string");
            }
            return List.of("object", "array", "string", "number", "boolean", "null");
        }
        if (t.isTextual()) {
            return List.of(t.asText());
        }
        if (t.isArray() && !t.isEmpty()) {
            Set<String> out = new LinkedHashSet<>();
            for (JsonNode x : t) {
                out.add(x.asText());
            }
            if (out.contains("number")) {
                out.remove("integer");
            }
            return List.copyOf(out);
        }
        throw new GrammarException("type at " + where + " must be a string or a non-empty array of strings");
    }

    private boolean typesAllow(JsonNode s, JsonNode v) {
        if (!s.has("type")) {
            return true;
        }
        List<String> ts = types(s, "");
        String t = v.isObject() ? "object" : v.isArray() ? "array" : v.isTextual() ? "string" : v.isIntegralNumber() ? "integer"
                : v.isNumber() ? "number" : v.isBoolean() ? "boolean" : "null";
        return ts.contains(t) || (t.equals("integer") && ts.contains("number"));
    }

    private String resolveRef(String target, String where) {
        String done = refRules.get(target);
        if (done != null) {
            return done;
        }
        if (!target.startsWith("#")) {
            throw new GrammarException("only local $ref (#/...) is supported, got '" + target + "' at " + where);
        }
        JsonNode t = root.at(target.substring(1));
        if (t.isMissingNode()) {
            throw new GrammarException("$ref '" + target + "' at " + where + " points nowhere");
        }
        // name the rule before compiling its body so that recursive references find it
        String name = fresh("ref");
        refRules.put(target, name);
        String body = schema(t, target);
        builder().rule(name, ref(body));
        return name;
    }

    private String object(JsonNode s, String where) {
        JsonNode props = s.get("properties");
        JsonNode additional = s.get("additionalProperties");
        JsonNode required = s.get("required");
        boolean closed = additional != null && additional.isBoolean() && !additional.booleanValue();
        if ((props == null || props.isEmpty()) && (required == null || required.isEmpty())) {
            if (closed) {
                return define("empty-object", seq(literal("{"), ref("ws"), literal("}")));
            }
            if (additional != null && additional.isObject()) {
                String v = schema(additional, where + "/additionalProperties");
                String member = define("member", seq(ref("string"), ref("ws"), literal(":"), ref("ws"), ref(v), ref("ws")));
                return define("map", seq(literal("{"), ref("ws"), optional(seq(ref(member), star(seq(literal(","), ref("ws"), ref(member))))), literal("}")));
            }
            return "object";
        }
        Set<String> req = new LinkedHashSet<>();
        if (required != null) {
            if (!required.isArray()) {
                throw new GrammarException("required at " + where + " must be an array");
            }
            required.forEach(r -> req.add(r.asText()));
        }
        List<String> names = new ArrayList<>();
        if (props != null) {
            props.fieldNames().forEachRemaining(names::add);
        }
        for (String r : req) {
            if (!names.contains(r)) {
                if (closed) {
                    throw new GrammarException("property '" + r + "' at " + where + " is required but not allowed (additionalProperties is false)");
                }
                names.add(r);
            }
        }
        List<Grammar.Expr> reqKv = new ArrayList<>(), optKv = new ArrayList<>();
        for (String n : req) {
            reqKv.add(ref(kv(n, props, where)));
        }
        for (String n : names) {
            if (!req.contains(n)) {
                optKv.add(ref(kv(n, props, where)));
            }
        }
        List<Grammar.Expr> body = new ArrayList<>();
        body.add(literal("{"));
        body.add(ref("ws"));
        for (int i = 0; i < reqKv.size(); i++) {
            if (i > 0) {
                body.add(literal(","));
                body.add(ref("ws"));
            }
            body.add(reqKv.get(i));
        }
        if (!optKv.isEmpty()) {
            if (reqKv.isEmpty()) {
                body.add(ref(optionalFirst(optKv, 0)));
            } else {
                body.add(ref(optionalAfter(optKv, 0)));
            }
        }
        body.add(literal("}"));
        return define("obj", new Grammar.Seq(body));
    }

    /** S_i: properties i.. with none written yet (kv_i T_{i+1} | S_{i+1} | ε). */
    private String optionalFirst(List<Grammar.Expr> kvs, int i) {
        if (i == kvs.size()) {
            return define("none", Grammar.empty());
        }
        String rest = optionalFirst(kvs, i + 1);
        Grammar.Expr first = i + 1 < kvs.size() ? seq(kvs.get(i), ref(optionalAfter(kvs, i + 1))) : kvs.get(i);
        return define("opt", alt(first, ref(rest)));
    }

    /** T_i: properties i.. after one was written (("," kv_i)? T_{i+1}). */
    private String optionalAfter(List<Grammar.Expr> kvs, int i) {
        List<Grammar.Expr> items = new ArrayList<>();
        for (int k = i; k < kvs.size(); k++) {
            items.add(optional(seq(literal(","), ref("ws"), kvs.get(k))));
        }
        return define("more", new Grammar.Seq(items));
    }

    private String kv(String name, JsonNode props, String where) {
        JsonNode p = props != null && props.has(name) ? props.get(name) : JsonNodeFactory.instance.booleanNode(true);
        String v = schema(p, where + "/properties/" + name);
        return define("kv", seq(literal(compact(JsonNodeFactory.instance.textNode(name))), ref("ws"), literal(":"), ref("ws"), ref(v), ref("ws")));
    }

    private String array(JsonNode s, String where) {
        JsonNode items = s.get("items");
        String item = items == null ? "json-value" : schema(items, where + "/items");
        int min = intKeyword(s, "minItems", 0, where);
        int max = s.has("maxItems") ? intKeyword(s, "maxItems", 0, where) : -1;
        if (max >= 0 && max < min) {
            throw new GrammarException("maxItems < minItems at " + where);
        }
        if (max == 0) {
            return define("empty-array", seq(literal("["), ref("ws"), literal("]")));
        }
        Grammar.Expr one = seq(ref(item), ref("ws"));
        Grammar.Expr more = seq(literal(","), ref("ws"), ref(item), ref("ws"));
        Grammar.Expr tail = repeat(more, Math.max(0, min - 1), max < 0 ? -1 : max - 1);
        Grammar.Expr elements = seq(one, tail);
        return define("arr", seq(literal("["), ref("ws"), min == 0 ? optional(elements) : elements, literal("]")));
    }

    private String string(JsonNode s, String where) {
        if (!s.has("minLength") && !s.has("maxLength")) {
            return "string";
        }
        int min = intKeyword(s, "minLength", 0, where);
        int max = s.has("maxLength") ? intKeyword(s, "maxLength", 0, where) : -1;
        if (max >= 0 && max < min) {
            throw new GrammarException("maxLength < minLength at " + where);
        }
        return define("str", seq(literal("\""), repeat(ref("json-char"), min, max), literal("\"")));
    }

    private static int intKeyword(JsonNode s, String k, int dflt, String where) {
        JsonNode v = s.get(k);
        if (v == null) {
            return dflt;
        }
        if (!v.canConvertToInt() || v.asInt() < 0 || !v.isIntegralNumber()) {
            throw new GrammarException(k + " at " + where + " must be a non-negative integer");
        }
        if (v.asInt() > 10_000) {
            throw new GrammarException(k + " at " + where + " is too large for a grammar (at most 10000)");
        }
        return v.asInt();
    }

    private static String compact(JsonNode v) {
        try {
            return JSON.writeValueAsString(v);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new GrammarException("cannot write " + v);
        }
    }
}
