package internlm.loader.hf;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import internlm.loader.TestData;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Consumer;
import java.util.stream.Stream;

/** The synthetic HF directories of testdata/hf, copies of them to edit, and a minimal safetensors writer. */
public final class HfTestDirs {
    private HfTestDirs() {}

    public static final String V2_BF16_SHARDED = "internlm2-tiny-bf16-2shards";
    public static final String V3_F32 = "internlm3-small-f32";
    public static final String V1_BF16_BIAS = "internlm-v1-tiny-bias-bf16";
    public static final String[] ALL = {V2_BF16_SHARDED, V3_F32, V1_BF16_BIAS};

    public static Path dir(String name) {
        return TestData.dir().resolve("hf").resolve(name);
    }

    /** The llama.cpp reference GGUF written by make-hf.mjs --gguf for that directory. */
    public static Path referenceGguf(String name) {
        return TestData.dir().resolve("hf").resolve(name + ".gguf");
    }

    public static Path expectedJson(String name) {
        return TestData.dir().resolve("hf").resolve(name + ".expected.json");
    }

    /** A writable copy of a fixture directory. */
    public static Path copy(String name, Path into) throws IOException {
        Path src = dir(name);
        Path dst = into.resolve(name);
        Files.createDirectories(dst);
        try (Stream<Path> s = Files.list(src)) {
            for (Path p : s.toList()) {
                Files.copy(p, dst.resolve(p.getFileName()));
            }
        }
        return dst;
    }

    /** Edits a JSON file of a directory in place. */
    public static void editJson(Path file, Consumer<ObjectNode> edit) throws IOException {
        ObjectMapper om = new ObjectMapper();
        ObjectNode o = (ObjectNode) om.readTree(file.toFile());
        edit.accept(o);
        Files.writeString(file, om.writerWithDefaultPrettyPrinter().writeValueAsString(o));
    }

    /** A tensor to write: dtype name, PyTorch shape and raw little-endian bytes. */
    public record RawTensor(String dtype, long[] shape, byte[] data) {
        public static RawTensor f32(long[] shape, float... v) {
            ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
            for (float x : v) {
                b.putFloat(x);
            }
            return new RawTensor("F32", shape, b.array());
        }
    }

    /** safetensors bytes: u64 header length, JSON header padded with spaces to 8 bytes, tensors back to back. */
    public static byte[] safetensors(Map<String, RawTensor> tensors) {
        StringBuilder h = new StringBuilder("{\"__metadata__\":{\"format\":\"pt\"}");
        long off = 0;
        for (Map.Entry<String, RawTensor> e : tensors.entrySet()) {
            RawTensor t = e.getValue();
            StringBuilder shape = new StringBuilder();
            for (long d : t.shape()) {
                shape.append(shape.isEmpty() ? "" : ",").append(d);
            }
            h.append(",\"").append(e.getKey()).append("\":{\"dtype\":\"").append(t.dtype()).append("\",\"shape\":[").append(shape)
                    .append("],\"data_offsets\":[").append(off).append(',').append(off + t.data().length).append("]}");
            off += t.data().length;
        }
        h.append('}');
        while ((h.length() + 8) % 8 != 0) {
            h.append(' ');
        }
        byte[] hb = h.toString().getBytes(StandardCharsets.UTF_8);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(hb.length).array());
        out.writeBytes(hb);
        for (RawTensor t : tensors.values()) {
            out.writeBytes(t.data());
        }
        return out.toByteArray();
    }

    public static Map<String, RawTensor> map() {
        return new LinkedHashMap<>();
    }
}
