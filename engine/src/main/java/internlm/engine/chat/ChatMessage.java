package internlm.engine.chat;

/**
 * One turn of a conversation. {@code role} is system, user, assistant or environment (tool results);
 * {@code name} optionally qualifies it (InternLM's {@code system name=<|plugin|>}, {@code environment name=<|interpreter|>}).
 */
public record ChatMessage(String role, String content, String name) {
    public ChatMessage {
        if (role == null || role.isBlank()) {
            throw new IllegalArgumentException("a chat message needs a role");
        }
        content = content == null ? "" : content;
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
}
