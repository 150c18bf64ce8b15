package internlm.loader.quant;

import internlm.loader.TestData;
import internlm.loader.gguf.GgmlType;
import internlm.loader.gguf.GgufFile;
import internlm.loader.gguf.GgufTensor;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Our (de)quantizers against files written by the harness, whose Q8_0/Q4_0 tensors are ports of ggml's reference
 * quantizers applied to the same float weights as the F32 file (same seed), and whose F16 file uses IEEE
 * round-to-nearest-even.
 */
class QuantsTest {

    private static float[] floats(GgufTensor t) {
        float[] v = new float[(int) t.elements()];
        Quants.dequantize(t.type(), t.data(), 0, v, 0, v.length);
        return v;
    }

    @Test
    void q8_0AndQ4_0QuantizationMatchGgmlsReference() {
        try (GgufFile f32 = GgufFile.open(TestData.fixture("internlm2-tiny-f32.gguf"));
             GgufFile q8 = GgufFile.open(TestData.fixture("internlm2-tiny-q8_0.gguf"));
             GgufFile q4 = GgufFile.open(TestData.fixture("internlm2-tiny-q4_0.gguf"));
             Arena arena = Arena.ofConfined()) {
            int checked = 0;
            for (GgufTensor t : f32.tensors().values()) {
                GgufTensor t8 = q8.tensor(t.name()), t4 = q4.tensor(t.name());
                float[] x = floats(t);
                if (t8.type() == GgmlType.Q8_0) {
                    MemorySegment out = arena.allocate(t8.byteSize());
                    Quants.quantizeQ8_0(x, 0, x.length, out, 0);
                    assertEquals(-1, out.mismatch(t8.data()), t.name() + ": Q8_0 bytes differ from ggml's reference quantization");
                    checked++;
                }
                if (t4.type() == GgmlType.Q4_0) {
                    MemorySegment out = arena.allocate(t4.byteSize());
                    Quants.quantizeQ4_0(x, 0, x.length, out, 0);
                    assertEquals(-1, out.mismatch(t4.data()), t.name() + ": Q4_0 bytes differ from ggml's reference quantization");
                    checked++;
                }
            }
            assertTrue(checked > 20, "checked " + checked + " tensors");
        }
    }

    @Test
    void dequantizedQuantsStayWithinTheirStep() {
        try (GgufFile f32 = GgufFile.open(TestData.fixture("internlm2-tiny-f32.gguf"));
             GgufFile q8 = GgufFile.open(TestData.fixture("internlm2-tiny-q8_0.gguf"));
             GgufFile q4 = GgufFile.open(TestData.fixture("internlm2-tiny-q4_0.gguf"));
             GgufFile f16 = GgufFile.open(TestData.fixture("internlm2-tiny-f16.gguf"))) {
            GgufTensor ref = f32.tensor("blk.0.ffn_gate.weight");
            float[] x = floats(ref);
            float[] a8 = floats(q8.tensor(ref.name()));
            float[] a4 = floats(q4.tensor(ref.name()));
            float[] a16 = floats(f16.tensor(ref.name()));
            for (int b = 0; b < x.length / 32; b++) {
                float amax = 0;
                for (int j = 0; j < 32; j++) {
                    amax = Math.max(amax, Math.abs(x[b * 32 + j]));
                }
                for (int j = 0; j < 32; j++) {
                    int i = b * 32 + j;
                    // half a step, plus the f16 rounding of the scale (up to 2^-11 relative on values up to 127 steps)
                    assertEquals(x[i], a8[i], amax / 127 * (0.5 + 127.0 / 2048) + 1e-6, "q8_0 element " + i);
                    assertEquals(x[i], a4[i], amax / 8 * (1 + 8.0 / 2048) + 1e-6, "q4_0 element " + i);
                    assertEquals(Float.float16ToFloat(Float.floatToFloat16(x[i])), a16[i], 0f, "f16 element " + i);
                }
            }
        }
    }

    @Test
    void bf16ConversionRoundsToNearestEven() {
        assertEquals((short) 0x3f80, Quants.floatToBf16(1.0f));
        // 1 + 2^-8 is exactly halfway between two bf16 values: ties go to the even mantissa (1.0)
        assertEquals((short) 0x3f80, Quants.floatToBf16(Float.intBitsToFloat(0x3f808000)));
        assertEquals((short) 0x3f82, Quants.floatToBf16(Float.intBitsToFloat(0x3f818000)));
        assertEquals(1.0f, Quants.bf16ToFloat((short) 0x3f80));
        assertTrue(Float.isNaN(Quants.bf16ToFloat(Quants.floatToBf16(Float.NaN))));
    }

    @Test
    void roundfGoesAwayFromZeroOnTies() {
        assertEquals(3, Quants.roundf(2.5f));
        assertEquals(-3, Quants.roundf(-2.5f));
        assertEquals(2, Quants.roundf(2.49f));
        assertEquals(0, Quants.roundf(-0.4f));
    }

    // ---------------------------------------------------------------- K-quants from hand-built blocks

    /** Packs eight 6-bit scales and mins into Q4_K's 12 bytes (the layout get_scale_min_k4 reads). */
    private static byte[] packScalesK4(int[] sc, int[] m) {
        byte[] q = new byte[12];
        for (int j = 0; j < 4; j++) {
            q[j] = (byte) ((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
            q[j + 4] = (byte) ((m[j] & 63) | ((m[j + 4] >> 4) << 6));
            q[j + 8] = (byte) ((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
        }
        return q;
    }

    @Test
    void q4_KBlockDequantizesAsDThimesScaleTimesNibbleMinusMin() {
        int[] sc = {1, 17, 33, 63, 5, 40, 62, 21};
        int[] mn = {0, 9, 63, 2, 48, 7, 31, 60};
        float d = 0.03125f, dmin = 0.0625f;
        int[] nib = new int[256];
        for (int i = 0; i < 256; i++) {
            nib[i] = (i * 7 + 3) % 16;
        }
        MemorySegment blk = MemorySegment.ofArray(new byte[144]);
        blk.set(Quants.F16, 0, Float.floatToFloat16(d));
        blk.set(Quants.F16, 2, Float.floatToFloat16(dmin));
        MemorySegment.copy(MemorySegment.ofArray(packScalesK4(sc, mn)), 0, blk, 4, 12);
        // 4 groups of 64 values: 32 bytes; low nibbles = first 32 values, high nibbles = next 32
        for (int g = 0; g < 4; g++) {
            for (int l = 0; l < 32; l++) {
                int lo = nib[g * 64 + l], hi = nib[g * 64 + 32 + l];
                blk.set(ValueLayout.JAVA_BYTE, 16 + g * 32 + l, (byte) (lo | (hi << 4)));
            }
        }
        float[] out = new float[256];
        Quants.dequantize(GgmlType.Q4_K, blk, 0, out, 0, 256);
        for (int i = 0; i < 256; i++) {
            int sub = i / 32;
            assertEquals(d * sc[sub] * nib[i] - dmin * mn[sub], out[i], 1e-6, "value " + i);
        }
    }

    @Test
    void q6_KBlockDequantizesAsDTimesScaleTimesSixBitValue() {
        int[] scales = {3, -4, 7, 127, -128, 1, 0, 9, -2, 5, 11, -13, 17, 19, -23, 29};
        float d = 0.01f;
        int[] q = new int[256];
        for (int i = 0; i < 256; i++) {
            q[i] = (i * 37 + 11) % 64;  // 6-bit unsigned, value = q - 32
        }
        byte[] ql = new byte[128], qh = new byte[64];
        // ggml layout: per 128-value half n: ql[64n + l] holds q[128n+l] (low) and q[128n+64+l] (high nibble) for l < 32,
        // ql[64n + 32 + l] holds q[128n+32+l] and q[128n+96+l]; qh[32n + l] holds the top 2 bits of those four
        for (int n = 0; n < 2; n++) {
            for (int l = 0; l < 32; l++) {
                int a = q[128 * n + l], b = q[128 * n + 32 + l], c = q[128 * n + 64 + l], e = q[128 * n + 96 + l];
                ql[64 * n + l] = (byte) ((a & 15) | ((c & 15) << 4));
                ql[64 * n + 32 + l] = (byte) ((b & 15) | ((e & 15) << 4));
                qh[32 * n + l] = (byte) ((a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6));
            }
        }
        MemorySegment blk = MemorySegment.ofArray(new byte[210]);
        MemorySegment.copy(MemorySegment.ofArray(ql), 0, blk, 0, 128);
        MemorySegment.copy(MemorySegment.ofArray(qh), 0, blk, 128, 64);
        for (int i = 0; i < 16; i++) {
            blk.set(ValueLayout.JAVA_BYTE, 192 + i, (byte) scales[i]);
        }
        blk.set(Quants.F16, 208, Float.floatToFloat16(d));
        float dh = Float.float16ToFloat(Float.floatToFloat16(d));
        float[] out = new float[256];
        Quants.dequantize(GgmlType.Q6_K, blk, 0, out, 0, 256);
        for (int i = 0; i < 256; i++) {
            assertEquals(dh * scales[i / 16] * (q[i] - 32), out[i], 1e-5, "value " + i);
        }
    }
}
