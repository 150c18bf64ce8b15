package internlm.engine.reward;

import internlm.engine.Engine;
import internlm.engine.chat.ChatMessage;
import internlm.engine.chat.ChatTemplate;
import internlm.engine.generate.Session;

import java.util.Arrays;
import java.util.List;

/**
 * Scores conversations with an InternLM2-Reward model (spec §11): the conversation is rendered with the chat
 * template without a generation prompt and without a default system prompt (as the model's HF {@code get_score}
 * renders it), the reward token {@value #REWARD_TOKEN} is appended, and the score is {@code v_head · h}, h being the
 * hidden state after the final RMSNorm at that last position. Scores are unbounded reals; higher is better.
 *
 * <p>The reward token is found by its text in the vocabulary (id 92527 in InternLM2's), never by a fixed id.
 */
public final class RewardScorer {
    /** The token whose position carries the score (InternLM2's {@code [UNUSED_TOKEN_130]}, xtuner's reward_token_id). */
    public static final String REWARD_TOKEN = "[UNUSED_TOKEN_130]";

    private final Engine engine;
    private final ChatTemplate template;
    private final float[] head;
    private final int rewardToken;

    /** @param template the chat format (its default system prompt is not used) */
    public RewardScorer(Engine engine, ChatTemplate template) {
        if (!engine.isRewardModel()) {
            throw new IllegalArgumentException("this model has no reward head (tensor v_head.weight), so it cannot score conversations;"
                    + " use an InternLM2-Reward model");
        }
        this.engine = engine;
        this.template = template.withDefaultSystemPrompt(null);
        this.head = engine.rewardHead();
        this.rewardToken = engine.tokenizer().tokenId(REWARD_TOKEN);
        if (rewardToken < 0) {
            throw new IllegalArgumentException("this reward model's vocabulary has no " + REWARD_TOKEN
                    + " token (InternLM2-Reward scores the hidden state at that token)");
        }
    }

    public RewardScorer(Engine engine) {
        this(engine, ChatTemplate.forModel(engine.tokenizer(), false));
    }

    /** The tokens that are scored: BOS, the conversation without generation prompt, the reward token. */
    public int[] encode(List<ChatMessage> conversation) {
        if (conversation.isEmpty()) {
            throw new IllegalArgumentException("the conversation to score is empty");
        }
        int[] ids = template.encode(conversation, false);
        int[] out = Arrays.copyOf(ids, ids.length + 1);
        out[ids.length] = rewardToken;
        return out;
    }

    /** Scores a conversation using the given session's cache (a shared prefix with its last sequence is reused). */
    public double score(Session session, List<ChatMessage> conversation) {
        return score(session, encode(conversation));
    }

    /** Scores already encoded tokens (ending with the reward token). */
    public double score(Session session, int[] ids) {
        return dot(head, session.prefillHidden(ids));
    }

    /** Scores a conversation in a session of its own. */
    public double score(List<ChatMessage> conversation) {
        int[] ids = encode(conversation);
        try (Session s = engine.newSession(Math.min(engine.maxContext(), Math.max(ids.length, 16)))) {
            return score(s, ids);
        }
    }

    public int rewardToken() {
        return rewardToken;
    }

    static double dot(float[] a, float[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += (double) a[i] * b[i];
        }
        return s;
    }
}
