package internlm.loader.gguf;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes GGUF v3 files: metadata of every value type (nested arrays included) and tensors, aligned as
 * {@code general.alignment} says. Tensor bytes are streamed from callbacks, so multi-gigabyte models never sit in
 * memory. Used by {@code convert} and by tests that build (valid and deliberately broken) files.
 */
public final class GgufWriter {

    /** Produces a tensor's bytes (exactly {@code byteSize} of them). */
    @FunctionalInterface
    public interface TensorBytes {
        void write(OutputStream out) throws IOException;
    }

    private record Tensor(String name, GgmlType type, long[] dims, long byteSize, TensorBytes bytes) {}

    private final Map<String, GgufValue> metadata = new LinkedHashMap<>();
    private final List<Tensor> tensors = new ArrayList<>();
    private int version = 3;

    public GgufWriter put(String key, GgufValue value) {
        metadata.put(key, value);
        return this;
    }

    public GgufWriter putString(String key, String v) {
        return put(key, GgufValue.scalar(GgufValueType.STRING, v));
    }

    public GgufWriter putU32(String key, long v) {
        return put(key, GgufValue.scalar(GgufValueType.UINT32, v));
    }

    public GgufWriter putI32(String key, int v) {
        return put(key, GgufValue.scalar(GgufValueType.INT32, v));
    }

    public GgufWriter putF32(String key, float v) {
        return put(key, GgufValue.scalar(GgufValueType.FLOAT32, v));
    }

    public GgufWriter putBool(String key, boolean v) {
        return put(key, GgufValue.scalar(GgufValueType.BOOL, v));
    }

    public GgufWriter putStrings(String key, String[] v) {
        return put(key, GgufValue.array(GgufValueType.STRING, v));
    }

    public GgufWriter putFloats(String key, float[] v) {
        return put(key, GgufValue.array(GgufValueType.FLOAT32, v));
    }

    public GgufWriter putInts(String key, int[] v) {
        return put(key, GgufValue.array(GgufValueType.INT32, v));
    }

    /** Writes a different version number in the header (tests of version handling). */
    public GgufWriter version(int v) {
        this.version = v;
        return this;
    }

    public GgufWriter addTensor(String name, GgmlType type, long[] dims, TensorBytes bytes) {
        long n = 1;
        for (long d : dims) {
            n = Math.multiplyExact(n, d);
        }
        tensors.add(new Tensor(name, type, dims.clone(), type.byteSize(n), bytes));
        return this;
    }

    public GgufWriter addTensor(String name, GgmlType type, long[] dims, byte[] data) {
        return addTensor(name, type, dims, out -> out.write(data));
    }

    private long alignment() {
        GgufValue a = metadata.get("general.alignment");
        return a == null ? GgufFile.DEFAULT_ALIGNMENT : ((Number) a.value()).longValue();
    }

    public void write(Path path) throws IOException {
        try (OutputStream os = new BufferedOutputStream(Files.newOutputStream(path), 1 << 20)) {
            write(os);
        }
    }

    public void write(OutputStream os) throws IOException {
        CountingOut out = new CountingOut(os);
        writeHeader(out);
        long align = alignment();
        for (Tensor t : tensors) {
            long before = out.count;
            t.bytes.write(out);
            if (out.count - before != t.byteSize) {
                throw new IOException("tensor " + t.name + ": wrote " + (out.count - before) + " bytes, expected " + t.byteSize);
            }
            out.pad(align);
        }
        out.flush();
    }

    /**
     * Everything before the tensor data: header, metadata, tensor infos and the padding up to the data section (for
     * writers that place the tensor bytes themselves, e.g. straight into a mapped file, at {@link #tensorOffsets()}).
     */
    public byte[] header() throws IOException {
        java.io.ByteArrayOutputStream b = new java.io.ByteArrayOutputStream();
        CountingOut out = new CountingOut(b);
        writeHeader(out);
        out.flush();
        return b.toByteArray();
    }

    /** Offsets of the tensors' bytes from the start of the data section, in the order they were added. */
    public long[] tensorOffsets() {
        long align = alignment();
        long[] o = new long[tensors.size()];
        long offset = 0;
        for (int i = 0; i < o.length; i++) {
            o[i] = offset;
            offset = (offset + tensors.get(i).byteSize + align - 1) / align * align;
        }
        return o;
    }

    /** Size of the data section (every tensor, each padded to the alignment). */
    public long dataSize() {
        long align = alignment(), offset = 0;
        for (Tensor t : tensors) {
            offset = (offset + t.byteSize + align - 1) / align * align;
        }
        return offset;
    }

    private void writeHeader(CountingOut out) throws IOException {
        out.i32(GgufFile.MAGIC);
        out.i32(version);
        out.i64(tensors.size());
        out.i64(metadata.size());
        for (Map.Entry<String, GgufValue> e : metadata.entrySet()) {
            out.str(e.getKey());
            out.i32(e.getValue().type().id);
            value(out, e.getValue());
        }
        long align = alignment();
        long[] offsets = tensorOffsets();
        for (int i = 0; i < tensors.size(); i++) {
            Tensor t = tensors.get(i);
            out.str(t.name);
            out.i32(t.dims.length);
            for (long d : t.dims) {
                out.i64(d);
            }
            out.i32(t.type.id);
            out.i64(offsets[i]);
        }
        out.pad(align);
    }

    private static void value(CountingOut out, GgufValue v) throws IOException {
        if (v.isArray()) {
            arrayBody(out, v);
            return;
        }
        Object x = v.value();
        switch (v.type()) {
            case UINT8, INT8 -> out.write(((Number) x).intValue());
            case UINT16, INT16 -> out.i16(((Number) x).intValue());
            case UINT32, INT32 -> out.i32(((Number) x).intValue());
            case UINT64, INT64 -> out.i64(((Number) x).longValue());
            case FLOAT32 -> out.i32(Float.floatToRawIntBits(((Number) x).floatValue()));
            case FLOAT64 -> out.i64(Double.doubleToRawLongBits(((Number) x).doubleValue()));
            case BOOL -> out.write((Boolean) x ? 1 : 0);
            case STRING -> out.str((String) x);
            case ARRAY -> throw new IllegalStateException();
        }
    }

    /** Element type, count and elements of an array value (nested arrays recursively). */
    private static void arrayBody(CountingOut out, GgufValue v) throws IOException {
        out.i32(v.elementType().id);
        int n = v.length();
        out.i64(n);
        Object a = v.value();
        for (int i = 0; i < n; i++) {
            switch (a) {
                case byte[] b -> out.write(b[i]);
                case short[] s -> out.i16(s[i]);
                case int[] x -> out.i32(x[i]);
                case long[] x -> out.i64(x[i]);
                case float[] f -> out.i32(Float.floatToRawIntBits(f[i]));
                case double[] d -> out.i64(Double.doubleToRawLongBits(d[i]));
                case boolean[] b -> out.write(b[i] ? 1 : 0);
                case String[] s -> out.str(s[i]);
                case GgufValue[] nested -> arrayBody(out, nested[i]);
                default -> throw new IOException("unsupported array " + a.getClass());
            }
        }
    }

    private static final class CountingOut extends OutputStream {
        final OutputStream os;
        long count;
        final ByteBuffer buf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);

        CountingOut(OutputStream os) {
            this.os = os;
        }

        @Override
        public void write(int b) throws IOException {
            os.write(b);
            count++;
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            os.write(b, off, len);
            count += len;
        }

        void i16(int v) throws IOException {
            buf.clear();
            buf.putShort((short) v);
            write(buf.array(), 0, 2);
        }

        void i32(int v) throws IOException {
            buf.clear();
            buf.putInt(v);
            write(buf.array(), 0, 4);
        }

        void i64(long v) throws IOException {
            buf.clear();
            buf.putLong(v);
            write(buf.array(), 0, 8);
        }

        void str(String s) throws IOException {
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            i64(b.length);
            write(b, 0, b.length);
        }

        void pad(long align) throws IOException {
            while (count % align != 0) {
                write(0);
            }
        }

        @Override
        public void flush() throws IOException {
            os.flush();
        }
    }
}
