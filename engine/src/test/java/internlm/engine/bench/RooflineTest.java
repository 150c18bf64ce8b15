package internlm.engine.bench;

import internlm.loader.LoadedModel;
import internlm.loader.Progress;
import internlm.loader.gguf.GgmlType;
import internlm.loader.gguf.GgufModelLoader;
import internlm.loader.synthetic.SyntheticGguf;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class RooflineTest {

    @Test
    void tokensPerSecondFromBandwidthAndBytes() {
        // one sequence, one token at depth 0: weights + one position of KV
        assertEquals(99.9900009999, Roofline.tokensPerSecond(100e9, 1_000_000_000L, 100_000L, 0, 1, 1), 1e-6);
        // 4 sequences decoding 2 tokens after 1000: mean attended positions 1001.5, weights read once per step for 4 tokens
        assertEquals(285.591889190347, Roofline.tokensPerSecond(100e9, 1_000_000_000L, 100_000L, 1000, 2, 4), 1e-6);
        assertEquals(1001.5, Roofline.meanAttended(1000, 2), 0);
        assertEquals((1e9 + 4 * 1e5 * 1001.5) / 4, Roofline.bytesPerToken(1_000_000_000L, 100_000L, 1000, 2, 4), 1e-3);
        assertThrows(IllegalArgumentException.class, () -> Roofline.tokensPerSecond(0, 1, 1, 0, 1, 1));
    }

    @Test
    void bytesPerStepOfALoadedModel(@TempDir Path tmp) throws Exception {
        Path f = tmp.resolve("m.gguf");
        new SyntheticGguf(SyntheticGguf.Spec.internlm2(64, 2, 4, 2, 128, GgmlType.Q8_0, 1)).write(f);
        try (LoadedModel m = GgufModelLoader.load(f, Progress.NONE)) {
            int vocab = m.config().vocabSize();
            long perLayer = (64 * 64 + 64 * 32 + 64 * 32 + 64 * 64 + 3 * 64 * 128) / 32 * 34 + 2 * 64 * 4;
            long expect = 2 * perLayer + 64 * 4 + 64L * vocab / 32 * 34 + 64 / 32 * 34;
            assertEquals(expect, Roofline.weightBytesPerStep(m));
            assertEquals(2L * 2 * 32 * 4, Roofline.kvBytesPerPosition(m.config(), 4));
        }
    }
}
