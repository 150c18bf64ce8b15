package internlm.kernels;

/**
 * Scalar Java definitions of what each kernel computes, on plain arrays (test code): the kernel tests run every kernel
 * through the work-group emulator and compare with these. (The engine's {@code bench kernels} checks the device against
 * the CPU backend's own kernels instead.)
 */
final class References {
    private References() {}

    /** y[r] = Σ_c w[r·cols + c] · x[c]. */
    static float[] matvec(float[] w, float[] x, int rows, int cols) {
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

    static float silu(float g) {
        return (float) (g / (1 + Math.exp(-g)));
    }

    /** h[r] = silu(Wg·x)[r] · (Wu·x)[r]. */
    static float[] swiglu(float[] wg, float[] wu, float[] x, int rows, int cols) {
        float[] g = matvec(wg, x, rows, cols), u = matvec(wu, x, rows, cols);
        float[] h = new float[rows];
        for (int r = 0; r < rows; r++) {
            h[r] = silu(g[r]) * u[r];
        }
        return h;
    }

    static float[] rmsNorm(float[] x, float[] w, float eps) {
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
    static float[] ropeTable(int pos, double base, int headDim) {
        float[] t = new float[headDim];
        for (int i = 0; i < headDim / 2; i++) {
            double theta = pos * Math.pow(base, -2.0 * i / headDim);
            t[2 * i] = (float) Math.cos(theta);
            t[2 * i + 1] = (float) Math.sin(theta);
        }
        return t;
    }

    /** Rotates heads×headDim values in adjacent pairs with a cos/sin table. */
    static float[] rope(float[] v, float[] table, int headDim) {
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
    static float[] attention(float[] q, float[] keys, float[] values, int len, int heads, int kvHeads, int headDim) {
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
    static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) {
            if (v[i] > v[best]) {
                best = i;
            }
        }
        return best;
    }

    /** ggml-cpu's activation quantization to the Q8_0 grid (then back to float): id = 127/max, round half to even. */
    static float[] roundQ8(float[] x) {
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
    static float[] dequantQ8(byte[] blocks, int elements) {
        float[] out = new float[elements];
        for (int b = 0; b < elements / 32; b++) {
            float d = Float.float16ToFloat((short) ((blocks[34 * b] & 0xff) | (blocks[34 * b + 1] << 8)));
            for (int j = 0; j < 32; j++) {
                out[32 * b + j] = d * blocks[34 * b + 2 + j];
            }
        }
        return out;
    }

    static float[] dequantQ4(byte[] blocks, int elements) {
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

    /**
     * llama.cpp's sampling chain (the engine's CPU sampler) in double precision: top-k (≤ 0: off) → top-p (≥ 1: off)
     * → min-p (≤ 0: off) → temperature → the draw r = u · total walking the kept tokens in order of decreasing logit
     * (lower id first on ties). Temperature ≤ 0: the first largest logit.
     */
    static int sample(float[] l, int topK, float topP, float minP, float temperature, double u) {
        if (temperature <= 0) {
            return argmax(l);
        }
        int[] ids = order(l);
        int keep = kept(l, ids, topK, topP, minP);
        double max = l[ids[0]], total = 0;
        for (int i = 0; i < keep; i++) {
            total += Math.exp((l[ids[i]] - max) / temperature);
        }
        double r = u * total, run = 0;
        for (int i = 0; i < keep; i++) {
            run += Math.exp((l[ids[i]] - max) / temperature);
            if (run > r) {
                return ids[i];
            }
        }
        return ids[keep - 1];
    }

    /** Ids by decreasing logit, lower id first on ties. */
    static int[] order(float[] l) {
        Integer[] boxed = new Integer[l.length];
        for (int i = 0; i < l.length; i++) {
            boxed[i] = i;
        }
        java.util.Arrays.sort(boxed, (a, b) -> l[a] != l[b] ? Float.compare(l[b], l[a]) : Integer.compare(a, b));
        int[] ids = new int[l.length];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = boxed[i];
        }
        return ids;
    }

    /** How many of the ordered tokens top-k, top-p and min-p keep. */
    static int kept(float[] l, int[] ids, int topK, float topP, float minP) {
        int k = topK > 0 ? Math.min(topK, l.length) : l.length;
        double max = l[ids[0]], sum = 0;
        for (int i = 0; i < k; i++) {
            sum += Math.exp(l[ids[i]] - max);
        }
        int keep = k;
        if (topP < 1) {
            double cum = 0;
            for (int i = 0; i < k && keep == k; i++) {
                cum += Math.exp(l[ids[i]] - max) / sum;
                if (cum >= topP) {
                    keep = i + 1;
                }
            }
        }
        if (minP > 0) {
            int m = 1;
            while (m < keep && l[ids[m]] - max >= Math.log(minP)) {
                m++;
            }
            keep = m;
        }
        return keep;
    }

    /**
     * How close the chain's decisions come to flipping (the smallest of: |running top-p mass − top-p|, |logit − max −
     * log min-p| over the tokens min-p looks at, |r − running weight| / total over the kept tokens). A device that
     * computes in float may pick another token only when this is tiny.
     */
    static double margin(float[] l, int topK, float topP, float minP, float temperature, double u) {
        int[] ids = order(l);
        int k = topK > 0 ? Math.min(topK, l.length) : l.length;
        double max = l[ids[0]], sum = 0, m = Double.MAX_VALUE;
        for (int i = 0; i < k; i++) {
            sum += Math.exp(l[ids[i]] - max);
        }
        if (topP < 1) {
            double cum = 0;
            for (int i = 0; i < k; i++) {
                cum += Math.exp(l[ids[i]] - max) / sum;
                m = Math.min(m, Math.abs(cum - topP));
            }
        }
        if (minP > 0) {
            for (int i = 0; i < k; i++) {
                m = Math.min(m, Math.abs(l[ids[i]] - max - Math.log(minP)));
            }
        }
        int keep = kept(l, ids, topK, topP, minP);
        double total = 0;
        for (int i = 0; i < keep; i++) {
            total += Math.exp((l[ids[i]] - max) / temperature);
        }
        double run = 0;
        for (int i = 0; i < keep; i++) {
            run += Math.exp((l[ids[i]] - max) / temperature);
            m = Math.min(m, Math.abs(u * total - run) / total);
        }
        return m;
    }

    /**
     * The CPU sampler's penalties on a copy of the logits: each distinct token t of the window, seen c times, becomes
     * (l ≤ 0 ? l · penalty : l / penalty) − (c · frequency + presence), in float.
     */
    static float[] penalize(float[] logits, int[] window, float penalty, float frequency, float presence) {
        float[] l = logits.clone();
        java.util.Map<Integer, Integer> counts = new java.util.TreeMap<>();
        for (int t : window) {
            counts.merge(t, 1, Integer::sum);
        }
        for (java.util.Map.Entry<Integer, Integer> e : counts.entrySet()) {
            int t = e.getKey();
            l[t] = l[t] <= 0 ? l[t] * penalty : l[t] / penalty;
            l[t] -= e.getValue() * frequency + presence;
        }
        return l;
    }

    /** What {@link ProbeKernels#probeStreamRead} computes, summed over its partials: the sum of the array (in double). */
    static double streamRead(float[] a) {
        double s = 0;
        for (float v : a) {
            s += v;
        }
        return s;
    }
}
