package internlm.engine.generate;

/** Receives generated text as it becomes available (complete UTF-8 characters only). */
@FunctionalInterface
public interface TokenSink {
    /**
     * @param token the token just generated (-1 for text released at the end that belongs to no new token)
     * @param text  text that became final with it (may be empty, e.g. half of a multi-byte character)
     * @return false to stop generating
     */
    boolean accept(int token, String text);

    /**
     * Called with each generated token's step (its top logits and log-probabilities) just before
     * {@link #accept}, when the generation records top logits ({@link GenerationParams#topLogits()} &gt; 0).
     */
    default void step(GenerationResult.Step step) {
    }

    TokenSink NONE = (t, s) -> true;
}
