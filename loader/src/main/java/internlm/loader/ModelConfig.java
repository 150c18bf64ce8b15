package internlm.loader;

/**
 * One description for every InternLM family (and the Llama-architecture files InternLM3 is converted to): the
 * shapes, RoPE settings and flags that both backends and the loaders need. Nothing about a family is hard-coded
 * elsewhere: a new variant is new values here, not a new class.
 *
 * @param family         which InternLM generation this is
 * @param architecture   the file's own architecture name (GGUF {@code general.architecture} or HF {@code model_type})
 * @param name           a display name
 * @param dim            hidden size
 * @param layers         number of decoder layers
 * @param heads          query heads
 * @param kvHeads        key/value heads (grouped-query attention when smaller than heads)
 * @param headDim        dimension of one head (may differ from dim / heads)
 * @param ffn            SwiGLU intermediate size
 * @param vocabSize      number of tokens (rows of the embedding)
 * @param contextLength  trained context window (max_position_embeddings)
 * @param ropeTheta      RoPE base frequency (never assumed: read from the file)
 * @param ropeScaling    RoPE scaling (none, linear, dynamic NTK)
 * @param rmsEps         RMSNorm epsilon
 * @param qkvBias        q/k/v projections carry biases (InternLM v1 7B)
 * @param outBias        the attention output projection carries a bias (InternLM v1 7B)
 * @param tiedEmbeddings the LM head reuses the token embedding
 */
public record ModelConfig(
        Family family,
        String architecture,
        String name,
        int dim,
        int layers,
        int heads,
        int kvHeads,
        int headDim,
        int ffn,
        int vocabSize,
        int contextLength,
        double ropeTheta,
        RopeScaling ropeScaling,
        float rmsEps,
        boolean qkvBias,
        boolean outBias,
        boolean tiedEmbeddings) {

    public enum Family {
        INTERNLM1("InternLM (v1)"),
        INTERNLM2("InternLM2 / 2.5"),
        INTERNLM3("InternLM3 (Llama architecture)");

        public final String label;

        Family(String label) {
            this.label = label;
        }
    }

    /** RoPE scaling. {@code factor} is 1 for NONE. */
    public record RopeScaling(Type type, double factor) {
        public enum Type { NONE, LINEAR, DYNAMIC }

        public static final RopeScaling NONE = new RopeScaling(Type.NONE, 1.0);

        @Override
        public String toString() {
            return type == Type.NONE ? "none" : type.name().toLowerCase() + " x" + factor;
        }
    }

    public ModelConfig {
        if (dim <= 0 || layers <= 0 || heads <= 0 || kvHeads <= 0 || headDim <= 0 || ffn <= 0 || vocabSize <= 0 || contextLength <= 0) {
            throw new IllegalArgumentException("model dimensions must be positive: " + describeShape(dim, layers, heads, kvHeads, headDim, ffn, vocabSize, contextLength));
        }
        if (heads % kvHeads != 0) {
            throw new IllegalArgumentException(heads + " query heads are not a multiple of " + kvHeads + " key/value heads");
        }
        if (headDim % 2 != 0) {
            throw new IllegalArgumentException("head dimension " + headDim + " is odd: RoPE rotates pairs");
        }
        if (!(ropeTheta > 0) || Double.isInfinite(ropeTheta)) {
            throw new IllegalArgumentException("RoPE base " + ropeTheta + " is not a positive number");
        }
        if (!(rmsEps > 0) || Float.isInfinite(rmsEps)) {
            throw new IllegalArgumentException("RMSNorm epsilon " + rmsEps + " is not a positive number");
        }
    }

    private static String describeShape(int dim, int layers, int heads, int kvHeads, int headDim, int ffn, int vocab, int ctx) {
        return "dim=" + dim + " layers=" + layers + " heads=" + heads + " kv_heads=" + kvHeads + " head_dim=" + headDim
                + " ffn=" + ffn + " vocab=" + vocab + " ctx=" + ctx;
    }

    /** Width of all query heads together. */
    public int qDim() {
        return heads * headDim;
    }

    /** Width of all key (or value) heads together. */
    public int kvDim() {
        return kvHeads * headDim;
    }

    /** Query heads per key/value head. */
    public int groupSize() {
        return heads / kvHeads;
    }

    public String shape() {
        return describeShape(dim, layers, heads, kvHeads, headDim, ffn, vocabSize, contextLength);
    }
}
