package internlm.loader.gguf;

import internlm.loader.ModelFormatException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.RandomAccessFile;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Truncated, corrupted and hostile GGUF files must end in one ModelFormatException naming the file (and the field and
 * offset where it applies) — never an OutOfMemoryError, a hang or another exception.
 */
class GgufHostileInputTest {
    @TempDir
    Path tmp;

    /** A little-endian byte builder for hand-made headers. */
    static final class Raw {
        final ByteArrayOutputStream out = new ByteArrayOutputStream();

        Raw u32(long v) {
            return bytes(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt((int) v).array());
        }

        Raw u64(long v) {
            return bytes(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(v).array());
        }

        Raw str(String s) {
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            u64(b.length);
            return bytes(b);
        }

        Raw bytes(byte[] b) {
            out.writeBytes(b);
            return this;
        }

        Raw header(long tensors, long kvs) {
            return u32(GgufFile.MAGIC).u32(3).u64(tensors).u64(kvs);
        }

        Raw pad(int align) {
            while (out.size() % align != 0) {
                out.write(0);
            }
            return this;
        }

        byte[] get() {
            return out.toByteArray();
        }
    }

    private Path file(byte[] b) throws Exception {
        Path p = Files.createTempFile(tmp, "bad", ".gguf");
        Files.write(p, b);
        return p;
    }

    private ModelFormatException refuse(byte[] b) throws Exception {
        Path p = file(b);
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> GgufFile.open(p).close());
        assertTrue(e.getMessage().startsWith(p.toString()), "message names the file: " + e.getMessage());
        return e;
    }

    private byte[] validFile() throws Exception {
        GgufWriter w = new GgufWriter()
                .putString("general.architecture", "internlm2")
                .putStrings("tokenizer.ggml.tokens", new String[] {"<unk>", "<s>", "</s>", "a", "b"})
                .putFloats("tokenizer.ggml.scores", new float[] {0, 0, 0, -1, -2})
                .put("nested", GgufValue.array(GgufValueType.ARRAY, new GgufValue[] {GgufValue.array(GgufValueType.UINT8, new byte[] {1, 2})}))
                .putU32("general.alignment", 32);
        w.addTensor("w", GgmlType.Q8_0, new long[] {32, 2}, new byte[68]);
        w.addTensor("n", GgmlType.F32, new long[] {5}, new byte[20]);
        ByteArrayOutputStream bo = new ByteArrayOutputStream();
        w.write(bo);
        return bo.toByteArray();
    }

    @Test
    void everyTruncationIsRefusedCleanly() throws Exception {
        byte[] ok = validFile();
        long end;
        try (GgufFile f = GgufFile.open(file(ok))) {
            end = f.tensors().values().stream().mapToLong(t -> t.fileOffset() + t.byteSize()).max().orElseThrow();
        }
        // (only the alignment padding after the last tensor may be cut without losing data)
        for (int len = 0; len < end; len++) {
            byte[] cut = java.util.Arrays.copyOf(ok, len);
            refuse(cut);
        }
    }

    @Test
    void randomCorruptionNeverEscapesAsAnotherException() throws Exception {
        byte[] ok = validFile();
        Random rnd = new Random(42);
        assertTimeoutPreemptively(Duration.ofSeconds(120), () -> {
            for (int i = 0; i < 3000; i++) {
                byte[] b = ok.clone();
                int edits = 1 + rnd.nextInt(4);
                for (int e = 0; e < edits; e++) {
                    int at = rnd.nextInt(b.length);
                    switch (rnd.nextInt(3)) {
                        case 0 -> b[at] = (byte) rnd.nextInt(256);
                        case 1 -> b[at] ^= (byte) (1 << rnd.nextInt(8));
                        default -> {
                            // a huge little-endian integer at a random place (counts, lengths, dims, offsets)
                            for (int k = 0; k < 8 && at + k < b.length; k++) {
                                b[at + k] = (byte) (k == 7 ? 0x7f : 0xff);
                            }
                        }
                    }
                }
                Path p = file(b);
                try (GgufFile f = GgufFile.open(p)) {
                    // parsed: every tensor view must lie inside the file
                    for (GgufTensor t : f.tensors().values()) {
                        assertTrue(t.fileOffset() + t.byteSize() <= f.fileSize());
                        if (t.byteSize() > 0) {
                            t.data().get(ValueLayout.JAVA_BYTE, t.byteSize() - 1);
                        }
                    }
                } catch (ModelFormatException expected) {
                    assertTrue(expected.getMessage().startsWith(p.toString()));
                }
                Files.delete(p);
            }
        });
    }

    @Test
    void notGgufAtAll() throws Exception {
        assertTrue(refuse("PK\3\4 this is a zip".getBytes()).getMessage().contains("not a GGUF file"));
        assertTrue(refuse(new byte[0]).getMessage().contains("too short"));
    }

    @Test
    void unsupportedVersionsAndEndianness() throws Exception {
        assertTrue(refuse(new Raw().u32(GgufFile.MAGIC).u32(1).u64(0).u64(0).get()).getMessage().contains("version 1"));
        assertTrue(refuse(new Raw().u32(GgufFile.MAGIC).u32(9).u64(0).u64(0).get()).getMessage().contains("unsupported GGUF version 9"));
        assertTrue(refuse(new Raw().u32(GgufFile.MAGIC).u32(Integer.reverseBytes(3)).u64(0).u64(0).get()).getMessage().contains("big-endian"));
    }

    @Test
    void hugeCountsAreRejectedBeforeAllocating() throws Exception {
        ModelFormatException e = refuse(new Raw().header(0, Long.MAX_VALUE).get());
        assertTrue(e.getMessage().contains("metadata_kv_count"), e.getMessage());
        e = refuse(new Raw().header(1L << 40, 0).get());
        assertTrue(e.getMessage().contains("tensor_count"), e.getMessage());
        // an array claiming 2^60 elements
        e = refuse(new Raw().header(0, 1).str("tokenizer.ggml.tokens").u32(9).u32(8).u64(1L << 60).get());
        assertTrue(e.getMessage().contains("element count") && e.getMessage().contains("cannot fit"), e.getMessage());
        // a string length past the end of the file
        e = refuse(new Raw().header(0, 1).str("k").u32(8).u64(1L << 33).bytes("abc".getBytes()).bytes(new byte[8]).get());
        assertTrue(e.getMessage().contains("runs past the end"), e.getMessage());
        // a key whose length is negative as a signed number
        e = refuse(new Raw().header(0, 1).u64(-5).bytes(new byte[32]).get());
        assertTrue(e.getMessage().contains("metadata key #0"), e.getMessage());
    }

    @Test
    void unknownTypesAreNamed() throws Exception {
        ModelFormatException e = refuse(new Raw().header(0, 1).str("k").u32(77).u32(1).bytes(new byte[8]).get());
        assertTrue(e.getMessage().contains("unknown metadata value type 77"), e.getMessage());
        e = refuse(new Raw().header(1, 0).str("t").u32(1).u64(32).u32(99).u64(0).pad(32).bytes(new byte[64]).get());
        assertTrue(e.getMessage().contains("unknown ggml tensor type 99") && e.getMessage().contains("tensor 't' type at offset"), e.getMessage());
    }

    @Test
    void badTensorLayoutsAreRefused() throws Exception {
        // misaligned data offset
        ModelFormatException e = refuse(new Raw().header(1, 0).str("t").u32(1).u64(8).u32(0).u64(4).pad(32).bytes(new byte[64]).get());
        assertTrue(e.getMessage().contains("not a multiple of the alignment"), e.getMessage());
        // overlapping tensors
        e = refuse(new Raw().header(2, 0).str("a").u32(1).u64(16).u32(0).u64(0).str("b").u32(1).u64(16).u32(0).u64(32)
                .pad(32).bytes(new byte[128]).get());
        assertTrue(e.getMessage().contains("overlaps tensor 'a'"), e.getMessage());
        // data past the end of the file
        e = refuse(new Raw().header(1, 0).str("t").u32(1).u64(1024).u32(0).u64(0).pad(32).bytes(new byte[16]).get());
        assertTrue(e.getMessage().contains("run past the end of the file"), e.getMessage());
        // too many dimensions, a zero dimension, an element count overflowing 64 bits
        e = refuse(new Raw().header(1, 0).str("t").u32(5).bytes(new byte[64]).get());
        assertTrue(e.getMessage().contains("5 dimensions"), e.getMessage());
        e = refuse(new Raw().header(1, 0).str("t").u32(2).u64(4).u64(0).u32(0).u64(0).bytes(new byte[64]).get());
        assertTrue(e.getMessage().contains("invalid size 0"), e.getMessage());
        e = refuse(new Raw().header(1, 0).str("t").u32(2).u64(1L << 40).u64(1L << 40).u32(0).u64(0).bytes(new byte[64]).get());
        assertTrue(e.getMessage().contains("overflows"), e.getMessage());
        // a row length that is not a whole number of quantization blocks
        e = refuse(new Raw().header(1, 0).str("t").u32(1).u64(20).u32(8).u64(0).pad(32).bytes(new byte[64]).get());
        assertTrue(e.getMessage().contains("not a multiple of the Q8_0 block size"), e.getMessage());
        // duplicate tensor names and keys
        e = refuse(new Raw().header(2, 0).str("a").u32(1).u64(8).u32(0).u64(0).str("a").u32(1).u64(8).u32(0).u64(32).pad(32).bytes(new byte[64]).get());
        assertTrue(e.getMessage().contains("duplicate tensor name"), e.getMessage());
        e = refuse(new Raw().header(0, 2).str("k").u32(4).u32(1).str("k").u32(4).u32(2).bytes(new byte[8]).get());
        assertTrue(e.getMessage().contains("duplicate key"), e.getMessage());
        // alignment that is not a power of two, or of the wrong type
        e = refuse(new Raw().header(0, 1).str("general.alignment").u32(4).u32(24).bytes(new byte[8]).get());
        assertTrue(e.getMessage().contains("not a power of two"), e.getMessage());
        e = refuse(new Raw().header(0, 1).str("general.alignment").u32(5).u32(32).bytes(new byte[8]).get());
        assertTrue(e.getMessage().contains("must be a uint32"), e.getMessage());
        // invalid bool and absurd nesting
        e = refuse(new Raw().header(0, 1).str("b").u32(7).bytes(new byte[] {7}).bytes(new byte[8]).get());
        assertTrue(e.getMessage().contains("invalid bool"), e.getMessage());
        Raw deep = new Raw().header(0, 1).str("deep").u32(9);
        for (int i = 0; i < 20; i++) {
            deep.u32(9).u64(1);
        }
        e = refuse(deep.get());
        assertTrue(e.getMessage().contains("nested"), e.getMessage());
    }

    @Test
    void filesOver4GiBWithTensorsOver2GiBWork() throws Exception {
        // a sparse file: header, then a 2.5 GiB F32 tensor followed by a small one beyond 4 GiB
        long big = 640L * 1024 * 1024; // elements: 2.5 GiB of F32
        byte[] head = new Raw().header(2, 0)
                .str("big").u32(2).u64(1024).u64(big / 1024).u32(0).u64(0)
                .str("tail").u32(1).u64(8).u32(0).u64(4L * big + (2L << 30))
                .pad(32).get();
        Path p = tmp.resolve("huge.gguf");
        Files.write(p, head);
        long total = head.length + 4L * big + (2L << 30) + 32;
        try (RandomAccessFile raf = new RandomAccessFile(p.toFile(), "rw")) {
            raf.setLength(total);
            raf.seek(head.length + 4L * big + (2L << 30));
            raf.write(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putFloat(3.25f).array());
        }
        try (GgufFile f = GgufFile.open(p)) {
            assertTrue(f.fileSize() > (4L << 30));
            GgufTensor t = f.tensor("big");
            assertEquals(4L * big, t.byteSize());
            assertTrue(t.byteSize() > Integer.MAX_VALUE);
            assertEquals(0f, t.data().get(ValueLayout.JAVA_FLOAT_UNALIGNED, t.byteSize() - 4));
            GgufTensor tail = f.tensor("tail");
            assertTrue(tail.fileOffset() > (4L << 30));
            assertEquals(3.25f, tail.data().get(ValueLayout.JAVA_FLOAT_UNALIGNED, 0));
        } finally {
            Files.delete(p);
        }
    }
}
