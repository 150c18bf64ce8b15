package internlm.engine.bench;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * The CPU's memory bandwidth as the CPU backend can use it: {@code threads} threads each stream their own heap array
 * (far larger than the caches) with Vector API loads and four independent accumulators; the rate of the fastest
 * pass over all arrays (every thread reading at once) counts.
 */
public final class CpuBandwidth {
    private CpuBandwidth() {}

    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

    /** GB/s over {@code bytes} in total (split between the threads), best of {@code passes} after a warm-up pass. */
    public static double measure(int threads, long bytes, int passes) throws Exception {
        int per = (int) Math.min(Integer.MAX_VALUE - 64, Math.max(S.length() * 4L, bytes / 4 / threads)) / (S.length() * 4) * (S.length() * 4);
        float[][] arrays = new float[threads][];
        for (int t = 0; t < threads; t++) {
            arrays[t] = new float[per];
            for (int i = 0; i < per; i++) {
                arrays[t][i] = (i % 5) - 2;
            }
        }
        double best = 0;
        try (ExecutorService pool = Executors.newFixedThreadPool(threads)) {
            for (int p = 0; p <= passes; p++) {
                List<Callable<Float>> work = new ArrayList<>();
                for (float[] a : arrays) {
                    work.add(() -> sum(a));
                }
                long t0 = System.nanoTime();
                List<Future<Float>> fs = pool.invokeAll(work);
                double total = 0;
                for (Future<Float> f : fs) {
                    total += f.get();
                }
                long ns = System.nanoTime() - t0;
                if (Double.isNaN(total)) {
                    throw new IllegalStateException("bandwidth probe summed NaN");
                }
                if (p > 0) {
                    best = Math.max(best, 4.0 * per * threads / ns);
                }
            }
        }
        return best;
    }

    /** Sum of the array (the result keeps the loads alive). */
    static float sum(float[] a) {
        FloatVector s0 = FloatVector.zero(S), s1 = s0, s2 = s0, s3 = s0;
        int l = S.length(), i = 0;
        for (; i + 4 * l <= a.length; i += 4 * l) {
            s0 = s0.add(FloatVector.fromArray(S, a, i));
            s1 = s1.add(FloatVector.fromArray(S, a, i + l));
            s2 = s2.add(FloatVector.fromArray(S, a, i + 2 * l));
            s3 = s3.add(FloatVector.fromArray(S, a, i + 3 * l));
        }
        float r = s0.add(s1).add(s2.add(s3)).reduceLanes(VectorOperators.ADD);
        for (; i < a.length; i++) {
            r += a[i];
        }
        return r;
    }
}
