package internlm.engine.generate;

import java.util.List;

/**
 * The outcome of one generation.
 *
 * @param finishReason "stop" (end-of-generation token, stop string or stop-after token), "length" (token budget or
 *                     context full), "cancelled" (the sink asked to stop)
 * @param cachedTokens how many of the prompt's tokens were already in the session's cache (a reused prefix: not
 *                     evaluated again)
 */
public record GenerationResult(
        int[] prompt,
        int cachedTokens,
        int[] generated,
        String text,
        List<Step> steps,
        String finishReason,
        double promptMillis,
        double decodeMillis) {

    /**
     * One generated token with the highest raw logits of the distribution it was drawn from.
     *
     * @param logit     the raw logit of the chosen token
     * @param logSumExp log Σ exp(logit) over the whole vocabulary, so that logit − logSumExp is a log-probability
     *                  of the model's distribution (before penalties, truncation and temperature)
     */
    public record Step(int token, List<TopLogit> top, float logit, double logSumExp) {
        /** The chosen token's log-probability under the model. */
        public double logprob() {
            return logit - logSumExp;
        }

        /** The log-probability of a token with this raw logit in the same distribution. */
        public double logprob(float otherLogit) {
            return otherLogit - logSumExp;
        }
    }

    public record TopLogit(int id, String piece, float logit) {}

    /** Prompt tokens evaluated by this generation (the prompt less its cached prefix). */
    public int evaluatedPromptTokens() {
        return prompt.length - cachedTokens;
    }

    /** Prompt tokens per second (0 when nothing was evaluated). */
    public double promptTokensPerSecond(int evaluated) {
        return promptMillis > 0 ? evaluated * 1000.0 / promptMillis : 0;
    }

    /** Decode speed: tokens after the first one, over the time spent on them. */
    public double decodeTokensPerSecond() {
        int n = generated.length - 1;
        return n > 0 && decodeMillis > 0 ? n * 1000.0 / decodeMillis : 0;
    }
}
