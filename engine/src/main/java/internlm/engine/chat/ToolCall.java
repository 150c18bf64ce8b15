package internlm.engine.chat;

/**
 * A call the assistant made, in OpenAI's terms: a function name and its arguments as JSON text.
 *
 * <p>InternLM has two kinds of actions. A plugin call ({@code <|action_start|><|plugin|>\n{"name": …,
 * "parameters": …}<|action_end|>}) maps one to one. A code-interpreter block ({@code <|action_start|><|interpreter|>\n}
 * a fenced Python block {@code <|action_end|>}) is exposed as a call of the function {@value #INTERPRETER_FUNCTION}
 * with arguments {@code {"code": "…"}} (the code without the fence), and is rendered back in the interpreter form.
 *
 * @param id        the call's id (OpenAI {@code tool_calls[].id}), used to match tool results to calls
 * @param kind      plugin or interpreter
 * @param name      the function name
 * @param arguments the arguments, a JSON object as text
 */
public record ToolCall(String id, Kind kind, String name, String arguments) {
    /** The function name under which code-interpreter blocks are reported. */
    public static final String INTERPRETER_FUNCTION = "code_interpreter";

    public enum Kind { PLUGIN, INTERPRETER }

    public ToolCall {
        if (kind == null) {
            throw new IllegalArgumentException("a tool call needs a kind");
        }
        if (name == null || name.isEmpty()) {
            throw new IllegalArgumentException("a tool call needs a function name");
        }
        arguments = arguments == null || arguments.isBlank() ? "{}" : arguments;
    }

    public static ToolCall plugin(String id, String name, String arguments) {
        return new ToolCall(id, Kind.PLUGIN, name, arguments);
    }
}
