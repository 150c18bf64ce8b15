package internlm.engine.bench;

import internlm.loader.LoadedModel;
import internlm.loader.ModelConfig;
import internlm.loader.TensorData;

/**
 * The memory roofline of decoding: one decode step reads every weight once (for all the sequences of the batch
 * together) and, per sequence, the keys and values of every position it attends to. With a measured bandwidth that
 * gives the tokens per second memory traffic allows; a measured speed divided by it is the fraction reached.
 */
public final class Roofline {
    private Roofline() {}

    /**
     * Bytes of weights one decode step reads, as the model stores them: every tensor except the token embedding, of
     * which one row is read (the LM head is read whole, the embedding's bytes again when tied).
     */
    public static long weightBytesPerStep(LoadedModel m) {
        long total = 0;
        for (TensorData t : m.tensors().values()) {
            if (t.name().equals("token_embd.weight")) {
                total += t.rowBytes();
            } else if (!t.name().equals("v_head.weight")) {
                total += t.data().byteSize();
            }
        }
        if (m.optionalTensor("output.weight") == null) {
            total += m.tensor("token_embd.weight").data().byteSize();
        }
        return total;
    }

    /** Bytes of K and V one position holds in the cache, over all layers. */
    public static long kvBytesPerPosition(ModelConfig c, int bytesPerElement) {
        return 2L * c.layers() * c.kvDim() * bytesPerElement;
    }

    /**
     * Mean number of cached positions a decoded token attends to when {@code n} tokens are decoded after
     * {@code depth} ones: the i-th (0-based) sees depth + i + 1.
     */
    public static double meanAttended(int depth, int n) {
        return depth + (n + 1) / 2.0;
    }

    /**
     * Tokens per second the bandwidth allows for decoding {@code n} tokens in each of {@code sequences} sequences at
     * {@code depth}: each step reads the weights once and every sequence's cache.
     */
    public static double tokensPerSecond(double bytesPerSecond, long weightBytes, long kvBytesPerPosition, int depth, int n, int sequences) {
        if (!(bytesPerSecond > 0) || n < 1 || sequences < 1) {
            throw new IllegalArgumentException("bandwidth, tokens and sequences must be positive");
        }
        double perStep = weightBytes + sequences * kvBytesPerPosition * meanAttended(depth, n);
        return sequences * bytesPerSecond / perStep;
    }

    /** Bytes read per decoded token (what a step reads divided by the tokens it produces). */
    public static double bytesPerToken(long weightBytes, long kvBytesPerPosition, int depth, int n, int sequences) {
        return (weightBytes + sequences * kvBytesPerPosition * meanAttended(depth, n)) / sequences;
    }
}
