package internlm.engine.cpu;

import java.util.Arrays;

/**
 * Keys and values of one sequence, per layer, as floats laid out [position][kvHeads·headDim]. Grows by doubling up
 * to its capacity, so memory follows the length actually used.
 */
final class KvCache {
    final int layers, kvDim, capacity;
    final float[][] k, v;
    int allocated;

    KvCache(int layers, int kvDim, int capacity) {
        this.layers = layers;
        this.kvDim = kvDim;
        this.capacity = capacity;
        this.k = new float[layers][];
        this.v = new float[layers][];
        this.allocated = 0;
    }

    /** Makes room for positions [0, upTo). */
    void ensure(int upTo) {
        if (upTo <= allocated) {
            return;
        }
        if (upTo > capacity) {
            throw new IllegalArgumentException("position " + (upTo - 1) + " is past the context of " + capacity + " tokens");
        }
        int n = Math.min(capacity, Math.max(upTo, Math.max(64, allocated * 2)));
        for (int l = 0; l < layers; l++) {
            k[l] = k[l] == null ? new float[n * kvDim] : Arrays.copyOf(k[l], n * kvDim);
            v[l] = v[l] == null ? new float[n * kvDim] : Arrays.copyOf(v[l], n * kvDim);
        }
        allocated = n;
    }
}
