package internlm.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import internlm.engine.chat.ChatTemplate;
import internlm.engine.grammar.Grammar;
import internlm.engine.grammar.GrammarException;
import internlm.engine.grammar.JsonSchemaGrammar;
import internlm.engine.grammar.TokenConstraint;
import internlm.engine.tokenizer.Tokenizer;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;

import static internlm.engine.grammar.Grammar.literal;
import static internlm.engine.grammar.Grammar.ref;
import static internlm.engine.grammar.Grammar.seq;

/**
 * Structured output requests as grammars: {@code response_format} ({@code json_object}, {@code json_schema}) and
 * a forced tool call ({@code tool_choice} {@code "required"} or a named function), the latter in InternLM's action
 * syntax {@code <|action_start|><|plugin|>\n{"name": …, "parameters": …}<|action_end|>} with the parameters
 * constrained by the function's schema.
 *
 * <p>A schema outside the supported subset is refused with 400 when the request says {@code strict}; otherwise its
 * values are only required to be JSON (objects for parameters), as a best effort like OpenAI's non-strict mode.
 */
final class Structured {
    private Structured() {}

    /** {@code tool_choice}: none, auto (the default), required (some call), or one named function. */
    record ToolChoice(String mode, String function) {
        static final ToolChoice AUTO = new ToolChoice("auto", null), NONE = new ToolChoice("none", null);

        boolean offered() {
            return !mode.equals("none");
        }

        boolean forced() {
            return mode.equals("required") || mode.equals("function");
        }
    }

    static ToolChoice toolChoice(ObjectNode body, Set<String> declared) {
        JsonNode c = Requests.field(body, "tool_choice");
        if (c == null) {
            return ToolChoice.AUTO;
        }
        if (c.isTextual()) {
            switch (c.textValue()) {
                case "auto":
                    return ToolChoice.AUTO;
                case "none":
                    return ToolChoice.NONE;
                case "required":
                    if (declared.isEmpty()) {
                        throw ApiException.invalid("tool_choice", "tool_choice \"required\" needs at least one function in 'tools'");
                    }
                    return new ToolChoice("required", null);
                default:
                    break;
            }
        } else if (c.isObject() && c.path("type").asText("").equals("function") && c.path("function").path("name").isTextual()) {
            String name = c.path("function").path("name").textValue();
            if (!declared.contains(name)) {
                throw ApiException.invalid("tool_choice", "tool_choice names function '" + name + "', which 'tools' does not declare");
            }
            return new ToolChoice("function", name);
        }
        throw ApiException.invalid("tool_choice", "'tool_choice' must be \"none\", \"auto\", \"required\" or "
                + "{\"type\": \"function\", \"function\": {\"name\": …}}, got " + (c.isTextual() ? "\"" + c.textValue() + "\"" : Requests.kind(c)));
    }

    /** The constraint {@code response_format} asks for, or null (absent or {@code text}). */
    static TokenConstraint responseFormat(ObjectNode body, Tokenizer tok) {
        JsonNode rf = Requests.field(body, "response_format");
        if (rf == null) {
            return null;
        }
        String type = rf.isObject() ? rf.path("type").asText(null) : null;
        if (type == null) {
            throw ApiException.invalid("response_format", "'response_format' must be an object with \"type\": \"text\", \"json_object\" or \"json_schema\"");
        }
        switch (type) {
            case "text":
                return null;
            case "json_object":
                return TokenConstraint.of(JsonSchemaGrammar.anyObject(), tok, "JSON object");
            case "json_schema": {
                JsonNode js = rf.get("json_schema");
                if (js == null || !js.isObject()) {
                    throw ApiException.invalid("response_format.json_schema", "response_format json_schema needs \"json_schema\": {\"name\": …, \"schema\": {…}}");
                }
                JsonNode schema = js.get("schema");
                if (schema == null) {
                    schema = JsonNodeFactory.instance.objectNode().put("type", "object");
                }
                boolean strict = js.path("strict").asBoolean(false);
                Grammar g = schemaGrammar(schema, strict, "response_format.json_schema.schema");
                return TokenConstraint.of(g, tok, "JSON schema" + (js.path("name").isTextual() ? " '" + js.path("name").textValue() + "'" : ""));
            }
            default:
                throw ApiException.invalid("response_format.type", "response_format type must be \"text\", \"json_object\" or \"json_schema\", got \"" + type + "\"");
        }
    }

    private static Grammar schemaGrammar(JsonNode schema, boolean strict, String param) {
        try {
            return JsonSchemaGrammar.of(schema);
        } catch (GrammarException e) {
            if (strict) {
                throw ApiException.invalid(param, "the schema cannot be enforced: " + e.getMessage(), "unsupported_schema");
            }
            return JsonSchemaGrammar.anyObject();
        }
    }

    /** A grammar for exactly one call of the chosen function(s), in InternLM's action syntax. */
    static TokenConstraint forcedCall(ArrayNode functions, ToolChoice choice, Tokenizer tok) {
        Grammar.Builder b = new Grammar.Builder();
        String anyObject = JsonSchemaGrammar.into(b, JsonNodeFactory.instance.objectNode().put("type", "object"), "any-");
        List<Grammar.Expr> calls = new ArrayList<>();
        for (int i = 0; i < functions.size(); i++) {
            JsonNode f = functions.get(i);
            String name = f.get("name").textValue();
            if (choice.function() != null && !choice.function().equals(name)) {
                continue;
            }
            JsonNode params = f.get("parameters");
            if (params == null || params.isNull()) {
                params = JsonNodeFactory.instance.objectNode().put("type", "object");
            }
            boolean strict = f.path("strict").asBoolean(false);
            String args;
            try {
                JsonSchemaGrammar.of(params); // checked alone first, so that a refusal leaves nothing half-built in b
                args = JsonSchemaGrammar.into(b, params, "f" + i + "-");
            } catch (GrammarException e) {
                if (strict) {
                    throw ApiException.invalid("tools[" + i + "].function.parameters", "the parameter schema cannot be enforced: " + e.getMessage(),
                            "unsupported_schema");
                }
                args = anyObject;
            }
            String nameJson = JsonNodeFactory.instance.textNode(name).toString();
            calls.add(seq(literal("{"), ref("ws"), literal("\"name\""), ref("ws"), literal(":"), ref("ws"), literal(nameJson), ref("ws"),
                    literal(","), ref("ws"), literal("\"parameters\""), ref("ws"), literal(":"), ref("ws"), ref(args), ref("ws"), literal("}")));
        }
        b.rule("root", seq(new Grammar.Token(ChatTemplate.ACTION_START), new Grammar.Token(ChatTemplate.PLUGIN), literal("\n"),
                Grammar.alt(calls), new Grammar.Token(ChatTemplate.ACTION_END)));
        try {
            return TokenConstraint.of(b.build(), tok, "tool call");
        } catch (GrammarException e) {
            throw ApiException.invalid("tool_choice", "a tool call cannot be forced with this model: " + e.getMessage());
        }
    }
}
