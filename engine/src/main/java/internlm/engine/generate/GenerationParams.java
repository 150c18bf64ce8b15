package internlm.engine.generate;

import internlm.engine.grammar.TokenConstraint;
import internlm.engine.sampling.SamplerConfig;

import java.util.List;

/**
 * What to generate.
 *
 * @param maxTokens     most tokens to generate (the context may stop it earlier)
 * @param sampler       sampling settings
 * @param ignoreEos     keep going past end-of-generation tokens
 * @param stopStrings   extra strings that end generation (not included in the text)
 * @param topLogits     how many of the highest raw logits to record per step (0 = none); recording also gives each
 *                      step's log-probabilities (see {@link GenerationResult.Step})
 * @param renderSpecial render control tokens (e.g. {@code <|im_end|>}) in the text
 * @param renderTokens  control tokens rendered in the text even when {@code renderSpecial} is off (InternLM's tool
 *                      markers {@code <|action_start|>}, {@code <|plugin|>}, … for the tool-call parser), or empty
 * @param stopAfter     tokens that end generation after their text has been emitted (e.g. {@code <|action_end|>}
 *                      when tools are on: the turn is a tool call and the environment speaks next), or empty
 * @param constraint    a grammar every generated token must keep to (each generation runs its own matcher over it), or
 *                      null; with one, end-of-generation tokens are allowed exactly when the output is complete
 */
public record GenerationParams(int maxTokens, SamplerConfig sampler, boolean ignoreEos, List<String> stopStrings,
                               int topLogits, boolean renderSpecial, int[] renderTokens, int[] stopAfter,
                               TokenConstraint constraint) {
    public GenerationParams {
        if (maxTokens < 0) {
            throw new IllegalArgumentException("the number of tokens to generate must be >= 0, got " + maxTokens);
        }
        if (topLogits < 0) {
            throw new IllegalArgumentException("the number of top logits to record must be >= 0, got " + topLogits);
        }
        stopStrings = stopStrings == null ? List.of() : List.copyOf(stopStrings);
        for (String s : stopStrings) {
            if (s.isEmpty()) {
                throw new IllegalArgumentException("stop strings must not be empty");
            }
        }
        renderTokens = renderTokens == null ? new int[0] : renderTokens.clone();
        stopAfter = stopAfter == null ? new int[0] : stopAfter.clone();
    }

    public GenerationParams(int maxTokens, SamplerConfig sampler, boolean ignoreEos, List<String> stopStrings,
                            int topLogits, boolean renderSpecial, int[] renderTokens, int[] stopAfter) {
        this(maxTokens, sampler, ignoreEos, stopStrings, topLogits, renderSpecial, renderTokens, stopAfter, null);
    }

    public GenerationParams(int maxTokens, SamplerConfig sampler, boolean ignoreEos, List<String> stopStrings,
                            int topLogits, boolean renderSpecial) {
        this(maxTokens, sampler, ignoreEos, stopStrings, topLogits, renderSpecial, null, null, null);
    }

    /** The same parameters with output constrained by {@code c} (null: none). */
    public GenerationParams withConstraint(TokenConstraint c) {
        return new GenerationParams(maxTokens, sampler, ignoreEos, stopStrings, topLogits, renderSpecial, renderTokens, stopAfter, c);
    }

    public static GenerationParams greedy(int maxTokens) {
        return new GenerationParams(maxTokens, SamplerConfig.GREEDY, false, List.of(), 0, false);
    }

    /** Whether the text of {@code token} (a control token) is emitted although special tokens are not rendered. */
    public boolean rendersToken(int token) {
        return contains(renderTokens, token);
    }

    /** Whether generation ends once {@code token} has been emitted. */
    public boolean stopsAfter(int token) {
        return contains(stopAfter, token);
    }

    private static boolean contains(int[] a, int v) {
        for (int x : a) {
            if (x == v) {
                return true;
            }
        }
        return false;
    }
}
