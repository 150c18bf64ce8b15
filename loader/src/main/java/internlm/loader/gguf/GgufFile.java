package internlm.loader.gguf;

import internlm.loader.ModelFormatException;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A GGUF (v2/v3) file: metadata, tensor infos and the memory-mapped tensor data.
 *
 * <p>Every read of the header is bounds-checked against the file size, so that a truncated, corrupted or hostile file
 * ends in a {@link ModelFormatException} naming the file, the field and the byte offset, never in an
 * OutOfMemoryError, a hang or a raw exception: element counts are checked against the bytes left before anything is
 * allocated, offsets are 64-bit throughout (files over 4 GiB and tensors over 2 GiB work), tensors must be aligned,
 * inside the file and must not overlap.
 */
public final class GgufFile implements AutoCloseable {
    public static final int MAGIC = 0x46554747; // "GGUF" little-endian
    public static final int DEFAULT_ALIGNMENT = 32;
    private static final int MAX_DIMS = 4;
    private static final int MAX_NESTING = 8;

    private final Path path;
    private final int version;
    private final Map<String, GgufValue> metadata;
    private final Map<String, GgufTensor> tensors;
    private final long alignment;
    private final long dataOffset;
    private final long fileSize;
    private final Arena arena;

    private GgufFile(Path path, int version, Map<String, GgufValue> metadata, Map<String, GgufTensor> tensors,
                     long alignment, long dataOffset, long fileSize, Arena arena) {
        this.path = path;
        this.version = version;
        this.metadata = metadata;
        this.tensors = tensors;
        this.alignment = alignment;
        this.dataOffset = dataOffset;
        this.fileSize = fileSize;
        this.arena = arena;
    }

    /** Opens and validates a GGUF file, mapping it read-only. */
    public static GgufFile open(Path path) {
        if (!Files.exists(path)) {
            throw new ModelFormatException(path, "no such file");
        }
        if (Files.isDirectory(path)) {
            throw new ModelFormatException(path, "is a directory, not a GGUF file");
        }
        Arena arena = Arena.ofShared();
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            long size = ch.size();
            MemorySegment seg = size == 0 ? MemorySegment.ofArray(new byte[0]) : ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            GgufFile f = parse(path, seg, size, arena);
            return f;
        } catch (NoSuchFileException e) {
            arena.close();
            throw new ModelFormatException(path, "no such file");
        } catch (IOException e) {
            arena.close();
            throw new ModelFormatException(path, "cannot read: " + e.getMessage(), e);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    /** Parses an in-memory GGUF image (tests, embedded models). The segment must stay valid while the file is used. */
    public static GgufFile parse(Path nameForMessages, MemorySegment seg) {
        return parse(nameForMessages, seg, seg.byteSize(), null);
    }

    private static GgufFile parse(Path path, MemorySegment seg, long size, Arena arena) {
        Reader r = new Reader(path, seg, size);
        if (size < 4) {
            throw new ModelFormatException(path, "file is " + size + " bytes long: too short to be a GGUF file");
        }
        int magic = r.i32("magic");
        if (magic != MAGIC) {
            throw new ModelFormatException(path, "magic", 0, String.format("not a GGUF file (magic 0x%08x, expected \"GGUF\")", magic));
        }
        long versionOffset = r.pos;
        int version = r.i32("version");
        if (version == 1) {
            throw new ModelFormatException(path, "version", versionOffset, "GGUF version 1 is not supported (only v2 and v3); re-convert the model with a current llama.cpp");
        }
        if (version != 2 && version != 3) {
            if (Integer.reverseBytes(version) == 2 || Integer.reverseBytes(version) == 3) {
                throw new ModelFormatException(path, "version", versionOffset, "big-endian GGUF files are not supported");
            }
            throw new ModelFormatException(path, "version", versionOffset, "unsupported GGUF version " + Integer.toUnsignedString(version) + " (supported: 2, 3)");
        }
        long countOffset = r.pos;
        long tensorCount = r.u64("tensor_count");
        long kvCount = r.u64("metadata_kv_count");
        // a tensor info takes at least 8 (name len) + 4 (n_dims) + 8 (one dim) + 4 (type) + 8 (offset) bytes;
        // a key/value at least 8 (key len) + 4 (type) + 1 (value)
        if (kvCount < 0 || kvCount > r.remaining() / 13) {
            throw new ModelFormatException(path, "metadata_kv_count", countOffset + 8, "count " + Long.toUnsignedString(kvCount) + " cannot fit in the " + r.remaining() + " bytes left in the file");
        }
        if (tensorCount < 0 || tensorCount > r.remaining() / 32) {
            throw new ModelFormatException(path, "tensor_count", countOffset, "count " + Long.toUnsignedString(tensorCount) + " cannot fit in the " + r.remaining() + " bytes left in the file");
        }

        Map<String, GgufValue> metadata = new LinkedHashMap<>();
        for (long i = 0; i < kvCount; i++) {
            long keyOffset = r.pos;
            String key = r.string("metadata key #" + i);
            long typeOffset = r.pos;
            GgufValueType type = r.valueType("type of metadata '" + key + "'");
            GgufValue value = r.value(type, "metadata '" + key + "'", 0);
            if (metadata.putIfAbsent(key, value) != null) {
                throw new ModelFormatException(path, "metadata key '" + key + "'", keyOffset, "duplicate key");
            }
            if (key.equals("general.alignment") && type != GgufValueType.UINT32) {
                throw new ModelFormatException(path, "metadata 'general.alignment'", typeOffset, "must be a uint32, found " + type);
            }
        }

        long alignment = DEFAULT_ALIGNMENT;
        GgufValue al = metadata.get("general.alignment");
        if (al != null) {
            alignment = (Long) al.value();
            if (alignment == 0 || Long.bitCount(alignment) != 1) {
                throw new ModelFormatException(path, "general.alignment = " + alignment + " is not a power of two");
            }
        }

        record Info(String name, GgmlType type, long[] dims, long relOffset, long infoOffset, long bytes) {}
        List<Info> infos = new ArrayList<>((int) tensorCount);
        Map<String, Boolean> seen = new LinkedHashMap<>();
        for (long i = 0; i < tensorCount; i++) {
            long infoOffset = r.pos;
            String name = r.string("tensor #" + i + " name");
            String field = "tensor '" + name + "'";
            if (seen.put(name, Boolean.TRUE) != null) {
                throw new ModelFormatException(path, field, infoOffset, "duplicate tensor name");
            }
            long ndimOffset = r.pos;
            long nDims = r.u32(field + " n_dims");
            if (nDims < 1 || nDims > MAX_DIMS) {
                throw new ModelFormatException(path, field + " n_dims", ndimOffset, "has " + nDims + " dimensions (1 to " + MAX_DIMS + " allowed)");
            }
            long[] dims = new long[(int) nDims];
            long elements = 1;
            for (int d = 0; d < nDims; d++) {
                long dimOffset = r.pos;
                dims[d] = r.u64(field + " dim " + d);
                if (dims[d] <= 0) {
                    throw new ModelFormatException(path, field + " dim " + d, dimOffset, "invalid size " + Long.toUnsignedString(dims[d]));
                }
                try {
                    elements = Math.multiplyExact(elements, dims[d]);
                } catch (ArithmeticException e) {
                    throw new ModelFormatException(path, field + " dims", dimOffset, "element count overflows 64 bits");
                }
            }
            long typeOffset = r.pos;
            long typeId = r.u32(field + " type");
            GgmlType type = GgmlType.fromId(typeId);
            if (type == null) {
                throw new ModelFormatException(path, field + " type", typeOffset, "unknown ggml tensor type " + typeId);
            }
            if (dims[0] % type.blockSize != 0) {
                throw new ModelFormatException(path, field + " dims", ndimOffset, "row length " + dims[0] + " is not a multiple of the " + type + " block size " + type.blockSize);
            }
            long bytes;
            try {
                bytes = type.byteSize(elements);
            } catch (ArithmeticException e) {
                throw new ModelFormatException(path, field + " dims", ndimOffset, "byte size overflows 64 bits");
            }
            long offOffset = r.pos;
            long rel = r.u64(field + " offset");
            if (rel < 0 || rel % alignment != 0) {
                throw new ModelFormatException(path, field + " offset", offOffset, "data offset " + Long.toUnsignedString(rel) + " is not a multiple of the alignment " + alignment);
            }
            infos.add(new Info(name, type, dims, rel, offOffset, bytes));
        }

        long dataOffset = alignUp(r.pos, alignment);
        if (tensorCount > 0 && dataOffset > size) {
            throw new ModelFormatException(path, "tensor data", r.pos, "file ends before the tensor data section (file size " + size + ")");
        }
        long dataBytes = Math.max(0, size - dataOffset);
        for (Info in : infos) {
            if (in.relOffset > dataBytes || in.bytes > dataBytes - in.relOffset) {
                throw new ModelFormatException(path, "tensor '" + in.name + "' data", dataOffset + in.relOffset,
                        in.bytes + " bytes of " + in.type + " data run past the end of the file (" + size + " bytes): file truncated or corrupt");
            }
        }
        List<Info> byOffset = new ArrayList<>(infos);
        byOffset.sort(Comparator.comparingLong(Info::relOffset));
        for (int i = 1; i < byOffset.size(); i++) {
            Info prev = byOffset.get(i - 1), cur = byOffset.get(i);
            if (cur.relOffset < prev.relOffset + prev.bytes) {
                throw new ModelFormatException(path, "tensor '" + cur.name + "' data", dataOffset + cur.relOffset,
                        "overlaps tensor '" + prev.name + "' (" + (dataOffset + prev.relOffset) + " + " + prev.bytes + " bytes)");
            }
        }
        Map<String, GgufTensor> tensors = new LinkedHashMap<>();
        for (Info in : infos) {
            long abs = dataOffset + in.relOffset;
            tensors.put(in.name, new GgufTensor(in.name, in.type, in.dims, abs, in.bytes, seg.asSlice(abs, in.bytes).asReadOnly()));
        }
        return new GgufFile(path, version, Collections.unmodifiableMap(metadata), Collections.unmodifiableMap(tensors), alignment, dataOffset, size, arena);
    }

    private static long alignUp(long x, long a) {
        return (x + a - 1) & -a;
    }

    public Path path() {
        return path;
    }

    public int version() {
        return version;
    }

    public long alignment() {
        return alignment;
    }

    public long dataOffset() {
        return dataOffset;
    }

    public long fileSize() {
        return fileSize;
    }

    public Map<String, GgufValue> metadata() {
        return metadata;
    }

    public Map<String, GgufTensor> tensors() {
        return tensors;
    }

    public GgufTensor tensor(String name) {
        return tensors.get(name);
    }

    public boolean has(String key) {
        return metadata.containsKey(key);
    }

    // ------------------------------------------------------------------ typed metadata accessors

    private GgufValue require(String key) {
        GgufValue v = metadata.get(key);
        if (v == null) {
            throw new ModelFormatException(path, "required metadata key '" + key + "' is missing");
        }
        return v;
    }

    private ModelFormatException wrongType(String key, GgufValue v, String expected) {
        return new ModelFormatException(path, "metadata '" + key + "' has type " + typeName(v) + ", expected " + expected);
    }

    private static String typeName(GgufValue v) {
        return v.isArray() ? "array of " + v.elementType() : v.type().name();
    }

    public String getString(String key) {
        GgufValue v = require(key);
        if (v.type() != GgufValueType.STRING) {
            throw wrongType(key, v, "string");
        }
        return (String) v.value();
    }

    public String getString(String key, String def) {
        return has(key) ? getString(key) : def;
    }

    /** An integer of any integer type that fits in a Java long (UINT64 values above 2^63 are refused). */
    public long getLong(String key) {
        GgufValue v = require(key);
        return switch (v.type()) {
            case UINT8, INT8, UINT16, INT16, INT32 -> ((Integer) v.value()).longValue();
            case UINT32, INT64 -> (Long) v.value();
            case UINT64 -> {
                long x = (Long) v.value();
                if (x < 0) {
                    throw new ModelFormatException(path, "metadata '" + key + "' = " + Long.toUnsignedString(x) + " is out of range");
                }
                yield x;
            }
            default -> throw wrongType(key, v, "an integer");
        };
    }

    public int getInt(String key) {
        long x = getLong(key);
        if (x < Integer.MIN_VALUE || x > Integer.MAX_VALUE) {
            throw new ModelFormatException(path, "metadata '" + key + "' = " + x + " is out of range");
        }
        return (int) x;
    }

    public int getInt(String key, int def) {
        return has(key) ? getInt(key) : def;
    }

    public double getDouble(String key) {
        GgufValue v = require(key);
        return switch (v.type()) {
            case FLOAT32 -> (Float) v.value();
            case FLOAT64 -> (Double) v.value();
            case UINT8, INT8, UINT16, INT16, INT32, UINT32, INT64, UINT64 -> getLong(key);
            default -> throw wrongType(key, v, "a number");
        };
    }

    public double getDouble(String key, double def) {
        return has(key) ? getDouble(key) : def;
    }

    public boolean getBool(String key, boolean def) {
        if (!has(key)) {
            return def;
        }
        GgufValue v = require(key);
        if (v.type() != GgufValueType.BOOL) {
            throw wrongType(key, v, "bool");
        }
        return (Boolean) v.value();
    }

    public String[] getStringArray(String key) {
        GgufValue v = require(key);
        if (!v.isArray() || v.elementType() != GgufValueType.STRING) {
            throw wrongType(key, v, "array of strings");
        }
        return (String[]) v.value();
    }

    /** A float array; integer arrays are converted (llama.cpp accepts INT32 scores too). */
    public float[] getFloatArray(String key) {
        GgufValue v = require(key);
        if (v.isArray()) {
            if (v.value() instanceof float[] a) {
                return a;
            }
            if (v.value() instanceof int[] a) {
                float[] f = new float[a.length];
                for (int i = 0; i < a.length; i++) {
                    f[i] = a[i];
                }
                return f;
            }
        }
        throw wrongType(key, v, "array of float32");
    }

    public int[] getIntArray(String key) {
        GgufValue v = require(key);
        if (v.isArray() && v.value() instanceof int[] a) {
            return a;
        }
        throw wrongType(key, v, "array of int32");
    }

    @Override
    public void close() {
        if (arena != null) {
            arena.close();
        }
    }

    // ------------------------------------------------------------------ bounds-checked reader

    private static final class Reader {
        private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
        private static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
        private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
        private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
        private static final ValueLayout.OfDouble F64 = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

        final Path path;
        final MemorySegment seg;
        final long size;
        long pos;

        Reader(Path path, MemorySegment seg, long size) {
            this.path = path;
            this.seg = seg;
            this.size = size;
        }

        long remaining() {
            return size - pos;
        }

        void need(long n, String field) {
            if (n < 0 || n > size - pos) {
                throw new ModelFormatException(path, field, pos, "needs " + (n < 0 ? Long.toUnsignedString(n) : n) + " bytes but the file ends after " + (size - pos) + " (truncated or corrupt)");
            }
        }

        int i32(String field) {
            need(4, field);
            int v = seg.get(I32, pos);
            pos += 4;
            return v;
        }

        long u32(String field) {
            return i32(field) & 0xffffffffL;
        }

        long u64(String field) {
            need(8, field);
            long v = seg.get(I64, pos);
            pos += 8;
            return v;
        }

        GgufValueType valueType(String field) {
            long at = pos;
            long id = u32(field);
            GgufValueType t = GgufValueType.fromId(id);
            if (t == null) {
                throw new ModelFormatException(path, field, at, "unknown metadata value type " + id);
            }
            return t;
        }

        String string(String field) {
            long at = pos;
            long len = u64(field + " length");
            if (len < 0 || len > size - pos) {
                throw new ModelFormatException(path, field, at, "string length " + Long.toUnsignedString(len) + " runs past the end of the file (" + (size - pos) + " bytes left)");
            }
            if (len > Integer.MAX_VALUE - 16) {
                throw new ModelFormatException(path, field, at, "string of " + len + " bytes is too long");
            }
            byte[] b = new byte[(int) len];
            MemorySegment.copy(seg, ValueLayout.JAVA_BYTE, pos, b, 0, (int) len);
            pos += len;
            return new String(b, StandardCharsets.UTF_8);
        }

        GgufValue value(GgufValueType type, String field, int depth) {
            return switch (type) {
                case UINT8 -> { need(1, field); int v = seg.get(ValueLayout.JAVA_BYTE, pos) & 0xff; pos += 1; yield GgufValue.scalar(type, v); }
                case INT8 -> { need(1, field); int v = seg.get(ValueLayout.JAVA_BYTE, pos); pos += 1; yield GgufValue.scalar(type, v); }
                case UINT16 -> { need(2, field); int v = seg.get(I16, pos) & 0xffff; pos += 2; yield GgufValue.scalar(type, v); }
                case INT16 -> { need(2, field); int v = seg.get(I16, pos); pos += 2; yield GgufValue.scalar(type, v); }
                case UINT32 -> GgufValue.scalar(type, u32(field));
                case INT32 -> GgufValue.scalar(type, i32(field));
                case FLOAT32 -> { need(4, field); float v = seg.get(F32, pos); pos += 4; yield GgufValue.scalar(type, v); }
                case BOOL -> {
                    need(1, field);
                    int b = seg.get(ValueLayout.JAVA_BYTE, pos);
                    if (b != 0 && b != 1) {
                        throw new ModelFormatException(path, field, pos, "invalid bool value " + b);
                    }
                    pos += 1;
                    yield GgufValue.scalar(type, b == 1);
                }
                case STRING -> GgufValue.scalar(type, string(field));
                case UINT64, INT64 -> GgufValue.scalar(type, u64(field));
                case FLOAT64 -> { need(8, field); double v = seg.get(F64, pos); pos += 8; yield GgufValue.scalar(type, v); }
                case ARRAY -> array(field, depth);
            };
        }

        GgufValue array(String field, int depth) {
            if (depth >= MAX_NESTING) {
                throw new ModelFormatException(path, field, pos, "arrays nested more than " + MAX_NESTING + " deep");
            }
            GgufValueType et = valueType(field + " element type");
            long countAt = pos;
            long n = u64(field + " element count");
            if (n < 0 || n > remaining() / et.minBytes || n > Integer.MAX_VALUE - 16) {
                throw new ModelFormatException(path, field + " element count", countAt, "array of " + Long.toUnsignedString(n) + " " + et + " values cannot fit in the " + remaining() + " bytes left in the file");
            }
            int count = (int) n;
            Object data = switch (et) {
                case UINT8, INT8 -> {
                    byte[] a = new byte[count];
                    MemorySegment.copy(seg, ValueLayout.JAVA_BYTE, pos, a, 0, count);
                    pos += count;
                    yield a;
                }
                case UINT16, INT16 -> {
                    short[] a = new short[count];
                    MemorySegment.copy(seg, I16, pos, a, 0, count);
                    pos += 2L * count;
                    yield a;
                }
                case UINT32, INT32 -> {
                    int[] a = new int[count];
                    MemorySegment.copy(seg, I32, pos, a, 0, count);
                    pos += 4L * count;
                    yield a;
                }
                case FLOAT32 -> {
                    float[] a = new float[count];
                    MemorySegment.copy(seg, F32, pos, a, 0, count);
                    pos += 4L * count;
                    yield a;
                }
                case UINT64, INT64 -> {
                    long[] a = new long[count];
                    MemorySegment.copy(seg, I64, pos, a, 0, count);
                    pos += 8L * count;
                    yield a;
                }
                case FLOAT64 -> {
                    double[] a = new double[count];
                    MemorySegment.copy(seg, F64, pos, a, 0, count);
                    pos += 8L * count;
                    yield a;
                }
                case BOOL -> {
                    boolean[] a = new boolean[count];
                    for (int i = 0; i < count; i++) {
                        int b = seg.get(ValueLayout.JAVA_BYTE, pos);
                        if (b != 0 && b != 1) {
                            throw new ModelFormatException(path, field + "[" + i + "]", pos, "invalid bool value " + b);
                        }
                        a[i] = b == 1;
                        pos++;
                    }
                    yield a;
                }
                case STRING -> {
                    String[] a = new String[count];
                    for (int i = 0; i < count; i++) {
                        a[i] = string(field + "[" + i + "]");
                    }
                    yield a;
                }
                case ARRAY -> {
                    GgufValue[] a = new GgufValue[count];
                    for (int i = 0; i < count; i++) {
                        a[i] = array(field + "[" + i + "]", depth + 1);
                    }
                    yield a;
                }
            };
            return GgufValue.array(et, data);
        }
    }
}
