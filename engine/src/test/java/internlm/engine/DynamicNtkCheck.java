package internlm.engine;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import internlm.engine.generate.Session;
import internlm.engine.model.Backend;
import internlm.loader.LoadedModel;
import internlm.loader.ModelConfig;
import internlm.loader.ModelConfig.RopeScaling;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * A reusable check of dynamic NTK RoPE past the trained window, for any backend: a copy of the InternLM2 HF test
 * directory whose config says {@code max_position_embeddings = 16} and {@code rope_scaling = {type: dynamic,
 * factor: 2.0}}, driven the way {@link Session} drives a backend (one base per evaluated length, from
 * {@link Session#ropeBase}), and compared with the independent float64 {@link ReferenceForward} fed the bases of the
 * spec's formula. The GPU backend's tests can call {@link #run} with their backend.
 */
public final class DynamicNtkCheck {
    private DynamicNtkCheck() {}

    public static final int WINDOW = 16;
    public static final double FACTOR = 2.0;

    /** The spec §6.1 formula, written independently of Session.ropeBase: base·(f·L/M − (f−1))^(d/(d−2)) for L > M. */
    public static double specBase(double base, double factor, int window, int headDim, int length) {
        if (length <= window) {
            return base;
        }
        double alpha = factor * length / window - (factor - 1);
        return base * Math.pow(alpha, headDim / (headDim - 2.0));
    }

    /** Writes the small-window dynamic-NTK model (an HF directory) under {@code parent} and returns it. */
    public static Path writeModel(Path parent) throws IOException {
        Path src = Fixtures.testdata().resolve("hf").resolve("internlm2-tiny-bf16-2shards");
        Path dst = parent.resolve("internlm2-tiny-dynamic-ntk-window16");
        Files.createDirectories(dst);
        try (Stream<Path> s = Files.list(src)) {
            for (Path p : s.toList()) {
                Files.copy(p, dst.resolve(p.getFileName()));
            }
        }
        ObjectMapper om = new ObjectMapper();
        Path cfg = dst.resolve("config.json");
        ObjectNode o = (ObjectNode) om.readTree(cfg.toFile());
        o.put("max_position_embeddings", WINDOW);
        o.putObject("rope_scaling").put("type", "dynamic").put("factor", FACTOR);
        Files.writeString(cfg, om.writerWithDefaultPrettyPrinter().writeValueAsString(o));
        return dst;
    }

    /**
     * Prefills {@code promptLength} tokens (all rotated with the base of that length, as HF does for one forward),
     * then decodes {@code steps} tokens one at a time (each with the base of the length reached), comparing every
     * step's logits with the reference within tol·max|logit| + tol/2. Returns the largest difference seen.
     */
    public static double run(LoadedModel m, Backend backend, int promptLength, int steps, double tol) {
        ModelConfig c = m.config();
        assertEquals(RopeScaling.Type.DYNAMIC, c.ropeScaling().type(), "the model must have dynamic NTK scaling");
        int capacity = promptLength + steps + 1;
        ReferenceForward ref = new ReferenceForward(m, capacity);
        int[] prompt = new int[promptLength];
        for (int i = 0; i < promptLength; i++) {
            prompt[i] = 3 + (i * 37) % 256;
        }
        double worst = 0;
        float[] logits = new float[c.vocabSize()];
        try (Backend.Sequence s = backend.openSequence(capacity)) {
            backend.forward(s, prompt, promptLength, 0, Session.ropeBase(c, promptLength), logits);
            double[] expected = null;
            double base = specBase(c.ropeTheta(), c.ropeScaling().factor(), c.contextLength(), c.headDim(), promptLength);
            for (int i = 0; i < promptLength; i++) {
                expected = ref.forward(prompt[i], i, base);
            }
            worst = Math.max(worst, compare(expected, logits, "prefill of " + promptLength, tol));
            for (int step = 0; step < steps; step++) {
                int pos = promptLength + step;
                int tok = 3 + (int) (Math.abs(Double.doubleToLongBits(expected[5])) % 390); // deterministic, data-dependent
                double b = specBase(c.ropeTheta(), c.ropeScaling().factor(), c.contextLength(), c.headDim(), pos + 1);
                expected = ref.forward(tok, pos, b);
                backend.forward(s, new int[] {tok}, 1, pos, Session.ropeBase(c, pos + 1), logits);
                worst = Math.max(worst, compare(expected, logits, "decode at position " + pos, tol));
            }
        }
        return worst;
    }

    private static double compare(double[] expected, float[] actual, String what, double tol) {
        double scale = 0;
        for (double v : expected) {
            scale = Math.max(scale, Math.abs(v));
        }
        double worst = 0;
        for (int i = 0; i < expected.length; i++) {
            assertTrue(Float.isFinite(actual[i]), what + ": logit " + i + " is " + actual[i]);
            double diff = Math.abs(expected[i] - actual[i]);
            assertTrue(diff <= tol * scale + tol / 2, what + ": logit " + i + " = " + actual[i] + ", reference " + expected[i]);
            worst = Math.max(worst, diff);
        }
        return worst;
    }
}
