import internlm.loader.gguf.GgmlType;
import internlm.loader.synthetic.SyntheticGguf;
import internlm.loader.synthetic.SyntheticGguf.Spec;

import java.nio.file.Path;

/**
 * Writes a synthetic InternLM2.5-shaped GGUF (seeded random weights) for speed runs where no model files can be copied:
 * run with the project's jar on the class path, in the JDK's source-file mode (the runtime needs jdk.compiler):
 * {@code java -cp internlm-cli.jar SynthModel.java SHAPE TYPE OUT} with SHAPE 1.8b, 7b, d1024 (1024-dim, 8 layers: PoCL measurements), tiny
 * (PoCL trial runs) or d64-l24 (24 layers of 64 dimensions: launch overhead per token, kernels negligible) and
 * TYPE f16, q8_0, q4_0 or f32. The vocabulary is padded to the real models' 92544 tokens (tiny: 1024), so the LM head
 * and embedding have their real sizes.
 */
public class SynthModel {
    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: SynthModel 1.8b|7b|d1024|tiny|d64-l24 f16|q8_0|q4_0|f32 OUT.gguf");
            System.exit(2);
        }
        GgmlType type = switch (args[1]) {
            case "f16" -> GgmlType.F16;
            case "q8_0" -> GgmlType.Q8_0;
            case "q4_0" -> GgmlType.Q4_0;
            case "f32" -> GgmlType.F32;
            default -> throw new IllegalArgumentException("type must be f16, q8_0, q4_0 or f32");
        };
        Spec spec;
        int vocab;
        switch (args[0]) {
            case "1.8b" -> { spec = new Spec("internlm2", 2048, 24, 16, 8, 0, 8192, 32768, 1e6, 1e-5f, type, false, 1); vocab = 92544; }
            case "7b" -> { spec = new Spec("internlm2", 4096, 32, 32, 8, 0, 14336, 32768, 5e7, 1e-5f, type, false, 1); vocab = 92544; }
            case "d1024" -> { spec = new Spec("internlm2", 1024, 8, 16, 8, 0, 4096, 32768, 1e6, 1e-5f, type, false, 1); vocab = 92544; }
            case "tiny" -> { spec = new Spec("internlm2", 256, 4, 4, 2, 0, 704, 4096, 1e6, 1e-5f, type, false, 1); vocab = 1024; }
            // the 1.8B model's 24 layers with negligible kernels: decode time is the host's launch overhead
            case "d64-l24" -> { spec = new Spec("internlm2", 64, 24, 4, 2, 0, 128, 4096, 1e6, 1e-5f, type, false, 1); vocab = 1024; }
            default -> throw new IllegalArgumentException("shape must be 1.8b, 7b, d1024, tiny or d64-l24");
        }
        SyntheticGguf g = new SyntheticGguf(spec);
        for (int i = SyntheticGguf.vocabulary().length; i < vocab; i++) {
            g.extraToken("<synth_" + i + ">", 1);
        }
        long t0 = System.nanoTime();
        g.write(Path.of(args[2]));
        System.err.printf("wrote %s (%s %s) in %.1f s%n", args[2], args[0], args[1], (System.nanoTime() - t0) / 1e9);
    }
}
