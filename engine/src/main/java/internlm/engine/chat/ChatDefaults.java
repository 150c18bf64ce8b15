package internlm.engine.chat;

import internlm.engine.sampling.SamplerConfig;
import internlm.loader.ModelConfig;

/**
 * The generation settings InternLM's authors publish for chat (spec §10), used by {@code chat} and {@code serve}
 * for whatever a user or request leaves unset.
 * <ul>
 *   <li>InternLM2 / 2.5 (HF {@code chat()}): temperature 0.8, top-p 0.8, at most 1024 new tokens;</li>
 *   <li>InternLM3 (its README, Transformers and vLLM): temperature 1.0, top-p 0.8, top-k 40, repetition penalty 1.005
 *       over the whole sequence, 1024 new tokens — 8192 in deep-thinking mode.</li>
 * </ul>
 * Min-p is off (InternLM does not use it).
 */
public final class ChatDefaults {
    private ChatDefaults() {}

    /** Token budget of a reply. */
    public static final int MAX_TOKENS = 1024;
    /** Token budget of a reply in deep-thinking mode (the thinking prompt announces [[8192]]). */
    public static final int THINKING_MAX_TOKENS = 8192;

    public static SamplerConfig sampler(ModelConfig.Family family, long seed) {
        if (family == ModelConfig.Family.INTERNLM3) {
            return new SamplerConfig(1.0f, 40, 0.8f, 0f, 1.005f, 0f, 0f, -1, seed);
        }
        return new SamplerConfig(0.8f, 0, 0.8f, 0f, 1.0f, 0f, 0f, -1, seed);
    }

    public static int maxTokens(boolean thinking) {
        return thinking ? THINKING_MAX_TOKENS : MAX_TOKENS;
    }
}
