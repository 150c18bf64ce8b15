package internlm.engine.sampling;

/**
 * Sampling settings, with llama.cpp's meaning: temperature ≤ 0 is greedy; topK ≤ 0, topP ≥ 1, minP ≤ 0 and
 * penalties of 1 / 0 disable the stage. Penalties look at the last {@code penaltyLastN} tokens (−1 = all).
 */
public record SamplerConfig(
        float temperature,
        int topK,
        float topP,
        float minP,
        float repeatPenalty,
        float frequencyPenalty,
        float presencePenalty,
        int penaltyLastN,
        long seed) {

    public static final SamplerConfig GREEDY = new SamplerConfig(0f, 0, 1f, 0f, 1f, 0f, 0f, 64, 0L);

    public SamplerConfig {
        if (Float.isNaN(temperature) || temperature < 0) {
            throw new IllegalArgumentException("temperature must be >= 0, got " + temperature);
        }
        if (Float.isNaN(topP) || topP < 0 || topP > 1) {
            throw new IllegalArgumentException("top-p must be in [0, 1], got " + topP);
        }
        if (Float.isNaN(minP) || minP < 0 || minP > 1) {
            throw new IllegalArgumentException("min-p must be in [0, 1], got " + minP);
        }
        if (Float.isNaN(repeatPenalty) || repeatPenalty <= 0) {
            throw new IllegalArgumentException("repeat penalty must be > 0, got " + repeatPenalty);
        }
        if (Float.isNaN(frequencyPenalty) || Float.isNaN(presencePenalty)) {
            throw new IllegalArgumentException("penalties must be numbers");
        }
        if (penaltyLastN < -1) {
            throw new IllegalArgumentException("penalty window must be >= -1, got " + penaltyLastN);
        }
    }

    public boolean greedy() {
        return temperature <= 0;
    }

    public SamplerConfig withSeed(long s) {
        return new SamplerConfig(temperature, topK, topP, minP, repeatPenalty, frequencyPenalty, presencePenalty, penaltyLastN, s);
    }
}
