package internlm.engine.cpu;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The CPU cache layout (transposed key blocks, values per head) and the attention kernels over it, against softmax
 * attention written out in double over plain [position][kvHead][headDim] arrays.
 */
class KvCacheAttentionTest {

    @ParameterizedTest
    @CsvSource({"1,1,64,1,false", "15,2,64,2,false", "16,2,128,2,false", "17,1,128,3,false", "63,4,32,1,false", "64,2,128,4,false",
            "65,2,128,2,false", "130,8,64,2,false", "581,2,128,2,false", "700,1,96,3,false",
            "1,1,64,2,true", "17,2,128,3,true", "63,4,32,1,true", "130,8,64,2,true", "581,2,128,2,true", "700,1,96,3,true"})
    void attentionOverTheCacheMatchesTheDefinition(int len, int kvHeads, int headDim, int group, boolean f16) {
        SplittableRandom r = new SplittableRandom(len * 131L + kvHeads * 7L + headDim + group);
        int layers = 2, kvDim = kvHeads * headDim;
        KvCache cache = KvCache.create(f16, layers, kvHeads, headDim, 1024);
        float[][] keys = new float[len][kvDim], values = new float[len][kvDim];
        for (int t = 0; t < len; t++) {
            for (int i = 0; i < kvDim; i++) {
                keys[t][i] = stored((float) (r.nextDouble() * 2 - 1), f16);
                values[t][i] = stored((float) (r.nextDouble() * 2 - 1), f16);
            }
        }
        // positions stored one at a time, growing the cache as a sequence does (the layer under test is 1)
        float[] junk = new float[kvDim];
        java.util.Arrays.fill(junk, 1e4f);
        for (int t = 0; t < len; t++) {
            cache.ensure(t + 1);
            cache.store(0, t, junk, 0, junk, 0);
            cache.store(1, t, keys[t], 0, values[t], 0);
        }
        assertTrue(cache.allocated >= len && cache.allocated % KvCache.BLOCK == 0, "allocated " + cache.allocated);
        // the query heads of one KV head's group, after 3 floats of something else
        float[] q = new float[3 + group * headDim];
        for (int i = 0; i < q.length; i++) {
            q[i] = (float) (r.nextDouble() * 2 - 1);
        }
        int room = (len + KvCache.BLOCK - 1) / KvCache.BLOCK * KvCache.BLOCK;
        float[] sa = new float[room], sb = new float[room];
        for (int h = 0; h < kvHeads; h++) {
            float[] out = new float[group * headDim + 2];
            out[group * headDim + 1] = 42;
            cache.attend(1, h, q, 3, group, len, null, 0, sa, sb, out, 1);
            for (int qh = 0; qh < group; qh++) {
                double[] s = new double[len];
                double max = Double.NEGATIVE_INFINITY, sum = 0;
                for (int t = 0; t < len; t++) {
                    for (int d = 0; d < headDim; d++) {
                        s[t] += (double) q[3 + qh * headDim + d] * keys[t][h * headDim + d];
                    }
                    s[t] /= Math.sqrt(headDim);
                    max = Math.max(max, s[t]);
                }
                for (int t = 0; t < len; t++) {
                    s[t] = Math.exp(s[t] - max);
                    sum += s[t];
                }
                for (int d = 0; d < headDim; d++) {
                    double ref = 0;
                    for (int t = 0; t < len; t++) {
                        ref += s[t] / sum * values[t][h * headDim + d];
                    }
                    assertEquals(ref, out[1 + qh * headDim + d], 2e-5, "len " + len + " KV head " + h + " query head " + qh + " dim " + d);
                }
                // a head computed alone (the single-head kernels) has the same bits as in its pair
                float[] alone = new float[headDim + 1];
                cache.attend(1, h, q, 3 + qh * headDim, 1, len, null, 0, sa, sb, alone, 1);
                for (int d = 0; d < headDim; d++) {
                    assertEquals(Float.floatToRawIntBits(alone[1 + d]), Float.floatToRawIntBits(out[1 + qh * headDim + d]), "query head " + qh + " dim " + d + " alone vs in its group");
                }
            }
            assertEquals(0f, out[0], "nothing written before the heads");
            assertEquals(42f, out[group * headDim + 1], "nothing written past the heads");
            // the same attention with the first whole blocks read from another cache holding the same prefix (and
            // something else after it): the same bits
            int shared = Math.min(len, 2 * KvCache.BLOCK + 3) / KvCache.BLOCK * KvCache.BLOCK;
            if (shared > 0) {
                KvCache other = KvCache.create(f16, layers, kvHeads, headDim, 1024);
                for (int t = 0; t < len + 5; t++) {
                    other.ensure(t + 1);
                    other.store(1, t, t < shared ? keys[t] : junk, 0, t < shared ? values[t] : junk, 0);
                }
                float[] split = new float[group * headDim + 2];
                split[group * headDim + 1] = 42;
                cache.attend(1, h, q, 3, group, len, other, shared, sa, sb, split, 1);
                for (int i = 0; i < split.length; i++) {
                    assertEquals(Float.floatToRawIntBits(out[i]), Float.floatToRawIntBits(split[i]), "prefix of " + shared + " read from another cache, element " + i);
                }
                assertThrows(IllegalArgumentException.class, () -> cache.attend(1, 0, q, 3, group, len, other, shared + 1, sa, sb, split, 1));
            }
        }
    }

    /** What the cache holds for x: x itself, or x rounded to half precision (nearest even). */
    private static float stored(float x, boolean f16) {
        return f16 ? Float.float16ToFloat(Float.floatToFloat16(x)) : x;
    }

    /** Half precision read back by the vector kernels: exact for normals, subnormals and both zeros. */
    @org.junit.jupiter.api.Test
    void halfKeysAreReadExactly() {
        float[] special = {0f, -0f, 1f, -1f, 65504f, -65504f, 6.1035156e-5f /* smallest normal */, 5.9604645e-8f /* smallest subnormal */,
                -3.0517578e-5f /* subnormal */, 0.33325195f, 1234.5f, -0.0009994507f};
        int headDim = 16;
        KvCache.F16 cache = new KvCache.F16(1, 1, headDim, 64);
        cache.ensure(special.length);
        float[] one = new float[headDim];
        for (int t = 0; t < special.length; t++) {
            float[] key = new float[headDim];
            key[5] = special[t];
            cache.store(0, t, key, 0, one, 0);
        }
        float[] q = new float[headDim];
        q[5] = 1f;
        float[] scores = new float[64];
        AttentionKernels.keyScoresHalf(q, 0, cache.k[0][0], 0, special.length, headDim, 1f, scores);
        for (int t = 0; t < special.length; t++) {
            float want = Float.float16ToFloat(Float.floatToFloat16(special[t]));
            assertEquals(want, scores[t], 0f, "value " + special[t]); // exact (a zero key gives +0: the sum starts at +0)
        }
    }

    /** Scores of the transposed key blocks against per-position dot products, and the maximum over the length only. */
    @ParameterizedTest
    @CsvSource({"1,64", "16,64", "33,128", "100,128", "257,80"})
    void keyScoresMatchDotProducts(int len, int headDim) {
        SplittableRandom r = new SplittableRandom(len + 1000L * headDim);
        KvCache.F32 cache = new KvCache.F32(1, 1, headDim, 512);
        cache.ensure(len);
        float[][] keys = new float[len][headDim];
        for (int t = 0; t < len; t++) {
            for (int d = 0; d < headDim; d++) {
                keys[t][d] = (float) (r.nextDouble() * 4 - 2);
            }
            cache.store(0, t, keys[t], 0, new float[headDim], 0);
        }
        // positions past len hold a large key: they must not reach the maximum
        for (int t = len; t < cache.allocated; t++) {
            float[] big = new float[headDim];
            java.util.Arrays.fill(big, 100f);
            cache.store(0, t, big, 0, big, 0);
        }
        float[] q = new float[headDim];
        for (int d = 0; d < headDim; d++) {
            q[d] = 1f / (d + 1);
        }
        float[] scores = new float[cache.allocated];
        AttentionKernels.keyScores(q, 0, cache.k[0][0], 0, len, headDim, 0.5f, scores);
        float max = AttentionKernels.max(scores, len);
        double refMax = Double.NEGATIVE_INFINITY;
        for (int t = 0; t < len; t++) {
            double ref = 0;
            for (int d = 0; d < headDim; d++) {
                ref += (double) q[d] * keys[t][d];
            }
            ref *= 0.5;
            refMax = Math.max(refMax, ref);
            assertEquals(ref, scores[t], 1e-4, "position " + t);
        }
        assertEquals(refMax, max, 1e-4);
    }

    @org.junit.jupiter.api.Test
    void positionsPastTheCapacityAreRefused() {
        KvCache cache = new KvCache.F16(1, 1, 8, 40);
        cache.ensure(40);
        assertEquals(48, cache.allocated, "rounded up to whole key blocks");
        assertThrows(IllegalArgumentException.class, () -> cache.ensure(41));
    }
}
