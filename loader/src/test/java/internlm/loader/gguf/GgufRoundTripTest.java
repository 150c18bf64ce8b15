package internlm.loader.gguf;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

class GgufRoundTripTest {
    @TempDir
    Path tmp;

    @Test
    void everyValueTypeAndNestedArraysReadBack() throws Exception {
        GgufWriter w = new GgufWriter()
                .put("u8", GgufValue.scalar(GgufValueType.UINT8, 250))
                .put("i8", GgufValue.scalar(GgufValueType.INT8, -7))
                .put("u16", GgufValue.scalar(GgufValueType.UINT16, 65000))
                .put("i16", GgufValue.scalar(GgufValueType.INT16, -32000))
                .put("u32", GgufValue.scalar(GgufValueType.UINT32, 4_000_000_000L))
                .put("i32", GgufValue.scalar(GgufValueType.INT32, -123456))
                .put("f32", GgufValue.scalar(GgufValueType.FLOAT32, 1.5e-5f))
                .put("bool", GgufValue.scalar(GgufValueType.BOOL, true))
                .put("str", GgufValue.scalar(GgufValueType.STRING, "héllo 🐉\n"))
                .put("u64", GgufValue.scalar(GgufValueType.UINT64, 1L << 40))
                .put("i64", GgufValue.scalar(GgufValueType.INT64, -(1L << 50)))
                .put("f64", GgufValue.scalar(GgufValueType.FLOAT64, Math.PI))
                .put("a_u8", GgufValue.array(GgufValueType.UINT8, new byte[] {1, (byte) 200}))
                .put("a_i16", GgufValue.array(GgufValueType.INT16, new short[] {-1, 2}))
                .put("a_f64", GgufValue.array(GgufValueType.FLOAT64, new double[] {0.25, -8}))
                .put("a_bool", GgufValue.array(GgufValueType.BOOL, new boolean[] {true, false, true}))
                .put("a_i64", GgufValue.array(GgufValueType.INT64, new long[] {5, -5}))
                .put("a_str", GgufValue.array(GgufValueType.STRING, new String[] {"a", "", "日本"}))
                .put("nested", GgufValue.array(GgufValueType.ARRAY, new GgufValue[] {
                        GgufValue.array(GgufValueType.INT32, new int[] {1, 2, 3}),
                        GgufValue.array(GgufValueType.ARRAY, new GgufValue[] {GgufValue.array(GgufValueType.STRING, new String[] {"deep"})})}))
                .putU32("general.alignment", 64);
        float[] t0 = {1, 2, 3, 4, 5, 6};
        ByteBuffer bb = ByteBuffer.allocate(24).order(ByteOrder.LITTLE_ENDIAN);
        for (float f : t0) {
            bb.putFloat(f);
        }
        w.addTensor("t0", GgmlType.F32, new long[] {3, 2}, bb.array());
        w.addTensor("t1", GgmlType.Q8_0, new long[] {32}, new byte[34]);
        Path p = tmp.resolve("all.gguf");
        w.write(p);
        try (GgufFile f = GgufFile.open(p)) {
            assertEquals(3, f.version());
            assertEquals(64, f.alignment());
            assertEquals(250, f.getInt("u8"));
            assertEquals(-7, f.getInt("i8"));
            assertEquals(65000, f.getInt("u16"));
            assertEquals(-32000, f.getInt("i16"));
            assertEquals(4_000_000_000L, f.getLong("u32"));
            assertEquals(-123456, f.getInt("i32"));
            assertEquals(1.5e-5f, (float) f.getDouble("f32"));
            assertTrue(f.getBool("bool", false));
            assertEquals("héllo 🐉\n", f.getString("str"));
            assertEquals(1L << 40, f.getLong("u64"));
            assertEquals(-(1L << 50), f.getLong("i64"));
            assertEquals(Math.PI, f.getDouble("f64"));
            assertArrayEquals(new byte[] {1, (byte) 200}, (byte[]) f.metadata().get("a_u8").value());
            assertArrayEquals(new short[] {-1, 2}, (short[]) f.metadata().get("a_i16").value());
            assertArrayEquals(new double[] {0.25, -8}, (double[]) f.metadata().get("a_f64").value());
            assertArrayEquals(new boolean[] {true, false, true}, (boolean[]) f.metadata().get("a_bool").value());
            assertArrayEquals(new long[] {5, -5}, (long[]) f.metadata().get("a_i64").value());
            assertArrayEquals(new String[] {"a", "", "日本"}, f.getStringArray("a_str"));
            GgufValue[] nested = (GgufValue[]) f.metadata().get("nested").value();
            assertArrayEquals(new int[] {1, 2, 3}, (int[]) nested[0].value());
            GgufValue[] deeper = (GgufValue[]) nested[1].value();
            assertArrayEquals(new String[] {"deep"}, (String[]) deeper[0].value());
            GgufTensor t = f.tensor("t0");
            assertEquals(GgmlType.F32, t.type());
            assertArrayEquals(new long[] {3, 2}, t.dims());
            assertEquals(0, t.fileOffset() % 64, "tensor data must be aligned to general.alignment");
            for (int i = 0; i < 6; i++) {
                assertEquals(t0[i], t.data().get(ValueLayout.JAVA_FLOAT_UNALIGNED, 4L * i));
            }
            assertEquals(34, f.tensor("t1").byteSize());
            assertEquals(0, f.tensor("t1").fileOffset() % 64);
        }
    }

    @Test
    void version2FilesAreAccepted() throws Exception {
        Path p = tmp.resolve("v2.gguf");
        new GgufWriter().version(2).putString("general.architecture", "internlm2").write(p);
        try (GgufFile f = GgufFile.open(p)) {
            assertEquals(2, f.version());
            assertEquals("internlm2", f.getString("general.architecture"));
        }
    }

    @Test
    void sharedFixtureParsesWithExpectedTensors() {
        try (GgufFile f = GgufFile.open(internlm.loader.TestData.fixture("internlm2-tiny-q8_0.gguf"))) {
            assertEquals("internlm2", f.getString("general.architecture"));
            assertEquals(400, f.getStringArray("tokenizer.ggml.tokens").length);
            assertEquals(GgmlType.Q8_0, f.tensor("blk.0.attn_q.weight").type());
            assertEquals(GgmlType.F32, f.tensor("blk.0.attn_norm.weight").type());
            assertArrayEquals(new long[] {64, 400}, f.tensor("token_embd.weight").dims());
        }
    }
}
