package internlm.engine.cpu;

import java.util.Arrays;

/**
 * Keys and values of one sequence, one array per (layer, KV head) so that attention streams each head's cache from
 * one sequential run of memory. Grows by doubling up to its capacity, so memory follows the length actually used.
 *
 * <ul>
 *   <li>Values: [position][headDim].</li>
 *   <li>Keys: blocks of {@link #BLOCK} positions, each block transposed — [position / BLOCK][headDim][position % BLOCK] —
 *       so the scores of a block are vector FMAs of q[d] with one key row per d ({@link VectorKernels#keyScores}),
 *       with no reduction across lanes.</li>
 * </ul>
 * With the cache [position][kvHeads·headDim] instead (one head's positions 4 KiB apart, a page each), attention of four
 * sequences at position 580 on the 1.8B model read its cache at ~8 GB/s and took 51–57 ms of a 216–253 ms decode step.
 */
final class KvCache {
    /** Positions per transposed key block; a multiple of the vector width. */
    static final int BLOCK = 16;

    final int layers, kvHeads, headDim, capacity;
    /** k[layer][kvHead], v[layer][kvHead], laid out as described above. */
    final float[][][] k, v;
    int allocated;

    KvCache(int layers, int kvHeads, int headDim, int capacity) {
        this.layers = layers;
        this.kvHeads = kvHeads;
        this.headDim = headDim;
        this.capacity = capacity;
        this.k = new float[layers][kvHeads][];
        this.v = new float[layers][kvHeads][];
        this.allocated = 0;
    }

    /** Makes room for positions [0, upTo). */
    void ensure(int upTo) {
        if (upTo > capacity) { // checked first: the last block may hold room past the capacity
            throw new IllegalArgumentException("position " + (upTo - 1) + " is past the context of " + capacity + " tokens");
        }
        if (upTo <= allocated) {
            return;
        }
        int n = Math.min(capacity, Math.max(upTo, Math.max(64, allocated * 2)));
        n = (n + BLOCK - 1) / BLOCK * BLOCK;
        for (int l = 0; l < layers; l++) {
            for (int h = 0; h < kvHeads; h++) {
                k[l][h] = k[l][h] == null ? new float[n * headDim] : Arrays.copyOf(k[l][h], n * headDim);
                v[l][h] = v[l][h] == null ? new float[n * headDim] : Arrays.copyOf(v[l][h], n * headDim);
            }
        }
        allocated = n;
    }

    /** Stores the keys and values of all KV heads at a position (src laid out [kvHead][headDim]). */
    void store(int layer, int pos, float[] keys, int kOff, float[] values, int vOff) {
        int hd = headDim, base = pos / BLOCK * hd * BLOCK + pos % BLOCK;
        for (int h = 0; h < kvHeads; h++) {
            float[] kh = k[layer][h];
            for (int d = 0, o = kOff + h * hd; d < hd; d++) {
                kh[base + d * BLOCK] = keys[o + d];
            }
            System.arraycopy(values, vOff + h * hd, v[layer][h], pos * hd, hd);
        }
    }
}
