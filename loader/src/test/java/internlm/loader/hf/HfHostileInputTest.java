package internlm.loader.hf;

import internlm.loader.LoadedModel;
import internlm.loader.ModelFormatException;
import internlm.loader.Progress;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Map;
import java.util.Random;
import java.util.function.Function;

import static internlm.loader.hf.HfTestDirs.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * Truncated, corrupted and hostile safetensors files, shard indexes, configs and SentencePiece models must end in one
 * ModelFormatException naming the file (and field) — never an OutOfMemoryError, a hang or another exception. Fuzzed
 * like the GGUF reader: every truncation, thousands of random corruptions, and hand-made hostile headers.
 */
class HfHostileInputTest {
    @TempDir
    Path tmp;

    private static final Path NAME = Path.of("fuzz.safetensors");

    static byte[] validSafetensors() {
        Map<String, RawTensor> m = map();
        m.put("a.weight", RawTensor.f32(new long[] {2, 3}, 1, 2, 3, 4, 5, 6));
        m.put("b.bias", new RawTensor("BF16", new long[] {4}, new byte[] {0, 0x3f, 0, 0x40, 0, (byte) 0xbf, 0, 0}));
        m.put("c", new RawTensor("F16", new long[] {2, 2}, new byte[8]));
        return safetensors(m);
    }

    private static ModelFormatException refuse(byte[] b) {
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> SafetensorsFile.parse(NAME, MemorySegment.ofArray(b)));
        assertTrue(e.getMessage().startsWith(NAME.toString()), "names the file: " + e.getMessage());
        return e;
    }

    /** A file with a hand-written header (padded to 8) and some data bytes. */
    static byte[] withHeader(String json, int dataBytes) {
        StringBuilder h = new StringBuilder(json);
        while (h.length() % 8 != 0) {
            h.append(' ');
        }
        byte[] hb = h.toString().getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + hb.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(hb.length).put(hb);
        return b.array();
    }

    @Test
    void validFileParses() {
        SafetensorsFile f = SafetensorsFile.parse(NAME, MemorySegment.ofArray(validSafetensors()));
        assertEquals(3, f.tensors().size());
        assertEquals("pt", f.metadata().get("format"));
        SafetensorsFile.Tensor a = f.tensor("a.weight");
        assertArrayEquals(new long[] {2, 3}, a.shape());
        assertEquals(6f, a.data().get(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 20));
        assertEquals(SafetensorsFile.Dtype.BF16, f.tensor("b.bias").dtype());
    }

    @Test
    void everyTruncationIsRefusedCleanly() {
        byte[] ok = validSafetensors();
        for (int len = 0; len < ok.length; len++) {
            refuse(Arrays.copyOf(ok, len));
        }
    }

    @Test
    void randomCorruptionNeverEscapesAsAnotherException() {
        byte[] ok = validSafetensors();
        Random rnd = new Random(7);
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            for (int i = 0; i < 5000; i++) {
                byte[] b = corrupt(ok, rnd);
                try {
                    SafetensorsFile f = SafetensorsFile.parse(NAME, MemorySegment.ofArray(b));
                    for (SafetensorsFile.Tensor t : f.tensors().values()) {
                        assertTrue(t.offset() + t.byteSize() <= b.length);
                        if (t.byteSize() > 0) {
                            t.data().get(ValueLayout.JAVA_BYTE, t.byteSize() - 1);
                        }
                    }
                } catch (ModelFormatException expected) {
                    assertTrue(expected.getMessage().startsWith(NAME.toString()));
                }
            }
        });
    }

    static byte[] corrupt(byte[] ok, Random rnd) {
        byte[] b = ok.clone();
        int edits = 1 + rnd.nextInt(4);
        for (int e = 0; e < edits; e++) {
            int at = rnd.nextInt(b.length);
            switch (rnd.nextInt(4)) {
                case 0 -> b[at] = (byte) rnd.nextInt(256);
                case 1 -> b[at] ^= (byte) (1 << rnd.nextInt(8));
                case 2 -> b[at] = (byte) "0123456789{}[]\",:-.e ".charAt(rnd.nextInt(21)); // JSON-ish damage
                default -> {
                    for (int k = 0; k < 8 && at + k < b.length; k++) {
                        b[at + k] = (byte) (k == 7 ? 0x7f : 0xff);
                    }
                }
            }
        }
        return b;
    }

    @Test
    void hostileHeadersAreNamed() {
        byte[] huge = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(Long.MAX_VALUE).array();
        assertTrue(refuse(huge).getMessage().contains("does not fit in the file"));
        assertTrue(refuse(new byte[3]).getMessage().contains("too short"));
        assertTrue(refuse(withHeader("[1,2]", 0)).getMessage().contains("does not start with '{'"));
        assertTrue(refuse(withHeader("{\"a\": ", 0)).getMessage().contains("not valid JSON"));
        assertTrue(refuse(withHeader("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{}}", 4)).getMessage().contains("Duplicate field"));
        assertTrue(refuse(withHeader("{\"a\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4)).getMessage().contains("unknown dtype 'Q4'"));
        assertTrue(refuse(withHeader("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4)).getMessage()
                .contains("holds 4 bytes but shape [2] of F32 needs 8"));
        assertTrue(refuse(withHeader("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4)).getMessage().contains("shape[0]"));
        assertTrue(refuse(withHeader("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4)).getMessage().contains("non-negative integer"));
        assertTrue(refuse(withHeader("{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,4]}}", 4)).getMessage().contains("overflows"));
        assertTrue(refuse(withHeader("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4)).getMessage().contains("before begin"));
        assertTrue(refuse(withHeader("{\"a\":{\"dtype\":\"F32\",\"shape\":[256],\"data_offsets\":[0,1024]}}", 16)).getMessage().contains("run past the end"));
        assertTrue(refuse(withHeader("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12))
                .getMessage().contains("overlaps tensor 'a'"));
        assertTrue(refuse(withHeader("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8)).getMessage().contains("hole of 4 bytes"));
        assertTrue(refuse(withHeader("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 12)).getMessage().contains("8 bytes after the last tensor"));
        assertTrue(refuse(withHeader("{\"__metadata__\":{\"k\":1}}", 0)).getMessage().contains("__metadata__.k"));
        assertTrue(refuse(withHeader("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4)).getMessage().contains("dtype"));
        assertTrue(refuse(withHeader("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4)).getMessage().contains("data_offsets"));
        assertTrue(refuse(withHeader("[".repeat(5000), 0)).getMessage().contains("does not start with '{'"));
        assertTrue(refuse(withHeader("{\"a\":" + "[".repeat(5000) + "]".repeat(5000) + "}", 0)).getMessage().contains("not valid JSON"));
        byte[] badUtf8 = withHeader("{\"a\":{}}", 0);
        badUtf8[10] = (byte) 0xff;
        assertTrue(refuse(badUtf8).getMessage().contains("UTF-8"));
        // empty, and zero-size tensors, are fine
        assertEquals(0, SafetensorsFile.parse(NAME, MemorySegment.ofArray(withHeader("{}", 0))).tensors().size());
        assertEquals(0, SafetensorsFile.parse(NAME, MemorySegment.ofArray(withHeader("{\"e\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[0,0]}}", 0)))
                .tensor("e").byteSize());
    }

    /** A two-shard directory: the InternLM2 fixture. */
    private Path shardedCopy() throws Exception {
        return copy(V2_BF16_SHARDED, Files.createTempDirectory(tmp, "d"));
    }

    private static ModelFormatException refuseDir(Path d, String fileInMessage) {
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> HfModelLoader.load(d, Progress.NONE).close());
        assertTrue(e.getMessage().startsWith(d.resolve(fileInMessage).toString()), e.getMessage());
        return e;
    }

    @Test
    void indexFilesAreChecked() throws Exception {
        Path d = shardedCopy();
        Path idx = d.resolve(HfCheckpoint.INDEX);
        String good = Files.readString(idx);
        String s1 = "model-00001-of-00002.safetensors", s2 = "model-00002-of-00002.safetensors";
        Map<String, Function<String, String>> cases = Map.of(
                "names shard 'model-00003-of-00002.safetensors', which is not in the directory", x -> x.replaceFirst(s1, "model-00003-of-00002.safetensors"),
                "is not a plain file name", x -> x.replaceFirst(s1, "../../etc/passwd"),
                "maps tensor 'model.layers.0.attention.wo.weight' to " + s2 + " but it is in " + s1, x -> x.replaceFirst(s1, s2),
                "does not list tensor 'model.layers.0.attention.wo.weight'", x -> x.replaceFirst("\"model.layers.0.attention.wo.weight\": \"" + s1 + "\",", ""),
                "maps tensor 'extra.weight' to " + s1 + ", which does not hold it", x -> x.replaceFirst("\"weight_map\": \\{", "\"weight_map\": {\"extra.weight\": \"" + s1 + "\","),
                "weight_map is missing", x -> x.replace("weight_map", "weights"),
                "must be a file name", x -> x.replaceFirst("\"" + s1 + "\"", "17"),
                "Duplicate field", x -> x.replaceFirst("\"weight_map\": \\{", "\"weight_map\": {\"output.weight\": \"" + s2 + "\","),
                "weight_map is empty", x -> "{\"metadata\": {}, \"weight_map\": {}}");
        for (Map.Entry<String, Function<String, String>> c : cases.entrySet()) {
            Files.writeString(idx, c.getValue().apply(good));
            ModelFormatException e = refuseDir(d, HfCheckpoint.INDEX);
            assertTrue(e.getMessage().contains(c.getKey()), c.getKey() + " -> " + e.getMessage());
        }
        // every truncation of the index (before its closing brace) is refused; the full file loads
        int last = good.lastIndexOf('}');
        for (int len = 0; len <= last; len += 7) {
            Files.writeString(idx, good.substring(0, len));
            refuseDir(d, HfCheckpoint.INDEX);
        }
        Files.writeString(idx, good);
        try (LoadedModel m = HfModelLoader.load(d, Progress.NONE)) {
            assertEquals(2, m.config().layers());
        }
        // a tensor in two shards (without an index to disambiguate)
        Files.delete(idx);
        Map<String, RawTensor> dup = map();
        dup.put("model.norm.weight", RawTensor.f32(new long[] {64}, new float[64]));
        Files.write(d.resolve("model-extra.safetensors"), safetensors(dup));
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> HfModelLoader.load(d, Progress.NONE).close());
        assertTrue(e.getMessage().contains("'model.norm.weight' is also in"), e.getMessage());
    }

    @Test
    void corruptShardsOfADirectoryAreNamed() throws Exception {
        Path d = shardedCopy();
        Path shard = d.resolve("model-00002-of-00002.safetensors");
        byte[] ok = Files.readAllBytes(shard);
        Random rnd = new Random(11);
        assertTimeoutPreemptively(Duration.ofSeconds(120), () -> {
            for (int i = 0; i < 300; i++) {
                byte[] b = ok.clone();
                // damage the header (where structure lives) or cut the file
                int headerEnd = (int) (8 + ByteBuffer.wrap(ok, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong());
                if (i % 3 == 0) {
                    b = Arrays.copyOf(ok, rnd.nextInt(ok.length));
                } else {
                    byte[] head = corrupt(Arrays.copyOf(ok, headerEnd), rnd);
                    System.arraycopy(head, 0, b, 0, headerEnd);
                }
                Files.write(shard, b);
                try (LoadedModel m = HfModelLoader.load(d, Progress.NONE)) {
                    assertNotNull(m.tensor("output.weight")); // a harmless change (e.g. a space in the header)
                } catch (ModelFormatException expected) {
                    String msg = expected.getMessage();
                    assertTrue(msg.startsWith(d.toString()), msg);
                }
            }
        });
    }

    @Test
    void configFilesAreChecked() throws Exception {
        Path d = shardedCopy();
        Path cfg = d.resolve("config.json");
        String good = Files.readString(cfg);
        int last = good.lastIndexOf('}');
        for (int len = 0; len <= last; len += 5) {
            Files.writeString(cfg, good.substring(0, len));
            refuseDir(d, "config.json");
        }
        Random rnd = new Random(3);
        byte[] ok = good.getBytes(StandardCharsets.UTF_8);
        for (int i = 0; i < 500; i++) {
            Files.write(cfg, corrupt(ok, rnd));
            try {
                HfConfig.read(cfg);
            } catch (ModelFormatException expected) {
                assertTrue(expected.getMessage().startsWith(cfg.toString()), expected.getMessage());
            }
        }
        Map<String, String> cases = Map.of(
                "\"hidden_size\": 64", "hidden_size must be a positive integer",
                "\"num_attention_heads\": 4", "num_attention_heads must be a positive integer",
                "\"rms_norm_eps\": 1e-05", "rms_norm_eps must be a positive number",
                "\"rope_theta\": 1000000", "rope_theta must be a positive number",
                "\"eos_token_id\": 2", "eos_token_id must be a token id",
                "\"bias\": false", "bias must be true or false",
                "\"hidden_act\": \"silu\"", "hidden_act 'x' is not supported");
        for (Map.Entry<String, String> c : cases.entrySet()) {
            String bad = good.replace(c.getKey(), c.getKey().replaceFirst(":.*", ": \"x\""));
            assertNotEquals(good, bad, c.getKey());
            Files.writeString(cfg, bad);
            ModelFormatException e = refuseDir(d, "config.json");
            assertTrue(e.getMessage().contains(c.getValue()), c.getKey() + " -> " + e.getMessage());
        }
        Files.writeString(cfg, good.replace("\"num_key_value_heads\": 2", "\"num_key_value_heads\": 3"));
        assertTrue(refuseDir(d, "config.json").getMessage().contains("not a multiple of num_key_value_heads 3"));
        Files.writeString(cfg, good.replace("\"hidden_size\": 64,", ""));
        assertTrue(refuseDir(d, "config.json").getMessage().contains("required field hidden_size is missing"));
        Files.writeString(cfg, good.replace("\"hidden_act\": \"silu\"", "\"hidden_act\": \"gelu\""));
        assertTrue(refuseDir(d, "config.json").getMessage().contains("hidden_act 'gelu' is not supported"));
        Files.writeString(cfg, "[]");
        assertTrue(refuseDir(d, "config.json").getMessage().contains("not a JSON object"));
    }

    @Test
    void tokenizerAndGenerationConfigsAreChecked() throws Exception {
        Path d = shardedCopy();
        Path tc = d.resolve("tokenizer_config.json");
        String good = Files.readString(tc);
        Map<String, String> cases = Map.of(
                "\"398\": {", "\"x398\": {",
                "\"content\": \"<|im_end|>\"", "\"content\": 5",
                "\"add_bos_token\": true", "\"add_bos_token\": \"yes\"",
                "\"chat_template\": \"", "\"chat_template\": 3, \"x\": \"");
        Map<String, String> expect = Map.of(
                "\"398\": {", "added_tokens_decoder key 'x398' is not a token id",
                "\"content\": \"<|im_end|>\"", ".content must be a string",
                "\"add_bos_token\": true", "add_bos_token must be true or false",
                "\"chat_template\": \"", "chat_template must be a string");
        for (Map.Entry<String, String> c : cases.entrySet()) {
            String bad = good.replace(c.getKey(), c.getValue());
            assertNotEquals(good, bad, c.getKey());
            Files.writeString(tc, bad);
            ModelFormatException e = refuseDir(d, "tokenizer_config.json");
            assertTrue(e.getMessage().contains(expect.get(c.getKey())), c.getKey() + " -> " + e.getMessage());
        }
        // an added token renaming a piece to a text another piece already has
        Files.writeString(tc, good.replace("\"content\": \"<|im_end|>\"", "\"content\": \"<s>\""));
        assertTrue(refuseDir(d, "").getMessage().contains("the token '<s>' twice"));
        Files.writeString(tc, good);
        Files.writeString(d.resolve("generation_config.json"), "{\"eos_token_id\": [2, \"x\"]}");
        assertTrue(refuseDir(d, "generation_config.json").getMessage().contains("eos_token_id must hold token ids"));
        Files.writeString(d.resolve("generation_config.json"), "{\"eos_token_id\": [2, 99999]}");
        try (LoadedModel m = HfModelLoader.load(d, Progress.NONE)) {
            assertArrayEquals(new int[] {2}, m.stopTokens());
            assertTrue(m.notes().stream().anyMatch(n -> n.contains("99999 is outside the vocabulary")), m.notes().toString());
        }
    }

    @Test
    void sentencePieceModelsAreChecked() throws Exception {
        Path d = shardedCopy();
        Path tm = d.resolve("tokenizer.model");
        byte[] ok = Files.readAllBytes(tm);
        Path name = Path.of("tokenizer.model");
        // protobuf has no end marker: a cut at a field boundary is a shorter valid message, anything else an error
        int valid = 0;
        for (int len = 0; len < ok.length; len++) {
            try {
                SentencePieceModel m = SentencePieceModel.parse(name, Arrays.copyOf(ok, len));
                assertTrue(m.pieces().size() <= 400);
                valid++;
            } catch (ModelFormatException expected) {
                assertTrue(expected.getMessage().startsWith("tokenizer.model"), expected.getMessage());
            }
        }
        assertTrue(valid < ok.length / 4, "most cuts are refused: " + valid);
        Random rnd = new Random(5);
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            for (int i = 0; i < 3000; i++) {
                try {
                    SentencePieceModel.parse(name, corrupt(ok, rnd));
                } catch (ModelFormatException expected) {
                    assertTrue(expected.getMessage().startsWith("tokenizer.model"), expected.getMessage());
                }
            }
        });
        // a huge length prefix, a bad wire type, a bad piece type, no pieces at all
        assertTrue(assertThrows(ModelFormatException.class, () -> SentencePieceModel.parse(name, new byte[] {0x0a, (byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff, 0x0f}))
                .getMessage().contains("runs past the end"));
        assertTrue(assertThrows(ModelFormatException.class, () -> SentencePieceModel.parse(name, new byte[] {0x0b}))
                .getMessage().contains("wire type 3"));
        assertTrue(assertThrows(ModelFormatException.class, () -> SentencePieceModel.parse(name, new byte[] {0x0a, 0x05, 0x0a, 0x01, 'a', 0x18, 0x09}))
                .getMessage().contains("unknown piece type 9"));
        assertTrue(assertThrows(ModelFormatException.class, () -> SentencePieceModel.parse(name, new byte[] {0x12, 0x02, 0x18, 0x02}))
                .getMessage().contains("has no pieces"));
        // the whole directory with a damaged tokenizer.model
        Files.write(tm, Arrays.copyOf(ok, ok.length / 2 + 1));
        refuseDir(d, "tokenizer.model");
        Files.delete(tm);
        assertTrue(assertThrows(ModelFormatException.class, () -> HfModelLoader.load(d, Progress.NONE)).getMessage().contains("has no tokenizer.model"));
    }
}
