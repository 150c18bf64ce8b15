package internlm.bench;

import internlm.engine.cpu.Weight;
import internlm.loader.TensorData;
import internlm.loader.gguf.GgmlType;
import internlm.loader.synthetic.SyntheticGguf;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;
import org.openjdk.jmh.infra.Blackhole;

import java.io.ByteArrayOutputStream;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * Single-thread matrix-vector products of one 2048×2048 weight (an InternLM2.5-1.8B projection) in each stored type.
 * Bytes per op divided by the time gives the kernel's GB/s; the matrix (4–16 MB) mostly fits in L2/L3, so this
 * measures the compute side of the kernels.
 *
 * <pre>java --add-modules jdk.incubator.vector -jar bench/target/benchmarks.jar KernelBenchmark</pre>
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector"})
public class KernelBenchmark {
    @Param({"Q8_0", "Q4_0", "F16", "BF16", "F32"})
    public String type;

    private Weight weight;
    private float[] x;
    private float[] y;

    @Setup
    public void setup() throws Exception {
        int n = 2048;
        SplittableRandom r = new SplittableRandom(1);
        float[] w = new float[n * n];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) (r.nextDouble() * 2 - 1);
        }
        GgmlType t = GgmlType.valueOf(type);
        ByteArrayOutputStream bo = new ByteArrayOutputStream();
        SyntheticGguf.encode(t, w, bo);
        // native memory, as for a mapped model file (heap segments take slower paths in the Vector API)
        byte[] bytes = bo.toByteArray();
        MemorySegment seg = java.lang.foreign.Arena.ofAuto().allocate(bytes.length, 64);
        MemorySegment.copy(MemorySegment.ofArray(bytes), 0, seg, 0, bytes.length);
        TensorData td = new TensorData("w", t, new long[] {n, n}, seg);
        weight = Weight.of(td, true);
        if (weight.needsPacking()) {
            weight.pack(td, 0, n);
        }
        x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) r.nextDouble();
        }
        y = new float[n];
    }

    @Benchmark
    public void matvec(Blackhole bh) {
        weight.matmul(x, x.length, 1, y, y.length, 0, 0, weight.rows, null);
        bh.consume(y);
    }
}
