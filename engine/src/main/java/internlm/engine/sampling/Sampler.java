package internlm.engine.sampling;

import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Picks the next token from logits, in llama.cpp's default order: penalties (repetition, frequency, presence) →
 * top-k → top-p → min-p → temperature → draw. Greedy (temperature 0) returns the first maximum in id order. The
 * draw uses a seeded SplittableRandom, so the same seed and inputs give the same tokens.
 */
public final class Sampler {
    private final SamplerConfig cfg;
    private final SplittableRandom rng;

    public Sampler(SamplerConfig cfg) {
        this.cfg = cfg;
        this.rng = new SplittableRandom(cfg.seed());
    }

    public SamplerConfig config() {
        return cfg;
    }

    /** Index of the largest value (the first one on ties). */
    public static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) {
            if (v[i] > v[best]) {
                best = i;
            }
        }
        return best;
    }

    /**
     * Chooses a token. {@code logits} is not modified.
     *
     * @param history tokens seen so far (prompt and generated), for the penalties
     * @param historyLen number of valid entries in history
     */
    public int sample(float[] logits, int[] history, int historyLen) {
        return sample(logits, history, historyLen, null);
    }

    /**
     * Chooses a token among those set in {@code allowed} (a bitset over the vocabulary, bit {@code t} of word
     * {@code t / 64}; null: all tokens). The others are masked to −∞ before every other stage, so penalties, top-k,
     * top-p and min-p work on the allowed tokens only. {@code logits} is not modified.
     */
    public int sample(float[] logits, int[] history, int historyLen, long[] allowed) {
        return choose(cfg, logits, history, historyLen, allowed, cfg.greedy() ? 0 : rng.nextDouble());
    }

    /**
     * The next uniform draw of this sampler's generator, for a draw made elsewhere (on a device, or by
     * {@link #choose}): a non-greedy {@link #sample} takes exactly one, so drawing it here and sampling with it
     * elsewhere gives the same tokens as sampling here.
     */
    public double nextUniform() {
        return rng.nextDouble();
    }

    /**
     * The whole chain with the uniform {@code u} ∈ [0, 1) given (ignored when greedy): {@link #sample} is
     * {@code choose(config, …, nextUniform())}. {@code logits} is not modified.
     */
    public static int choose(SamplerConfig cfg, float[] logits, int[] history, int historyLen, long[] allowed, double u) {
        float[] l = allowed == null ? logits : mask(logits, allowed);
        boolean penalize = cfg.repeatPenalty() != 1f || cfg.frequencyPenalty() != 0f || cfg.presencePenalty() != 0f;
        if (penalize && cfg.penaltyLastN() != 0 && historyLen > 0) {
            l = l == logits ? logits.clone() : l;
            int window = cfg.penaltyLastN() < 0 ? historyLen : Math.min(historyLen, cfg.penaltyLastN());
            Map<Integer, Integer> counts = new HashMap<>();
            for (int i = historyLen - window; i < historyLen; i++) {
                counts.merge(history[i], 1, Integer::sum);
            }
            for (Map.Entry<Integer, Integer> e : counts.entrySet()) {
                int t = e.getKey();
                if (t < 0 || t >= l.length) {
                    continue;
                }
                if (l[t] <= 0) {
                    l[t] *= cfg.repeatPenalty();
                } else {
                    l[t] /= cfg.repeatPenalty();
                }
                l[t] -= e.getValue() * cfg.frequencyPenalty() + cfg.presencePenalty();
            }
        }
        if (cfg.greedy()) {
            return argmax(l);
        }
        // candidates sorted by logit, highest first (top-k by partial selection when k is set)
        int n = l.length;
        int k = cfg.topK() > 0 ? Math.min(cfg.topK(), n) : n;
        int[] ids = topIndices(l, k);
        while (k > 1 && l[ids[k - 1]] == Float.NEGATIVE_INFINITY) {
            k--; // masked tokens are never candidates
        }
        // top-p over the softmax of the candidates
        double max = l[ids[0]];
        double[] p = new double[k];
        double sum = 0;
        for (int i = 0; i < k; i++) {
            p[i] = Math.exp(l[ids[i]] - max);
            sum += p[i];
        }
        int keep = k;
        if (cfg.topP() < 1f) {
            double cum = 0;
            for (int i = 0; i < k; i++) {
                cum += p[i] / sum;
                if (cum >= cfg.topP()) {
                    keep = i + 1;
                    break;
                }
            }
        }
        // min-p relative to the most likely token
        if (cfg.minP() > 0f) {
            double threshold = Math.log(cfg.minP());
            int m = 1;
            while (m < keep && l[ids[m]] - max >= threshold) {
                m++;
            }
            keep = m;
        }
        // temperature, then draw
        double t = cfg.temperature();
        double total = 0;
        double[] w = new double[keep];
        for (int i = 0; i < keep; i++) {
            w[i] = Math.exp((l[ids[i]] - max) / t);
            total += w[i];
        }
        double r = u * total;
        for (int i = 0; i < keep; i++) {
            r -= w[i];
            if (r < 0) {
                return ids[i];
            }
        }
        return ids[keep - 1];
    }

    /** A copy of {@code logits} with every token not set in {@code allowed} at −∞. */
    public static float[] mask(float[] logits, long[] allowed) {
        float[] l = new float[logits.length];
        int n = logits.length;
        for (int w = 0, base = 0; base < n; w++, base += 64) {
            long bits = w < allowed.length ? allowed[w] : 0L;
            int end = Math.min(n, base + 64);
            if (bits == -1L && end - base == 64) {
                System.arraycopy(logits, base, l, base, 64);
                continue;
            }
            for (int i = base; i < end; i++) {
                l[i] = (bits & (1L << (i - base))) != 0 ? logits[i] : Float.NEGATIVE_INFINITY;
            }
        }
        return l;
    }

    /** Ids of the k largest values, largest first (ties: lower id first). */
    public static int[] topIndices(float[] v, int k) {
        int n = v.length;
        if (k >= n) {
            // one primitive sort of (value, id) keys: the value's bits made order-preserving and inverted (largest
            // first) in the high half, the id (lower first on ties) in the low half; the order of Float.compare
            long[] keys = new long[n];
            for (int i = 0; i < n; i++) {
                int bits = Float.floatToIntBits(v[i] + 0f); // + 0f: -0 ties with 0, as v[a] != v[b] has it
                int ordered = bits ^ ((bits >> 31) & 0x7fffffff);
                keys[i] = ((long) ~ordered << 32) | i;
            }
            Arrays.sort(keys);
            int[] r = new int[n];
            for (int i = 0; i < n; i++) {
                r[i] = (int) keys[i];
            }
            return r;
        }
        // min-heap of the best k seen so far
        int[] heap = new int[k];
        int size = 0;
        for (int i = 0; i < n; i++) {
            if (size < k) {
                heap[size] = i;
                siftUp(heap, size++, v);
            } else if (better(i, heap[0], v)) {
                heap[0] = i;
                siftDown(heap, size, v);
            }
        }
        int[] r = new int[size];
        for (int i = size - 1; i >= 0; i--) {
            r[i] = heap[0];
            heap[0] = heap[--size];
            siftDown(heap, size, v);
        }
        return r;
    }

    private static boolean better(int a, int b, float[] v) {
        return v[a] > v[b] || (v[a] == v[b] && a < b);
    }

    private static void siftUp(int[] h, int i, float[] v) {
        while (i > 0) {
            int p = (i - 1) / 2;
            if (better(h[p], h[i], v)) {
                int t = h[p];
                h[p] = h[i];
                h[i] = t;
                i = p;
            } else {
                return;
            }
        }
    }

    private static void siftDown(int[] h, int size, float[] v) {
        int i = 0;
        while (true) {
            int l = 2 * i + 1, r = l + 1, m = i;
            if (l < size && better(h[m], h[l], v)) {
                m = l;
            }
            if (r < size && better(h[m], h[r], v)) {
                m = r;
            }
            if (m == i) {
                return;
            }
            int t = h[m];
            h[m] = h[i];
            h[i] = t;
            i = m;
        }
    }
}
