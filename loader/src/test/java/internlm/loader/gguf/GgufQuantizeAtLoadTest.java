package internlm.loader.gguf;

import internlm.loader.LoadedModel;
import internlm.loader.Progress;
import internlm.loader.TensorData;
import internlm.loader.TestData;
import internlm.loader.quant.TensorConversion;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static org.junit.jupiter.api.Assertions.*;

/** {@code --quantize} on GGUF files: float matrices are converted with ggml's reference quantizers, the rest kept. */
class GgufQuantizeAtLoadTest {
    @Test
    void floatMatricesAreQuantizedOthersKept() throws Exception {
        try (LoadedModel q = GgufModelLoader.load(TestData.fixture("internlm2-tiny-f32.gguf"), GgmlType.Q4_0, Progress.NONE);
             LoadedModel f = GgufModelLoader.load(TestData.fixture("internlm2-tiny-f32.gguf"), Progress.NONE);
             Arena arena = Arena.ofConfined()) {
            for (TensorData t : f.tensors().values()) {
                TensorData u = q.tensor(t.name());
                if (t.dims().length == 1) {
                    assertEquals(GgmlType.F32, u.type(), t.name());
                    continue;
                }
                assertEquals(GgmlType.Q4_0, u.type(), t.name());
                float[] v = TensorConversion.toFloats(t);
                MemorySegment expect = arena.allocate(GgmlType.Q4_0.byteSize(v.length));
                TensorConversion.encode(v, 0, v.length, GgmlType.Q4_0, expect, 0);
                assertEquals(-1, expect.mismatch(u.data()), t.name());
            }
            assertTrue(q.notes().stream().anyMatch(n -> n.contains("converted to Q4_0")), q.notes().toString());
        }
        // quantized tensors stay as they are; F16 rows that are not whole blocks stay F16
        try (LoadedModel q = GgufModelLoader.load(TestData.fixture("internlm2-d96-l3-gqa3-f176-q4_0-s7.gguf"), GgmlType.Q8_0, Progress.NONE)) {
            assertEquals(GgmlType.Q4_0, q.tensor("blk.0.attn_q.weight").type());
            assertEquals(GgmlType.F16, q.tensor("blk.0.ffn_down.weight").type());
        }
        assertThrows(IllegalArgumentException.class, () -> GgufModelLoader.load(TestData.fixture("internlm2-tiny-f32.gguf"), GgmlType.Q6_K, Progress.NONE));
    }
}
