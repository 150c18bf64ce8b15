package internlm.engine.cpu;

import java.util.Arrays;

/**
 * Keys and values of one sequence, one array per (layer, KV head) so that attention streams each head's cache from
 * one sequential run of memory. Grows by doubling up to its capacity, so memory follows the length actually used.
 *
 * <ul>
 *   <li>Values: [position][headDim].</li>
 *   <li>Keys: blocks of {@link #BLOCK} positions, each block transposed — [position / BLOCK][headDim][position % BLOCK] —
 *       so the scores of a block are vector FMAs of q[d] with one key row per d ({@link AttentionKernels#keyScores}),
 *       with no reduction across lanes.</li>
 * </ul>
 * With the cache [position][kvHeads·headDim] instead (one head's positions 4 KiB apart, a page each), attention of four
 * sequences at position 580 on the 1.8B model read its cache at ~8 GB/s and took 51–57 ms of a 216–253 ms decode step;
 * in this layout 30–35 ms.
 *
 * <p>Two element types: {@link F32}, and {@link F16} (half the memory and half the bytes attention reads, values
 * rounded to half precision as llama.cpp's default cache does; {@code --kv-cache f16}).
 */
abstract sealed class KvCache permits KvCache.F32, KvCache.F16 {
    /** Positions per transposed key block; a multiple of the vector width. */
    static final int BLOCK = 16;

    final int layers, kvHeads, headDim, capacity;
    int allocated;

    KvCache(int layers, int kvHeads, int headDim, int capacity) {
        this.layers = layers;
        this.kvHeads = kvHeads;
        this.headDim = headDim;
        this.capacity = capacity;
    }

    static KvCache create(boolean f16, int layers, int kvHeads, int headDim, int capacity) {
        return f16 ? new F16(layers, kvHeads, headDim, capacity) : new F32(layers, kvHeads, headDim, capacity);
    }

    /** Makes room for positions [0, upTo). */
    final void ensure(int upTo) {
        if (upTo > capacity) { // checked first: the last block may hold room past the capacity
            throw new IllegalArgumentException("position " + (upTo - 1) + " is past the context of " + capacity + " tokens");
        }
        if (upTo <= allocated) {
            return;
        }
        int n = Math.min(capacity, Math.max(upTo, Math.max(64, allocated * 2)));
        n = (n + BLOCK - 1) / BLOCK * BLOCK;
        grow(n * headDim);
        allocated = n;
    }

    /** Resizes every (layer, head) array to {@code elements}, keeping what it holds. */
    protected abstract void grow(int elements);

    /** Index of key element (position, d) in a head's key array (blocks of BLOCK positions, each transposed). */
    static int keyIndex(int pos, int d, int headDim) {
        return pos / BLOCK * headDim * BLOCK + d * BLOCK + pos % BLOCK;
    }

    /** Stores the keys and values of all KV heads at a position (sources laid out [kvHead][headDim]). */
    abstract void store(int layer, int pos, float[] keys, int kOff, float[] values, int vOff);

    /**
     * Softmax attention of the query heads [0, heads) at q[qOff + h·headDim ..] — all of them sharing KV head
     * {@code kvHead} of a layer — over positions t &lt; len: out[outOff + h·headDim, +headDim) = Σ_t softmax_t(q_h·k_t /
     * √headDim) · v_t. Positions [0, shared) are read from {@code prefix} instead of this cache: a cache of the same
     * kind known to hold the same keys and values there (the same tokens at the same positions with the same RoPE
     * bases, so bit-identical values: the backend is batch-invariant), {@code shared} a multiple of {@link #BLOCK}. The
     * arithmetic is the same whichever cache is read. Heads go in pairs (each cache vector read and converted once for
     * two heads), an odd last one alone; a head's result is the same either way. {@code sa} and {@code sb} hold at
     * least len rounded up to {@link #BLOCK} floats each.
     */
    final void attend(int layer, int kvHead, float[] q, int qOff, int heads, int len, KvCache prefix, int shared,
                      float[] sa, float[] sb, float[] out, int outOff) {
        if (shared % BLOCK != 0 || shared > len || (shared > 0 && prefix.getClass() != getClass())) {
            throw new IllegalArgumentException("a shared prefix must be whole blocks of a cache of the same kind within the length, got " + shared);
        }
        int h = 0;
        for (; h + 2 <= heads; h += 2) {
            int a = h * headDim, b = a + headDim;
            if (shared > 0) {
                prefix.scoresPair(layer, kvHead, q, qOff + a, qOff + b, 0, shared, sa, sb);
            }
            scoresPair(layer, kvHead, q, qOff + a, qOff + b, shared, len, sa, sb);
            softmax(sa, len);
            softmax(sb, len);
            if (shared > 0) {
                prefix.valuesPair(layer, kvHead, sa, sb, 0, shared, out, outOff + a, outOff + b);
            }
            valuesPair(layer, kvHead, sa, sb, shared, len, out, outOff + a, outOff + b);
        }
        if (h < heads) {
            int a = h * headDim;
            if (shared > 0) {
                prefix.scores(layer, kvHead, q, qOff + a, 0, shared, sa);
            }
            scores(layer, kvHead, q, qOff + a, shared, len, sa);
            softmax(sa, len);
            if (shared > 0) {
                prefix.values(layer, kvHead, sa, 0, shared, out, outOff + a);
            }
            values(layer, kvHead, sa, shared, len, out, outOff + a);
        }
    }

    /** Scaled scores of one query head over positions [from, to) (the kernels of {@link AttentionKernels} for this kind). */
    protected abstract void scores(int layer, int kvHead, float[] q, int qOff, int from, int to, float[] s);

    protected abstract void scoresPair(int layer, int kvHead, float[] q, int qa, int qb, int from, int to, float[] sa, float[] sb);

    /** The value sums over positions [from, to), continuing the sums in out when from &gt; 0. */
    protected abstract void values(int layer, int kvHead, float[] p, int from, int to, float[] out, int outOff);

    protected abstract void valuesPair(int layer, int kvHead, float[] pa, float[] pb, int from, int to, float[] out, int oa, int ob);

    /** 1/√headDim, the scale of the scores. */
    final float scale() {
        return (float) (1.0 / Math.sqrt(headDim));
    }

    /** scores[0, len) = their softmax (the exponentials summed in expSum's fixed order). */
    static void softmax(float[] scores, int len) {
        float inv = 1f / VectorKernels.expSum(scores, len, AttentionKernels.max(scores, len));
        for (int t = 0; t < len; t++) {
            scores[t] *= inv;
        }
    }

    /** Float keys and values. */
    static final class F32 extends KvCache {
        /** k[layer][kvHead], v[layer][kvHead], laid out as described above. */
        final float[][][] k, v;

        F32(int layers, int kvHeads, int headDim, int capacity) {
            super(layers, kvHeads, headDim, capacity);
            k = new float[layers][kvHeads][0];
            v = new float[layers][kvHeads][0];
        }

        @Override
        protected void grow(int elements) {
            for (int l = 0; l < layers; l++) {
                for (int h = 0; h < kvHeads; h++) {
                    k[l][h] = Arrays.copyOf(k[l][h], elements);
                    v[l][h] = Arrays.copyOf(v[l][h], elements);
                }
            }
        }

        @Override
        void store(int layer, int pos, float[] keys, int kOff, float[] values, int vOff) {
            for (int h = 0; h < kvHeads; h++) {
                float[] kh = k[layer][h];
                for (int d = 0, o = kOff + h * headDim; d < headDim; d++) {
                    kh[keyIndex(pos, d, headDim)] = keys[o + d];
                }
                System.arraycopy(values, vOff + h * headDim, v[layer][h], pos * headDim, headDim);
            }
        }

        @Override
        protected void scores(int layer, int kvHead, float[] q, int qOff, int from, int to, float[] s) {
            AttentionKernels.keyScores(q, qOff, k[layer][kvHead], from, to, headDim, scale(), s);
        }

        @Override
        protected void scoresPair(int layer, int kvHead, float[] q, int qa, int qb, int from, int to, float[] sa, float[] sb) {
            AttentionKernels.keyScores2(q, qa, qb, k[layer][kvHead], from, to, headDim, scale(), sa, sb);
        }

        @Override
        protected void values(int layer, int kvHead, float[] p, int from, int to, float[] out, int outOff) {
            AttentionKernels.weightedRows(p, from, to, v[layer][kvHead], 0, headDim, out, outOff, headDim);
        }

        @Override
        protected void valuesPair(int layer, int kvHead, float[] pa, float[] pb, int from, int to, float[] out, int oa, int ob) {
            AttentionKernels.weightedRows2(pa, pb, from, to, v[layer][kvHead], headDim, out, oa, ob);
        }
    }

    /** Half-precision keys and values (rounded to nearest even when stored). */
    static final class F16 extends KvCache {
        final short[][][] k, v;

        F16(int layers, int kvHeads, int headDim, int capacity) {
            super(layers, kvHeads, headDim, capacity);
            k = new short[layers][kvHeads][0];
            v = new short[layers][kvHeads][0];
        }

        @Override
        protected void grow(int elements) {
            for (int l = 0; l < layers; l++) {
                for (int h = 0; h < kvHeads; h++) {
                    k[l][h] = Arrays.copyOf(k[l][h], elements);
                    v[l][h] = Arrays.copyOf(v[l][h], elements);
                }
            }
        }

        @Override
        void store(int layer, int pos, float[] keys, int kOff, float[] values, int vOff) {
            for (int h = 0; h < kvHeads; h++) {
                short[] kh = k[layer][h], vh = v[layer][h];
                for (int d = 0, o = h * headDim; d < headDim; d++) {
                    kh[keyIndex(pos, d, headDim)] = Float.floatToFloat16(keys[kOff + o + d]);
                    vh[pos * headDim + d] = Float.floatToFloat16(values[vOff + o + d]);
                }
            }
        }

        @Override
        protected void scores(int layer, int kvHead, float[] q, int qOff, int from, int to, float[] s) {
            AttentionKernels.keyScoresHalf(q, qOff, k[layer][kvHead], from, to, headDim, scale(), s);
        }

        @Override
        protected void scoresPair(int layer, int kvHead, float[] q, int qa, int qb, int from, int to, float[] sa, float[] sb) {
            AttentionKernels.keyScoresHalf2(q, qa, qb, k[layer][kvHead], from, to, headDim, scale(), sa, sb);
        }

        @Override
        protected void values(int layer, int kvHead, float[] p, int from, int to, float[] out, int outOff) {
            AttentionKernels.weightedRowsHalf(p, from, to, v[layer][kvHead], headDim, out, outOff);
        }

        @Override
        protected void valuesPair(int layer, int kvHead, float[] pa, float[] pb, int from, int to, float[] out, int oa, int ob) {
            AttentionKernels.weightedRowsHalf2(pa, pb, from, to, v[layer][kvHead], headDim, out, oa, ob);
        }
    }
}
