package internlm.engine.model;

import internlm.loader.ModelConfig;
import internlm.loader.ModelConfig.RopeScaling;

/**
 * Rotary position embedding, in one place for both backends: the base a sequence uses (the model's theta, or the
 * dynamic-NTK rescaled one), the cos/sin table of a position (computed in double precision, so that every backend
 * rotates with the same floats), and the rotation in GGUF order — within each head, element pairs (2i, 2i+1) turn
 * by the angle pos · base^(−2i/headDim). (HF checkpoints use the half-split pairing; the HF loader permutes Q/K rows
 * at load so the same rotation applies.)
 */
public final class Rope {
    private Rope() {}

    /**
     * The RoPE base for an evaluation that brings a sequence to {@code length} tokens: the model's theta, rescaled by
     * dynamic NTK once the sequence is longer than the trained window (HF semantics, spec §6.1:
     * base·(f·L/M − (f−1))^(d/(d−2)), applied to every position evaluated for that length).
     */
    public static double base(ModelConfig c, int length) {
        RopeScaling s = c.ropeScaling();
        if (s.type() != RopeScaling.Type.DYNAMIC || length <= c.contextLength()) {
            return c.ropeTheta();
        }
        double d = c.headDim();
        double alpha = s.factor() * length / c.contextLength() - (s.factor() - 1);
        return c.ropeTheta() * Math.pow(alpha, d / (d - 2));
    }

    /**
     * Writes cos and sin of the angles of position {@code pos} with base {@code base}: {@code out[2i] = cos θ_i},
     * {@code out[2i+1] = sin θ_i} for i &lt; headDim/2, starting at out[off]. Linear scaling divides the position.
     */
    public static void table(ModelConfig c, int pos, double base, float[] out, int off) {
        RopeScaling s = c.ropeScaling();
        double p = s.type() == RopeScaling.Type.LINEAR ? pos / s.factor() : pos;
        int hd = c.headDim();
        for (int i = 0; i < hd / 2; i++) {
            double angle = p * Math.pow(base, -2.0 * i / hd);
            out[off + 2 * i] = (float) Math.cos(angle);
            out[off + 2 * i + 1] = (float) Math.sin(angle);
        }
    }

    /** Rotates {@code heads} heads of {@code headDim} values starting at v[off] with a table from {@link #table}. */
    public static void rotate(float[] v, int off, int heads, int headDim, float[] table, int tableOff) {
        int half = headDim / 2;
        for (int i = 0; i < half; i++) {
            float cos = table[tableOff + 2 * i], sin = table[tableOff + 2 * i + 1];
            for (int h = 0; h < heads; h++) {
                int j = off + h * headDim + 2 * i;
                float a = v[j], b = v[j + 1];
                v[j] = a * cos - b * sin;
                v[j + 1] = a * sin + b * cos;
            }
        }
    }
}
