package internlm.engine.sampling;

import java.util.Arrays;

/**
 * What a backend needs to sample one row where its logits are: the settings, the uniform draw {@code u} ∈ [0, 1) the
 * request's {@link Sampler} made for this step ({@link Sampler#nextUniform}; unused when greedy), and the tokens the
 * penalties look at (the last {@code penaltyLastN} of the sequence, oldest first; empty without penalties). Sampling
 * with it gives what {@link Sampler#sample} would have given for the same logits and seed.
 */
public record RowSampling(SamplerConfig config, double uniform, int[] window) {
    public RowSampling {
        if (config == null) {
            throw new IllegalArgumentException("a sampled row needs sampler settings");
        }
        if (!(uniform >= 0 && uniform < 1)) {
            throw new IllegalArgumentException("the uniform draw must be in [0, 1), got " + uniform);
        }
        window = window == null ? new int[0] : window.clone();
    }

    /** A sampled row: its settings, the draw of its sampler and the window of {@code history[0, historyLen)} the penalties see. */
    public static RowSampling of(SamplerConfig config, double uniform, int[] history, int historyLen) {
        int n = penalized(config) ? (config.penaltyLastN() < 0 ? historyLen : Math.min(historyLen, config.penaltyLastN())) : 0;
        return new RowSampling(config, uniform, Arrays.copyOfRange(history, historyLen - n, historyLen));
    }

    /** Whether any penalty is on (repetition ≠ 1, frequency or presence ≠ 0, over a non-empty window). */
    public static boolean penalized(SamplerConfig c) {
        return c.penaltyLastN() != 0 && (c.repeatPenalty() != 1f || c.frequencyPenalty() != 0f || c.presencePenalty() != 0f);
    }

    /** Samples on the host from this row's raw logits (penalties included), as {@link Sampler#sample} would. */
    public int sample(float[] logits) {
        return Sampler.choose(config, logits, window, window.length, null, uniform);
    }

    /** Samples on the host from logits the penalties have already been applied to (by the device). */
    public int samplePenalized(float[] logits) {
        return Sampler.choose(config, logits, window, 0, null, uniform);
    }

    /**
     * The penalties as entries for a device: each distinct token of the window once, with the amount subtracted after
     * the repetition penalty, {@code count · frequency + presence}, computed as {@link Sampler} computes it (float).
     * Writes up to {@code ids.length} entries and returns how many the window has (more than written when they do not
     * fit). Tokens outside [0, vocabulary) are skipped, as the sampler skips them.
     */
    public int penalties(int vocabulary, int[] ids, float[] subtrahends) {
        if (!penalized(config) || window.length == 0) {
            return 0;
        }
        int[] sorted = window.clone();
        Arrays.sort(sorted);
        int n = 0;
        for (int i = 0; i < sorted.length; ) {
            int t = sorted[i], count = 0;
            while (i < sorted.length && sorted[i] == t) {
                count++;
                i++;
            }
            if (t < 0 || t >= vocabulary) {
                continue;
            }
            if (n < ids.length) {
                ids[n] = t;
                subtrahends[n] = count * config.frequencyPenalty() + config.presencePenalty();
            }
            n++;
        }
        return n;
    }
}
