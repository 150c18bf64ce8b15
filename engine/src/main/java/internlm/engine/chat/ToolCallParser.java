package internlm.engine.chat;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;

/**
 * Finds InternLM tool calls in generated text (decoded with the action tokens kept as text), incrementally: feed
 * text as it streams and receive plain-text pieces and complete calls, in order.
 * <ul>
 *   <li>text outside an action passes through at once, except a tail that could still become
 *       {@code <|action_start|>}, which is held back until it is known;</li>
 *   <li>from {@code <|action_start|>} on, text is buffered until {@code <|action_end|>}; then the block is parsed:
 *       {@code <|plugin|>\n{"name": …, "parameters": {…}}} (or {@code "arguments"}, as an object or as JSON text)
 *       becomes a plugin call, {@code <|interpreter|>\n```python …```} a code-interpreter call;</li>
 *   <li>a block that does not parse (bad JSON, no name, unknown action) or never ends is given back as text,
 *       markers included, exactly as generated — never an error.</li>
 * </ul>
 */
public final class ToolCallParser {
    /** A piece of the output: plain text or a complete call. */
    public sealed interface Event permits Text, Call {}

    public record Text(String text) implements Event {}

    public record Call(ToolCall call) implements Event {}

    /** A whole output split into its text and its calls. */
    public record Parsed(String content, List<ToolCall> calls) {}

    private static final String START = ChatTemplate.ACTION_START;
    private static final String END = ChatTemplate.ACTION_END;
    private static final ObjectMapper JSON = new ObjectMapper().enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);
    private static final AtomicLong COUNTER = new AtomicLong();

    private final Supplier<String> ids;
    private final StringBuilder pending = new StringBuilder();
    private boolean inAction;

    /** @param ids gives each call's id */
    public ToolCallParser(Supplier<String> ids) {
        this.ids = ids;
    }

    public ToolCallParser() {
        this(ToolCallParser::newId);
    }

    /** A fresh call id ({@code call_…}). */
    public static String newId() {
        return "call_" + Long.toHexString(System.nanoTime() & 0xffffffffffL) + Long.toHexString(COUNTER.incrementAndGet());
    }

    /** Parses a complete output. */
    public static Parsed parse(String text, Supplier<String> ids) {
        ToolCallParser p = new ToolCallParser(ids);
        List<Event> events = new ArrayList<>(p.push(text));
        events.addAll(p.finish());
        StringBuilder content = new StringBuilder();
        List<ToolCall> calls = new ArrayList<>();
        for (Event e : events) {
            switch (e) {
                case Text t -> content.append(t.text());
                case Call c -> calls.add(c.call());
            }
        }
        return new Parsed(content.toString(), calls);
    }

    public static Parsed parse(String text) {
        return parse(text, ToolCallParser::newId);
    }

    /** True while an action has started and not yet ended (its text is being held). */
    public boolean inAction() {
        return inAction;
    }

    /** Adds streamed text; returns what is now known, in order. */
    public List<Event> push(String text) {
        List<Event> out = new ArrayList<>(2);
        pending.append(text);
        while (true) {
            if (!inAction) {
                int at = pending.indexOf(START);
                if (at < 0) {
                    int keep = partialSuffix(pending, START);
                    emitText(out, pending.substring(0, pending.length() - keep));
                    pending.delete(0, pending.length() - keep);
                    return out;
                }
                emitText(out, pending.substring(0, at));
                pending.delete(0, at + START.length());
                inAction = true;
            } else {
                int end = pending.indexOf(END);
                if (end < 0) {
                    return out;
                }
                String body = pending.substring(0, end);
                pending.delete(0, end + END.length());
                inAction = false;
                ToolCall call = parseAction(body, ids);
                if (call != null) {
                    out.add(new Call(call));
                } else {
                    emitText(out, START + body + END);
                }
            }
        }
    }

    /** The output ended: releases held-back text; an action that never ended is returned as text. */
    public List<Event> finish() {
        List<Event> out = new ArrayList<>(1);
        emitText(out, inAction ? START + pending : pending.toString());
        pending.setLength(0);
        inAction = false;
        return out;
    }

    private static void emitText(List<Event> out, String s) {
        if (s.isEmpty()) {
            return;
        }
        if (!out.isEmpty() && out.get(out.size() - 1) instanceof Text t) {
            out.set(out.size() - 1, new Text(t.text() + s));
        } else {
            out.add(new Text(s));
        }
    }

    /** Length of the longest suffix of {@code s} that is a proper prefix of {@code marker}. */
    static int partialSuffix(CharSequence s, String marker) {
        int max = Math.min(marker.length() - 1, s.length());
        for (int k = max; k > 0; k--) {
            boolean match = true;
            for (int i = 0; i < k; i++) {
                if (s.charAt(s.length() - k + i) != marker.charAt(i)) {
                    match = false;
                    break;
                }
            }
            if (match) {
                return k;
            }
        }
        return 0;
    }

    /** The call an action body ({@code <|plugin|>\n…} or {@code <|interpreter|>\n…}) describes, or null. */
    static ToolCall parseAction(String body, Supplier<String> ids) {
        String b = body.stripLeading();
        if (b.startsWith(ChatTemplate.PLUGIN)) {
            return parsePlugin(b.substring(ChatTemplate.PLUGIN.length()), ids);
        }
        if (b.startsWith(ChatTemplate.INTERPRETER)) {
            String code = stripFence(b.substring(ChatTemplate.INTERPRETER.length()));
            if (code.isBlank()) {
                return null;
            }
            ObjectNode args = JsonNodeFactory.instance.objectNode().put("code", code);
            return new ToolCall(ids.get(), ToolCall.Kind.INTERPRETER, ToolCall.INTERPRETER_FUNCTION, args.toString());
        }
        return null;
    }

    private static ToolCall parsePlugin(String payload, Supplier<String> ids) {
        JsonNode n;
        try {
            n = JSON.readTree(payload.strip());
        } catch (JsonProcessingException e) {
            return null;
        }
        if (n == null || !n.isObject()) {
            return null;
        }
        JsonNode name = n.get("name");
        if (name == null || !name.isTextual() || name.textValue().isBlank()) {
            return null;
        }
        JsonNode args = n.has("parameters") ? n.get("parameters") : n.get("arguments");
        String arguments;
        if (args == null || args.isNull()) {
            arguments = "{}";
        } else if (args.isObject()) {
            arguments = args.toString();
        } else if (args.isTextual()) {
            try {
                JsonNode inner = JSON.readTree(args.textValue());
                if (inner == null || !inner.isObject()) {
                    return null;
                }
                arguments = inner.toString();
            } catch (JsonProcessingException e) {
                return null;
            }
        } else {
            return null;
        }
        return ToolCall.plugin(ids.get(), name.textValue(), arguments);
    }

    /** The code inside a Markdown fence (```python … ```), or the text itself when it has none. */
    static String stripFence(String s) {
        String t = s.strip();
        if (!t.startsWith("```")) {
            return t;
        }
        int nl = t.indexOf('\n');
        if (nl < 0) {
            return "";
        }
        String inner = t.substring(nl + 1);
        if (inner.endsWith("```")) {
            inner = inner.substring(0, inner.length() - 3);
        }
        return inner.endsWith("\n") ? inner.substring(0, inner.length() - 1) : inner;
    }
}
