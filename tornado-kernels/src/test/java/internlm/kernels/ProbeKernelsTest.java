package internlm.kernels;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The bandwidth probe's kernels sum the whole array (both layouts, sizes that do not divide evenly). */
class ProbeKernelsTest {
    @ParameterizedTest
    @CsvSource({"1000,4,32,false", "1000,4,32,true", "4099,8,64,false", "4099,8,64,true", "17,2,16,true"})
    void partialsSumToTheArray(int n, int groups, int local, boolean blocked) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (i % 7) - 3 + 0.25f * (i % 3);
        }
        FloatArray arr = new FloatArray(n), partial = new FloatArray(groups);
        for (int i = 0; i < n; i++) {
            arr.set(i, a[i]);
        }
        WorkGroupEmulator.run(groups * local, local, ctx -> {
            if (blocked) {
                ProbeKernels.probeBlockedRead(ctx, arr, partial, n);
            } else {
                ProbeKernels.probeStreamRead(ctx, arr, partial, n);
            }
        });
        double sum = 0;
        for (int g = 0; g < groups; g++) {
            sum += partial.get(g);
        }
        assertEquals(References.streamRead(a), sum, 1e-3);
    }
}
