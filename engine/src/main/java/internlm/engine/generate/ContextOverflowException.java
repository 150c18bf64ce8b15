package internlm.engine.generate;

/** A sequence that does not fit in the session's context. The message says what to change. */
public class ContextOverflowException extends IllegalArgumentException {
    public ContextOverflowException(int needed, int capacity, int trained) {
        super(needed + " tokens do not fit in the context of " + capacity + " tokens"
                + (capacity < trained ? " (raise it with --ctx, up to the model's " + trained + ")" : " (the model's trained window is " + trained + ")"));
    }
}
