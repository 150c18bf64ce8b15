package internlm.engine;

import internlm.engine.cpu.CpuBackend;
import internlm.engine.model.Backend;
import internlm.loader.LoadedModel;
import internlm.loader.Progress;
import internlm.loader.gguf.GgmlType;
import internlm.loader.gguf.GgufModelLoader;
import internlm.loader.synthetic.SyntheticGguf;
import internlm.loader.synthetic.SyntheticGguf.Spec;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Path;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The CPU backend (exact float activations) against the independent float64 reference on shapes the llama.cpp
 * fixtures do not cover: head_dim ≠ dim/heads, q/k/v/o biases (InternLM v1), 16:1 GQA (InternLM3), odd sizes, and
 * every weight type. A prompt longer than one batch checks batched prefill against token-at-a-time decoding.
 */
class ReferenceForwardTest {
    @TempDir
    Path tmp;

    static Stream<Spec> shapes() {
        return Stream.of(
                new Spec("llama", 64, 2, 4, 2, 32, 96, 512, 1e4, 1e-6f, GgmlType.F32, true, 1),      // head_dim 32 ≠ 16, biases
                new Spec("internlm2", 128, 2, 16, 1, 0, 160, 512, 5e7, 1e-5f, GgmlType.Q8_0, false, 2), // 16:1 GQA
                new Spec("internlm2", 96, 2, 6, 3, 0, 224, 512, 1e6, 1e-5f, GgmlType.Q4_0, false, 3),
                new Spec("llama", 72, 1, 6, 2, 0, 100, 512, 1e6, 1e-5f, GgmlType.F16, false, 4),       // odd sizes
                new Spec("internlm2", 64, 2, 4, 4, 0, 128, 512, 1e6, 1e-5f, GgmlType.BF16, false, 5));
    }

    @ParameterizedTest
    @MethodSource("shapes")
    void cpuBackendMatchesReference(Spec spec) throws Exception {
        Path p = tmp.resolve("m.gguf");
        new SyntheticGguf(spec).write(p);
        try (LoadedModel m = GgufModelLoader.load(p, Progress.NONE);
             CpuBackend cpu = new CpuBackend(m, 2, false, Progress.NONE)) {
            ReferenceForward ref = new ReferenceForward(m);
            int[] prompt = new int[CpuBackend.MAX_BATCH + 9]; // longer than one batch
            for (int i = 0; i < prompt.length; i++) {
                prompt[i] = 3 + (i * 37) % 256;
            }
            double base = m.config().ropeTheta();
            double[] expected = null;
            for (int i = 0; i < prompt.length; i++) {
                expected = ref.forward(prompt[i], i, base);
            }
            float[] batched = new float[m.config().vocabSize()];
            try (Backend.Sequence s = cpu.openSequence(CpuBackend.MAX_BATCH + 16)) {
                cpu.forward(s, prompt, prompt.length, 0, base, batched);
                assertClose(expected, batched, spec + " batched prefill");
                // two more decode steps, one token at a time
                for (int pos = prompt.length; pos < prompt.length + 2; pos++) {
                    int tok = 100 + pos;
                    expected = ref.forward(tok, pos, base);
                    float[] one = new float[m.config().vocabSize()];
                    cpu.forward(s, new int[] {tok}, 1, pos, base, one);
                    assertClose(expected, one, spec + " decode at " + pos);
                }
            }
            try (Backend.Sequence s = cpu.openSequence(CpuBackend.MAX_BATCH + 16)) {
                float[] stepwise = new float[m.config().vocabSize()];
                for (int i = 0; i < prompt.length; i++) {
                    cpu.forward(s, new int[] {prompt[i]}, 1, i, base, stepwise);
                }
                ReferenceForward ref2 = new ReferenceForward(m);
                double[] e2 = null;
                for (int i = 0; i < prompt.length; i++) {
                    e2 = ref2.forward(prompt[i], i, base);
                }
                assertClose(e2, stepwise, spec + " token-at-a-time prefill");
            }
        }
    }

    private static void assertClose(double[] expected, float[] actual, String what) {
        double scale = 0;
        for (double v : expected) {
            scale = Math.max(scale, Math.abs(v));
        }
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], actual[i], 2e-4 * scale + 1e-4, what + ": logit " + i);
        }
    }
}
