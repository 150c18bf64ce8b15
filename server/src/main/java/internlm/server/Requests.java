package internlm.server;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import internlm.engine.chat.ChatMessage;
import internlm.engine.chat.ToolCall;
import internlm.engine.sampling.SamplerConfig;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * Reads and checks request bodies. Every problem becomes a 400 {@link ApiException} naming the parameter (OpenAI's
 * {@code param}), with a message that says what was expected and what came.
 */
public final class Requests {
    private Requests() {}

    /** OpenAI-style messages (a JSON array) as chat messages; problems become IllegalArgumentExceptions. */
    public static List<ChatMessage> messagesOf(JsonNode messages) {
        ObjectNode o = JsonNodeFactory.instance.objectNode();
        o.set("messages", messages);
        try {
            return messages(o, Set.of());
        } catch (ApiException e) {
            throw new IllegalArgumentException(e.getMessage());
        }
    }

    static final ObjectMapper JSON = JsonMapper.builder()
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .build();

    private static final Pattern FUNCTION_NAME = Pattern.compile("[A-Za-z0-9_.\\-]{1,64}");
    static final int MAX_STOPS = 16;
    static final int MAX_TOP_LOGPROBS = 20;

    /** The body as a JSON object. */
    static ObjectNode object(byte[] body) {
        if (body.length == 0) {
            throw ApiException.invalid(null, "the request body is empty; send a JSON object");
        }
        JsonNode n;
        try {
            n = JSON.readTree(body);
        } catch (JsonProcessingException e) {
            throw ApiException.invalid(null, "the request body is not valid JSON: " + jsonProblem(e));
        } catch (IOException e) {
            throw ApiException.invalid(null, "the request body could not be read: " + e.getMessage());
        }
        if (n == null || !n.isObject()) {
            throw ApiException.invalid(null, "the request body must be a JSON object, got " + kind(n));
        }
        return (ObjectNode) n;
    }

    /** Jackson's message without its source-location boilerplate, with line and column. */
    static String jsonProblem(JsonProcessingException e) {
        String m = String.valueOf(e.getOriginalMessage()).replaceAll("Source: REDACTED \\(`[^`]*` disabled\\); ", "");
        if (e.getLocation() != null) {
            m += " (line " + e.getLocation().getLineNr() + ", column " + e.getLocation().getColumnNr() + ")";
        }
        return m;
    }

    static String kind(JsonNode n) {
        if (n == null || n.isMissingNode()) {
            return "nothing";
        }
        return switch (n.getNodeType()) {
            case ARRAY -> "an array";
            case OBJECT -> "an object";
            case STRING -> "a string";
            case NUMBER -> "a number";
            case BOOLEAN -> "a boolean";
            case NULL -> "null";
            default -> n.getNodeType().toString().toLowerCase();
        };
    }

    /** A present, non-null field (null for absent or JSON null). */
    static JsonNode field(ObjectNode o, String name) {
        JsonNode n = o.get(name);
        return n == null || n.isNull() ? null : n;
    }

    static String string(ObjectNode o, String name) {
        JsonNode n = field(o, name);
        if (n == null) {
            return null;
        }
        if (!n.isTextual()) {
            throw ApiException.invalid(name, "'" + name + "' must be a string, got " + kind(n));
        }
        return n.textValue();
    }

    static Boolean bool(ObjectNode o, String name) {
        JsonNode n = field(o, name);
        if (n == null) {
            return null;
        }
        if (!n.isBoolean()) {
            throw ApiException.invalid(name, "'" + name + "' must be true or false, got " + kind(n));
        }
        return n.booleanValue();
    }

    static Double number(ObjectNode o, String name, double min, double max) {
        JsonNode n = field(o, name);
        if (n == null) {
            return null;
        }
        if (!n.isNumber()) {
            throw ApiException.invalid(name, "'" + name + "' must be a number, got " + kind(n));
        }
        double v = n.doubleValue();
        if (!(v >= min && v <= max)) {
            throw ApiException.invalid(name, "'" + name + "' must be between " + min + " and " + max + ", got " + n.asText());
        }
        return v;
    }

    static Long integer(ObjectNode o, String name, long min, long max) {
        JsonNode n = field(o, name);
        if (n == null) {
            return null;
        }
        if (!n.isIntegralNumber() && !(n.isNumber() && n.doubleValue() == Math.rint(n.doubleValue()) && !Double.isInfinite(n.doubleValue()))) {
            throw ApiException.invalid(name, "'" + name + "' must be an integer, got " + (n.isNumber() ? n.asText() : kind(n)));
        }
        if (!n.canConvertToLong() && n.isIntegralNumber()) {
            throw ApiException.invalid(name, "'" + name + "' must be between " + min + " and " + max + ", got " + n.asText());
        }
        double d = n.doubleValue();
        if (d < min || d > max) {
            throw ApiException.invalid(name, "'" + name + "' must be between " + min + " and " + max + ", got " + n.asText());
        }
        return n.isIntegralNumber() ? n.longValue() : (long) d;
    }

    /** "stop": a string or an array of up to 16 non-empty strings. */
    static List<String> stops(ObjectNode o) {
        JsonNode n = field(o, "stop");
        if (n == null) {
            return List.of();
        }
        List<String> out = new ArrayList<>();
        if (n.isTextual()) {
            out.add(n.textValue());
        } else if (n.isArray()) {
            if (n.size() > MAX_STOPS) {
                throw ApiException.invalid("stop", "'stop' may hold at most " + MAX_STOPS + " strings, got " + n.size());
            }
            for (JsonNode s : n) {
                if (!s.isTextual()) {
                    throw ApiException.invalid("stop", "'stop' must be a string or an array of strings; it contains " + kind(s));
                }
                out.add(s.textValue());
            }
        } else {
            throw ApiException.invalid("stop", "'stop' must be a string or an array of strings, got " + kind(n));
        }
        for (String s : out) {
            if (s.isEmpty()) {
                throw ApiException.invalid("stop", "stop strings must not be empty");
            }
        }
        return out;
    }

    /** Sampling settings: the request's values where given, the defaults elsewhere; a random seed unless given. */
    static SamplerConfig sampler(ObjectNode o, SamplerConfig d) {
        Double temperature = number(o, "temperature", 0, 2);
        Double topP = number(o, "top_p", 0, 1);
        Long topK = integer(o, "top_k", -1, Integer.MAX_VALUE);
        Double minP = number(o, "min_p", 0, 1);
        Double repetition = number(o, "repetition_penalty", 0.01, 10);
        if (repetition == null) {
            repetition = number(o, "repeat_penalty", 0.01, 10);
        }
        Double frequency = number(o, "frequency_penalty", -2, 2);
        Double presence = number(o, "presence_penalty", -2, 2);
        Long lastN = integer(o, "repeat_last_n", -1, Integer.MAX_VALUE);
        Long seed = integer(o, "seed", Long.MIN_VALUE, Long.MAX_VALUE);
        if (topP != null && topP == 0) {
            throw ApiException.invalid("top_p", "'top_p' must be greater than 0 (it keeps the most likely tokens up to that probability mass)");
        }
        return new SamplerConfig(
                temperature != null ? temperature.floatValue() : d.temperature(),
                topK != null ? (int) Math.max(0, topK) : d.topK(),
                topP != null ? topP.floatValue() : d.topP(),
                minP != null ? minP.floatValue() : d.minP(),
                repetition != null ? repetition.floatValue() : d.repeatPenalty(),
                frequency != null ? frequency.floatValue() : d.frequencyPenalty(),
                presence != null ? presence.floatValue() : d.presencePenalty(),
                lastN != null ? lastN.intValue() : d.penaltyLastN(),
                seed != null ? seed : System.nanoTime() ^ 0x9E3779B97F4A7C15L);
    }

    /** "n" must be 1 when present. */
    static void singleChoice(ObjectNode o) {
        Long n = integer(o, "n", 1, 128);
        if (n != null && n != 1) {
            throw ApiException.invalid("n", "only n = 1 is supported (one choice per request), got " + n);
        }
    }

    /**
     * OpenAI "tools" as the JSON array of function schemas InternLM's prompt holds (name, description, parameters,
     * in the order given), or null when there are none. Also collects the declared function names.
     */
    static ArrayNode functions(ObjectNode o, Set<String> names) {
        JsonNode tools = field(o, "tools");
        if (tools == null) {
            return null;
        }
        if (!tools.isArray()) {
            throw ApiException.invalid("tools", "'tools' must be an array of {\"type\": \"function\", \"function\": {...}}, got " + kind(tools));
        }
        ArrayNode out = JsonNodeFactory.instance.arrayNode();
        for (int i = 0; i < tools.size(); i++) {
            String p = "tools[" + i + "]";
            JsonNode t = tools.get(i);
            if (!t.isObject()) {
                throw ApiException.invalid(p, p + " must be an object, got " + kind(t));
            }
            JsonNode type = t.get("type");
            if (type != null && !(type.isTextual() && type.textValue().equals("function"))) {
                throw ApiException.invalid(p + ".type", p + ".type must be \"function\" (the only tool type supported)");
            }
            JsonNode f = t.get("function");
            if (f == null || !f.isObject()) {
                throw ApiException.invalid(p + ".function", p + ".function must be an object with name, description and parameters");
            }
            JsonNode name = f.get("name");
            if (name == null || !name.isTextual() || !FUNCTION_NAME.matcher(name.textValue()).matches()) {
                throw ApiException.invalid(p + ".function.name", p + ".function.name must be 1-64 letters, digits, '_', '.' or '-'");
            }
            JsonNode desc = f.get("description");
            if (desc != null && !desc.isNull() && !desc.isTextual()) {
                throw ApiException.invalid(p + ".function.description", p + ".function.description must be a string");
            }
            JsonNode params = f.get("parameters");
            if (params != null && !params.isNull() && !params.isObject()) {
                throw ApiException.invalid(p + ".function.parameters", p + ".function.parameters must be a JSON schema object");
            }
            if (!names.add(name.textValue())) {
                throw ApiException.invalid(p + ".function.name", "tool '" + name.textValue() + "' is declared twice");
            }
            out.add(f);
        }
        return out;
    }

    /** "tool_choice": none or auto (absent = auto). Returns whether tools are offered. */
    static boolean toolsOffered(ObjectNode o) {
        JsonNode c = field(o, "tool_choice");
        if (c == null) {
            return true;
        }
        if (c.isTextual() && (c.textValue().equals("auto") || c.textValue().equals("none"))) {
            return c.textValue().equals("auto");
        }
        throw ApiException.invalid("tool_choice", "'tool_choice' must be \"none\" or \"auto\" (forcing a particular or any tool call is not supported), got "
                + (c.isTextual() ? "\"" + c.textValue() + "\"" : kind(c)));
    }

    private static final Set<String> ROLES = Set.of("system", "developer", "user", "assistant", "tool", "environment");

    /** OpenAI messages as chat messages; names of declared tools decide whether a call is a plugin call. */
    static List<ChatMessage> messages(ObjectNode o, Set<String> declaredTools) {
        JsonNode ms = field(o, "messages");
        if (ms == null) {
            throw ApiException.invalid("messages", "'messages' is required: an array of {\"role\", \"content\"} objects");
        }
        if (!ms.isArray()) {
            throw ApiException.invalid("messages", "'messages' must be an array, got " + kind(ms));
        }
        if (ms.isEmpty()) {
            throw ApiException.invalid("messages", "'messages' is empty; send at least one message");
        }
        List<ChatMessage> out = new ArrayList<>(ms.size());
        for (int i = 0; i < ms.size(); i++) {
            String p = "messages[" + i + "]";
            JsonNode m = ms.get(i);
            if (!m.isObject()) {
                throw ApiException.invalid(p, p + " must be an object, got " + kind(m));
            }
            ObjectNode mo = (ObjectNode) m;
            JsonNode roleNode = mo.get("role");
            if (roleNode == null || !roleNode.isTextual()) {
                throw ApiException.invalid(p + ".role", p + ".role must be a string (system, user, assistant, tool)");
            }
            String role = roleNode.textValue();
            if (!ROLES.contains(role)) {
                throw ApiException.invalid(p + ".role", p + ".role '" + role + "' is not one of system, developer, user, assistant, tool, environment");
            }
            List<ToolCall> calls = role.equals("assistant") ? toolCalls(mo, p, declaredTools) : List.of();
            String content = content(mo.get("content"), p, role.equals("assistant"));
            JsonNode nameNode = mo.get("name");
            String name = null;
            if (nameNode != null && !nameNode.isNull()) {
                if (!nameNode.isTextual()) {
                    throw ApiException.invalid(p + ".name", p + ".name must be a string");
                }
                name = nameNode.textValue();
                if (name.isEmpty() || name.length() > 64 || name.chars().anyMatch(c -> c < 0x20) || name.contains("<|") && !name.equals("<|plugin|>") && !name.equals("<|interpreter|>")) {
                    throw ApiException.invalid(p + ".name", p + ".name must be 1-64 printable characters without special tokens");
                }
            }
            String toolCallId = null;
            if (role.equals("tool")) {
                JsonNode id = mo.get("tool_call_id");
                if (id != null && !id.isNull()) {
                    if (!id.isTextual()) {
                        throw ApiException.invalid(p + ".tool_call_id", p + ".tool_call_id must be a string");
                    }
                    toolCallId = id.textValue();
                }
                name = null; // OpenAI puts the function name here; InternLM's environment turn is named by the call kind
            }
            out.add(new ChatMessage(role, content, name, calls, toolCallId));
        }
        return out;
    }

    private static String content(JsonNode c, String p, boolean assistant) {
        if (c == null || c.isNull()) {
            if (assistant) {
                return "";
            }
            throw ApiException.invalid(p + ".content", p + ".content is required (a string)");
        }
        if (c.isTextual()) {
            return c.textValue();
        }
        if (c.isArray()) {
            StringBuilder sb = new StringBuilder();
            for (int k = 0; k < c.size(); k++) {
                JsonNode part = c.get(k);
                String pp = p + ".content[" + k + "]";
                JsonNode type = part.get("type");
                if (!part.isObject() || type == null || !type.isTextual()) {
                    throw ApiException.invalid(pp, pp + " must be a content part {\"type\": \"text\", \"text\": ...}");
                }
                if (!type.textValue().equals("text")) {
                    throw ApiException.invalid(pp, pp + " is of type '" + type.textValue() + "'; this model reads text only");
                }
                JsonNode text = part.get("text");
                if (text == null || !text.isTextual()) {
                    throw ApiException.invalid(pp + ".text", pp + ".text must be a string");
                }
                sb.append(text.textValue());
            }
            return sb.toString();
        }
        throw ApiException.invalid(p + ".content", p + ".content must be a string or an array of text parts, got " + kind(c));
    }

    private static List<ToolCall> toolCalls(ObjectNode m, String p, Set<String> declaredTools) {
        JsonNode tc = m.get("tool_calls");
        if (tc == null || tc.isNull()) {
            return List.of();
        }
        if (!tc.isArray()) {
            throw ApiException.invalid(p + ".tool_calls", p + ".tool_calls must be an array");
        }
        List<ToolCall> out = new ArrayList<>();
        for (int k = 0; k < tc.size(); k++) {
            String pp = p + ".tool_calls[" + k + "]";
            JsonNode c = tc.get(k);
            if (!c.isObject()) {
                throw ApiException.invalid(pp, pp + " must be an object");
            }
            JsonNode f = c.get("function");
            if (f == null || !f.isObject()) {
                throw ApiException.invalid(pp + ".function", pp + ".function must be an object with name and arguments");
            }
            JsonNode name = f.get("name");
            if (name == null || !name.isTextual() || name.textValue().isEmpty()) {
                throw ApiException.invalid(pp + ".function.name", pp + ".function.name must be a non-empty string");
            }
            JsonNode args = f.get("arguments");
            String arguments;
            if (args == null || args.isNull()) {
                arguments = "{}";
            } else if (args.isTextual()) {
                arguments = args.textValue().isBlank() ? "{}" : args.textValue();
            } else if (args.isObject()) {
                arguments = args.toString();
            } else {
                throw ApiException.invalid(pp + ".function.arguments", pp + ".function.arguments must be a JSON object encoded as a string");
            }
            JsonNode parsed;
            try {
                parsed = JSON.readTree(arguments);
            } catch (JsonProcessingException e) {
                throw ApiException.invalid(pp + ".function.arguments", pp + ".function.arguments is not valid JSON: " + jsonProblem(e));
            }
            if (parsed == null || !parsed.isObject()) {
                throw ApiException.invalid(pp + ".function.arguments", pp + ".function.arguments must encode a JSON object");
            }
            JsonNode id = c.get("id");
            if (id != null && !id.isNull() && !id.isTextual()) {
                throw ApiException.invalid(pp + ".id", pp + ".id must be a string");
            }
            String fn = name.textValue();
            boolean interpreter = fn.equals(ToolCall.INTERPRETER_FUNCTION) && !declaredTools.contains(fn);
            if (interpreter && !(parsed.get("code") != null && parsed.get("code").isTextual())) {
                throw ApiException.invalid(pp + ".function.arguments", "a " + ToolCall.INTERPRETER_FUNCTION + " call needs arguments {\"code\": \"...\"}");
            }
            out.add(new ToolCall(id == null || id.isNull() ? null : id.textValue(),
                    interpreter ? ToolCall.Kind.INTERPRETER : ToolCall.Kind.PLUGIN, fn, parsed.toString()));
        }
        return out;
    }
}
