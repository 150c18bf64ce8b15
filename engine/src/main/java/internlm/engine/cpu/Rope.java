package internlm.engine.cpu;

import internlm.loader.ModelConfig.RopeScaling;

/**
 * Rotary position embedding in GGUF order: within each head, element pairs (2i, 2i+1) are rotated by the angle
 * pos · base^(−2i/headDim). (HF checkpoints use the half-split pairing; the HF loader permutes Q/K rows at load so
 * the same rotation applies.) The base is a parameter — the model's theta, or a dynamically rescaled one.
 */
public final class Rope {
    private Rope() {}

    /** Rotates {@code heads} heads of {@code headDim} values starting at v[off] for position pos. */
    public static void rotate(float[] v, int off, int heads, int headDim, int pos, double base, RopeScaling scaling) {
        double p = scaling.type() == RopeScaling.Type.LINEAR ? pos / scaling.factor() : pos;
        int half = headDim / 2;
        for (int i = 0; i < half; i++) {
            double angle = p * Math.pow(base, -2.0 * i / headDim);
            float cos = (float) Math.cos(angle), sin = (float) Math.sin(angle);
            for (int h = 0; h < heads; h++) {
                int j = off + h * headDim + 2 * i;
                float a = v[j], b = v[j + 1];
                v[j] = a * cos - b * sin;
                v[j + 1] = a * sin + b * cos;
            }
        }
    }
}
