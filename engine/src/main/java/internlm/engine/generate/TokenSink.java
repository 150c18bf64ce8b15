package internlm.engine.generate;

/** Receives generated text as it becomes available (complete UTF-8 characters only). */
@FunctionalInterface
public interface TokenSink {
    /**
     * @param token the token just generated
     * @param text  text that became final with it (may be empty, e.g. half of a multi-byte character)
     * @return false to stop generating
     */
    boolean accept(int token, String text);

    TokenSink NONE = (t, s) -> true;
}
