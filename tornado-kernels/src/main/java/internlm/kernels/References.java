package internlm.kernels;

/**
 * Scalar Java definitions of what each kernel computes, on plain arrays. The kernel tests run every kernel (through
 * a work-group emulator on the JVM, or through TornadoVM on a device) and compare with these.
 */
public final class References {
    private References() {}

    /** y[r] = Σ_c w[r·cols + c] · x[c]. */
    public static float[] matvec(float[] w, float[] x, int rows, int cols) {
        float[] y = new float[rows];
        for (int r = 0; r < rows; r++) {
            double s = 0;
            for (int c = 0; c < cols; c++) {
                s += (double) w[r * cols + c] * x[c];
            }
            y[r] = (float) s;
        }
        return y;
    }

    public static float silu(float g) {
        return (float) (g / (1 + Math.exp(-g)));
    }

    /** h[r] = silu(Wg·x)[r] · (Wu·x)[r]. */
    public static float[] swiglu(float[] wg, float[] wu, float[] x, int rows, int cols) {
        float[] g = matvec(wg, x, rows, cols), u = matvec(wu, x, rows, cols);
        float[] h = new float[rows];
        for (int r = 0; r < rows; r++) {
            h[r] = silu(g[r]) * u[r];
        }
        return h;
    }

    public static float[] rmsNorm(float[] x, float[] w, float eps) {
        double ss = 0;
        for (float v : x) {
            ss += (double) v * v;
        }
        double scale = 1 / Math.sqrt(ss / x.length + eps);
        float[] out = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            out[i] = (float) (x[i] * scale * w[i]);
        }
        return out;
    }

    /** The cos/sin table the RoPE kernel takes: {cos θ_0, sin θ_0, cos θ_1, …}, θ_i = pos · base^(−2i/headDim). */
    public static float[] ropeTable(int pos, double base, int headDim) {
        float[] t = new float[headDim];
        for (int i = 0; i < headDim / 2; i++) {
            double theta = pos * Math.pow(base, -2.0 * i / headDim);
            t[2 * i] = (float) Math.cos(theta);
            t[2 * i + 1] = (float) Math.sin(theta);
        }
        return t;
    }

    /** Rotates heads×headDim values in adjacent pairs with a cos/sin table. */
    public static float[] rope(float[] v, float[] table, int headDim) {
        float[] out = v.clone();
        for (int h = 0; h < v.length / headDim; h++) {
            for (int i = 0; i < headDim / 2; i++) {
                int j = h * headDim + 2 * i;
                out[j] = v[j] * table[2 * i] - v[j + 1] * table[2 * i + 1];
                out[j + 1] = v[j] * table[2 * i + 1] + v[j + 1] * table[2 * i];
            }
        }
        return out;
    }

    /** Softmax attention of all query heads over positions [0, len) of caches laid out [pos][kvHeads·headDim]. */
    public static float[] attention(float[] q, float[] keys, float[] values, int len, int heads, int kvHeads, int headDim) {
        int kvDim = kvHeads * headDim, group = heads / kvHeads;
        float[] out = new float[heads * headDim];
        for (int h = 0; h < heads; h++) {
            int g = h / group;
            double[] s = new double[len];
            double max = Double.NEGATIVE_INFINITY;
            for (int t = 0; t < len; t++) {
                double dot = 0;
                for (int d = 0; d < headDim; d++) {
                    dot += (double) q[h * headDim + d] * keys[t * kvDim + g * headDim + d];
                }
                s[t] = dot / Math.sqrt(headDim);
                max = Math.max(max, s[t]);
            }
            double sum = 0;
            for (int t = 0; t < len; t++) {
                s[t] = Math.exp(s[t] - max);
                sum += s[t];
            }
            for (int d = 0; d < headDim; d++) {
                double o = 0;
                for (int t = 0; t < len; t++) {
                    o += s[t] * values[t * kvDim + g * headDim + d];
                }
                out[h * headDim + d] = (float) (o / sum);
            }
        }
        return out;
    }

    /** Index of the largest value, the lowest index on ties. */
    public static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) {
            if (v[i] > v[best]) {
                best = i;
            }
        }
        return best;
    }

    /** ggml-cpu's activation quantization to the Q8_0 grid (then back to float): id = 127/max, round half to even. */
    public static float[] roundQ8(float[] x) {
        float[] out = x.clone();
        for (int b = 0; b + 32 <= x.length; b += 32) {
            float amax = 0;
            for (int j = 0; j < 32; j++) {
                amax = Math.max(amax, Math.abs(x[b + j]));
            }
            float id = amax != 0 ? 127f / amax : 0f;
            float dh = Float.float16ToFloat(Float.floatToFloat16(amax / 127f));
            for (int j = 0; j < 32; j++) {
                out[b + j] = dh * (float) Math.rint(x[b + j] * id);
            }
        }
        return out;
    }

    /** Q8_0 / Q4_0 block dequantization (ggml's definition) of `elements` values. */
    public static float[] dequantQ8(byte[] blocks, int elements) {
        float[] out = new float[elements];
        for (int b = 0; b < elements / 32; b++) {
            float d = Float.float16ToFloat((short) ((blocks[34 * b] & 0xff) | (blocks[34 * b + 1] << 8)));
            for (int j = 0; j < 32; j++) {
                out[32 * b + j] = d * blocks[34 * b + 2 + j];
            }
        }
        return out;
    }

    public static float[] dequantQ4(byte[] blocks, int elements) {
        float[] out = new float[elements];
        for (int b = 0; b < elements / 32; b++) {
            float d = Float.float16ToFloat((short) ((blocks[18 * b] & 0xff) | (blocks[18 * b + 1] << 8)));
            for (int j = 0; j < 16; j++) {
                int v = blocks[18 * b + 2 + j] & 0xff;
                out[32 * b + j] = d * ((v & 15) - 8);
                out[32 * b + j + 16] = d * ((v >> 4) - 8);
            }
        }
        return out;
    }

    /** What {@link ProbeKernels#probeStreamRead} computes, summed over its partials: the sum of the array (in double). */
    public static double streamRead(float[] a) {
        double s = 0;
        for (float v : a) {
            s += v;
        }
        return s;
    }
}
