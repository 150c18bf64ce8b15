package internlm.engine.generate;

import internlm.engine.sampling.SamplerConfig;

import java.util.List;

/**
 * What to generate.
 *
 * @param maxTokens     most tokens to generate (the context may stop it earlier)
 * @param sampler       sampling settings
 * @param ignoreEos     keep going past end-of-generation tokens
 * @param stopStrings   extra strings that end generation (not included in the text)
 * @param topLogits     how many of the highest raw logits to record per step (0 = none)
 * @param renderSpecial render control tokens (e.g. {@code <|im_end|>}) in the text
 */
public record GenerationParams(int maxTokens, SamplerConfig sampler, boolean ignoreEos, List<String> stopStrings,
                               int topLogits, boolean renderSpecial) {
    public GenerationParams {
        if (maxTokens < 0) {
            throw new IllegalArgumentException("the number of tokens to generate must be >= 0, got " + maxTokens);
        }
        stopStrings = stopStrings == null ? List.of() : List.copyOf(stopStrings);
        for (String s : stopStrings) {
            if (s.isEmpty()) {
                throw new IllegalArgumentException("stop strings must not be empty");
            }
        }
    }

    public static GenerationParams greedy(int maxTokens) {
        return new GenerationParams(maxTokens, SamplerConfig.GREEDY, false, List.of(), 0, false);
    }
}
