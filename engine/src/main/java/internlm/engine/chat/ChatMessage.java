package internlm.engine.chat;

import java.util.List;

/**
 * One turn of a conversation. {@code role} is system, user, assistant, environment (InternLM's role for tool
 * results) or tool (OpenAI's name for it; rendered as environment). {@code name} optionally qualifies the role
 * (InternLM's {@code system name=<|plugin|>}, {@code environment name=<|interpreter|>}, {@code user name=file});
 * "plugin" and "interpreter" stand for the tokens {@code <|plugin|>} / {@code <|interpreter|>}.
 *
 * @param toolCalls  calls an assistant turn made (rendered after its content in InternLM's action format)
 * @param toolCallId for a tool result: the id of the call it answers
 */
public record ChatMessage(String role, String content, String name, List<ToolCall> toolCalls, String toolCallId) {
    public ChatMessage {
        if (role == null || role.isBlank()) {
            throw new IllegalArgumentException("a chat message needs a role");
        }
        content = content == null ? "" : content;
        toolCalls = toolCalls == null ? List.of() : List.copyOf(toolCalls);
    }

    public ChatMessage(String role, String content, String name) {
        this(role, content, name, null, null);
    }

    public ChatMessage(String role, String content) {
        this(role, content, null);
    }

    public static ChatMessage system(String content) {
        return new ChatMessage("system", content);
    }

    public static ChatMessage user(String content) {
        return new ChatMessage("user", content);
    }

    public static ChatMessage assistant(String content) {
        return new ChatMessage("assistant", content);
    }

    public static ChatMessage assistant(String content, List<ToolCall> calls) {
        return new ChatMessage("assistant", content, null, calls, null);
    }

    /** A tool result for the call with this id (rendered as {@code environment name=<|plugin|>} or interpreter). */
    public static ChatMessage tool(String toolCallId, String content) {
        return new ChatMessage("tool", content, null, null, toolCallId);
    }
}
