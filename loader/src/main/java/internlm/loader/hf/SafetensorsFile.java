package internlm.loader.hf;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import internlm.loader.ModelFormatException;
import internlm.loader.gguf.GgmlType;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
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
 * A {@code .safetensors} file: an 8-byte little-endian header length N, N bytes of UTF-8 JSON
 * ({@code {"name": {"dtype": "BF16", "shape": [out, in], "data_offsets": [begin, end]}, ..., "__metadata__": {...}}})
 * and the tensor bytes, offsets relative to the end of the header. The file is mapped read-only.
 *
 * <p>Everything is checked before use, like the reference implementation does, so that a truncated, corrupted or
 * hostile file ends in one {@link ModelFormatException} naming the file and the field: the header length against
 * the file size (and a 100 MB cap), the JSON (strict: no duplicate keys, bounded nesting), every dtype, that
 * shape × element size equals the byte range, that offsets lie inside the data section, and that the tensors cover
 * the data section exactly (no overlap, no hole, nothing after the last one).
 */
public final class SafetensorsFile implements AutoCloseable {
    /** The reference implementation refuses headers above 100 MB; so do we (a header is a few hundred KB). */
    public static final long MAX_HEADER = 100_000_000L;

    /** Element types of the format. Only F32, F16 and BF16 hold model weights this engine runs. */
    public enum Dtype {
        BOOL(1), U8(1), I8(1), F8_E4M3(1), F8_E5M2(1), I16(2), U16(2), F16(2), BF16(2), I32(4), U32(4), F32(4),
        F64(8), I64(8), U64(8);

        public final int size;

        Dtype(int size) {
            this.size = size;
        }

        /** The ggml type holding the same bits, or null when the engine cannot run this dtype. */
        public GgmlType ggml() {
            return switch (this) {
                case F32 -> GgmlType.F32;
                case F16 -> GgmlType.F16;
                case BF16 -> GgmlType.BF16;
                default -> null;
            };
        }

        static Dtype parse(String s) {
            for (Dtype d : values()) {
                if (d.name().equals(s)) {
                    return d;
                }
            }
            return null;
        }
    }

    /**
     * One tensor. {@code shape} is in PyTorch order (row-major, the last dimension contiguous); {@code offset} is the
     * absolute file offset; {@code data} a read-only view of its bytes.
     */
    public record Tensor(String name, Dtype dtype, long[] shape, long offset, long byteSize, MemorySegment data) {
        public long elements() {
            long n = 1;
            for (long d : shape) {
                n *= d;
            }
            return n;
        }

        public String shapeString() {
            return java.util.Arrays.toString(shape);
        }
    }

    /** Strict JSON for every file of an HF directory: duplicate keys refused, nesting and number sizes bounded. */
    static final ObjectMapper JSON = new ObjectMapper(JsonFactory.builder()
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .streamReadConstraints(StreamReadConstraints.builder()
                    .maxNestingDepth(64).maxNumberLength(100).maxStringLength(100_000_000).build())
            .build());

    private final Path path;
    private final Map<String, String> metadata;
    private final Map<String, Tensor> tensors;
    private final long headerLength;
    private final long fileSize;
    private final Arena arena;

    private SafetensorsFile(Path path, Map<String, String> metadata, Map<String, Tensor> tensors, long headerLength,
                            long fileSize, Arena arena) {
        this.path = path;
        this.metadata = metadata;
        this.tensors = tensors;
        this.headerLength = headerLength;
        this.fileSize = fileSize;
        this.arena = arena;
    }

    /** Opens, maps and validates a safetensors file. */
    public static SafetensorsFile open(Path path) {
        if (!Files.exists(path)) {
            throw new ModelFormatException(path, "no such file");
        }
        if (Files.isDirectory(path)) {
            throw new ModelFormatException(path, "is a directory, not a safetensors file");
        }
        Arena arena = Arena.ofShared();
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            long size = ch.size();
            MemorySegment seg = size == 0 ? MemorySegment.ofArray(new byte[0]) : ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            return parse(path, seg, arena);
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

    /** Parses an in-memory image (tests). The segment must stay valid while the file is used. */
    public static SafetensorsFile parse(Path nameForMessages, MemorySegment seg) {
        return parse(nameForMessages, seg, null);
    }

    private static SafetensorsFile parse(Path path, MemorySegment seg, Arena arena) {
        long size = seg.byteSize();
        if (size < 8) {
            throw new ModelFormatException(path, "header length", 0, "file is " + size + " bytes long: too short to be a safetensors file");
        }
        long n = seg.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0);
        if (n < 2 || n > size - 8) {
            throw new ModelFormatException(path, "header length", 0, "header of " + Long.toUnsignedString(n)
                    + " bytes does not fit in the file (" + size + " bytes): truncated, or not a safetensors file");
        }
        if (n > MAX_HEADER) {
            throw new ModelFormatException(path, "header length", 0, "header of " + n + " bytes is larger than the " + MAX_HEADER + " bytes allowed");
        }
        byte[] headerBytes = new byte[(int) n];
        MemorySegment.copy(seg, ValueLayout.JAVA_BYTE, 8, headerBytes, 0, (int) n);
        if (headerBytes[0] != '{') {
            throw new ModelFormatException(path, "header", 8, "does not start with '{': not a safetensors file");
        }
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(java.nio.ByteBuffer.wrap(headerBytes)).toString();
        } catch (CharacterCodingException e) {
            throw new ModelFormatException(path, "header", 8, "is not valid UTF-8");
        }
        JsonNode root;
        try {
            root = JSON.readTree(text);
        } catch (JsonProcessingException e) {
            throw new ModelFormatException(path, "header", 8, "is not valid JSON: " + shortJsonError(e));
        }
        if (root == null || !root.isObject()) {
            throw new ModelFormatException(path, "header", 8, "is not a JSON object");
        }
        long dataStart = 8 + n;
        long dataSize = size - dataStart;
        Map<String, String> metadata = new LinkedHashMap<>();
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : root.properties()) {
            String name = e.getKey();
            JsonNode v = e.getValue();
            if (name.equals("__metadata__")) {
                if (!v.isObject()) {
                    throw new ModelFormatException(path, "header __metadata__", 8, "must be an object of strings");
                }
                for (Map.Entry<String, JsonNode> kv : v.properties()) {
                    if (!kv.getValue().isTextual()) {
                        throw new ModelFormatException(path, "header __metadata__." + kv.getKey(), 8, "must be a string");
                    }
                    metadata.put(kv.getKey(), kv.getValue().asText());
                }
                continue;
            }
            String field = "tensor '" + name + "'";
            if (!v.isObject()) {
                throw new ModelFormatException(path, field, 8, "header entry is not an object");
            }
            JsonNode dt = v.get("dtype");
            if (dt == null || !dt.isTextual()) {
                throw new ModelFormatException(path, field + " dtype", 8, "missing or not a string");
            }
            Dtype dtype = Dtype.parse(dt.asText());
            if (dtype == null) {
                throw new ModelFormatException(path, field + " dtype", 8, "unknown dtype '" + dt.asText() + "'");
            }
            JsonNode sh = v.get("shape");
            if (sh == null || !sh.isArray() || sh.size() > 8) {
                throw new ModelFormatException(path, field + " shape", 8, "missing, not an array, or more than 8 dimensions");
            }
            long[] shape = new long[sh.size()];
            long elements = 1;
            for (int i = 0; i < shape.length; i++) {
                shape[i] = nonNegativeLong(path, field + " shape[" + i + "]", sh.get(i));
                try {
                    elements = Math.multiplyExact(elements, shape[i]);
                } catch (ArithmeticException x) {
                    throw new ModelFormatException(path, field + " shape", 8, "element count overflows 64 bits");
                }
            }
            JsonNode off = v.get("data_offsets");
            if (off == null || !off.isArray() || off.size() != 2) {
                throw new ModelFormatException(path, field + " data_offsets", 8, "missing or not a pair [begin, end]");
            }
            long begin = nonNegativeLong(path, field + " data_offsets[0]", off.get(0));
            long end = nonNegativeLong(path, field + " data_offsets[1]", off.get(1));
            if (end < begin) {
                throw new ModelFormatException(path, field + " data_offsets", 8, "end " + end + " is before begin " + begin);
            }
            long expectBytes;
            try {
                expectBytes = Math.multiplyExact(elements, (long) dtype.size);
            } catch (ArithmeticException x) {
                throw new ModelFormatException(path, field + " shape", 8, "byte size overflows 64 bits");
            }
            if (end - begin != expectBytes) {
                throw new ModelFormatException(path, field + " data_offsets", 8, "byte range [" + begin + ", " + end + ") holds "
                        + (end - begin) + " bytes but shape " + java.util.Arrays.toString(shape) + " of " + dtype + " needs " + expectBytes);
            }
            if (end > dataSize) {
                throw new ModelFormatException(path, field + " data", dataStart + begin, "bytes [" + begin + ", " + end
                        + ") of the data section run past the end of the file (the data section has " + dataSize + " bytes): file truncated or corrupt");
            }
            tensors.put(name, new Tensor(name, dtype, shape, dataStart + begin, expectBytes,
                    seg.asSlice(dataStart + begin, expectBytes).asReadOnly()));
        }
        List<Tensor> byOffset = new ArrayList<>(tensors.values());
        byOffset.sort(Comparator.comparingLong(Tensor::offset).thenComparingLong(Tensor::byteSize));
        long expected = dataStart;
        Tensor prev = null;
        for (Tensor t : byOffset) {
            if (t.offset < expected) {
                throw new ModelFormatException(path, "tensor '" + t.name + "' data", t.offset,
                        "overlaps tensor '" + prev.name + "' (" + prev.offset + " + " + prev.byteSize + " bytes)");
            }
            if (t.offset > expected) {
                throw new ModelFormatException(path, "tensor '" + t.name + "' data", t.offset,
                        "leaves a hole of " + (t.offset - expected) + " bytes before it (the tensors must cover the data section exactly)");
            }
            expected = t.offset + t.byteSize;
            prev = t;
        }
        if (expected != size) {
            throw new ModelFormatException(path, "tensor data", expected, (size - expected)
                    + " bytes after the last tensor are not described by the header: file corrupt");
        }
        return new SafetensorsFile(path, Collections.unmodifiableMap(metadata), Collections.unmodifiableMap(tensors), n, size, arena);
    }

    private static long nonNegativeLong(Path path, String field, JsonNode v) {
        if (v == null || !v.isIntegralNumber() || !v.canConvertToLong() || v.asLong() < 0) {
            throw new ModelFormatException(path, field, 8, "must be a non-negative integer, found " + (v == null ? "nothing" : abbreviate(v.toString())));
        }
        return v.asLong();
    }

    static String abbreviate(String s) {
        return s.length() > 60 ? s.substring(0, 57) + "..." : s;
    }

    /** Jackson's message without its source-location dump. */
    static String shortJsonError(JsonProcessingException e) {
        String m = e.getOriginalMessage();
        if (m == null) {
            m = e.getClass().getSimpleName();
        }
        m = abbreviate(m.lines().findFirst().orElse(m));
        if (e.getLocation() != null && e.getLocation().getCharOffset() >= 0) {
            m += " (at character " + e.getLocation().getCharOffset() + ")";
        }
        return m;
    }

    public Path path() {
        return path;
    }

    public Map<String, String> metadata() {
        return metadata;
    }

    /** Tensors in header order. */
    public Map<String, Tensor> tensors() {
        return tensors;
    }

    public Tensor tensor(String name) {
        return tensors.get(name);
    }

    public long headerLength() {
        return headerLength;
    }

    public long fileSize() {
        return fileSize;
    }

    @Override
    public void close() {
        if (arena != null) {
            arena.close();
        }
    }
}
