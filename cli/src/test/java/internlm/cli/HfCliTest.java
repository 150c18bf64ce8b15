package internlm.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

import static internlm.cli.CliTest.run;
import static org.junit.jupiter.api.Assertions.*;

/**
 * Hugging Face directories through the CLI: generate straight from the directory, {@code convert} to GGUF, and the
 * greedy ids of both against what llama.cpp printed for the reference GGUF of each directory (make-hf.mjs --gguf,
 * the file llama.cpp's converter would write). {@code --ctx} past the trained window only for dynamic NTK models.
 */
class HfCliTest {
    @TempDir
    Path tmp;

    static final ObjectMapper JSON = new ObjectMapper();

    static Path hf(String name) {
        return Path.of(System.getProperty("internlm.testdata", "../testdata")).resolve("hf").resolve(name);
    }

    /**
     * Greedy ids of `generate --json` must be llama.cpp's (on the F32 reference) up to its first near-tie: a top-1/top-2
     * gap below what the weight type can move a logit (F32 2e-3, F16 2e-2, Q8_0 0.25).
     */
    private static void assertLlamaCppIds(JsonNode expectedDecode, CliTest.Result r, String what, double gap) throws Exception {
        assertEquals(0, r.code(), r.err());
        JsonNode j = JSON.readTree(r.out());
        assertEquals(expectedDecode.get("prompt"), j.get("prompt"), what + " prompt ids");
        JsonNode steps = expectedDecode.get("steps");
        int same = 0;
        for (int i = 0; i < steps.size() && steps.get(i).get("gap12").asDouble() >= gap; i++) {
            assertEquals(steps.get(i).get("token").asInt(), j.get("generated").get(i).asInt(), what + ": greedy id at step " + i);
            same++;
        }
        assertTrue(same >= 3, what + ": only " + same + " steps compared");
    }

    @ParameterizedTest
    @ValueSource(strings = {"internlm2-tiny-bf16-2shards", "internlm3-small-f32", "internlm-v1-tiny-bias-bf16"})
    void directoryAndItsConversionGiveLlamaCppsGreedyIds(String name) throws Exception {
        JsonNode exp = JSON.readTree(hf(name + ".expected.json").toFile()).get("decode");
        String[] gen = {"-q", "--prompt", "The capital of France is", "-n", "24", "--temperature", "0", "--ignore-eos", "--json"};
        assertLlamaCppIds(exp, run("", concat(new String[] {"generate", "-m", hf(name).toString()}, gen)), name + " (HF directory)", 2e-3);
        for (String type : new String[] {"f32", "f16", "q8_0"}) {
            Path out = tmp.resolve(name + "-" + type + ".gguf");
            CliTest.Result c = run("", "convert", "-q", "-m", hf(name).toString(), "-o", out.toString(), "--type", type);
            assertEquals(0, c.code(), c.err());
            assertTrue(c.out().startsWith("wrote " + out), c.out());
            assertLlamaCppIds(exp, run("", concat(new String[] {"generate", "-m", out.toString()}, gen)), name + " converted to " + type,
                    type.equals("f32") ? 2e-3 : type.equals("f16") ? 2e-2 : 0.25);
        }
        // --quantize at load gives the same ids as the converted file of that type
        CliTest.Result q = run("", concat(new String[] {"generate", "-m", hf(name).toString(), "--quantize", "q8_0"}, gen));
        CliTest.Result g = run("", concat(new String[] {"generate", "-m", tmp.resolve(name + "-q8_0.gguf").toString()}, gen));
        assertEquals(JSON.readTree(g.out()).get("generated"), JSON.readTree(q.out()).get("generated"));
    }

    private static String[] concat(String[] a, String[] b) {
        return Stream.concat(Stream.of(a), Stream.of(b)).toArray(String[]::new);
    }

    @Test
    void infoAndTokenizeReadDirectories() throws Exception {
        CliTest.Result r = run("", "info", "-m", hf("internlm-v1-tiny-bias-bf16").toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("internlm -> InternLM (v1)"), r.out());
        assertTrue(r.out().contains("qkv true, output true"), r.out());
        assertTrue(r.out().contains("BF16"), r.out());
        r = run("", "info", "-m", hf("internlm2-tiny-bf16-2shards").toString(), "--quantize", "q4_0");
        assertTrue(r.out().contains("Q4_0") && r.out().contains("converted to Q4_0"), r.out());
        r = run("", "tokenize", "-m", hf("internlm2-tiny-bf16-2shards").toString(), "--text", "<|im_start|>user\nhi<|im_end|>", "--json");
        assertEquals(0, r.code(), r.err());
        JsonNode j = JSON.readTree(r.out());
        assertEquals(399, j.get("ids").get(0).asInt());
        assertEquals(398, j.get("ids").get(j.get("ids").size() - 1).asInt());
    }

    @Test
    void contextPastTheWindowOnlyForDynamicScaling() throws Exception {
        Path d = tmp.resolve("dyn");
        Files.createDirectories(d);
        try (Stream<Path> s = Files.list(hf("internlm2-tiny-bf16-2shards"))) {
            for (Path p : s.toList()) {
                Files.copy(p, d.resolve(p.getFileName()));
            }
        }
        Path cfg = d.resolve("config.json");
        ObjectNode o = (ObjectNode) JSON.readTree(cfg.toFile());
        o.put("max_position_embeddings", 32);
        o.putObject("rope_scaling").put("type", "dynamic").put("factor", 2.0);
        JSON.writeValue(cfg.toFile(), o);
        CliTest.Result r = run("", "generate", "-q", "-m", d.toString(), "--ctx", "200", "--prompt-ids", "1,300,301", "-n", "150",
                "--temperature", "0", "--ignore-eos", "--json");
        assertEquals(0, r.code(), r.err());
        assertEquals(150, JSON.readTree(r.out()).get("generated").size());
        o.putNull("rope_scaling");
        JSON.writeValue(cfg.toFile(), o);
        r = run("", "generate", "-q", "-m", d.toString(), "--ctx", "200", "--prompt-ids", "1,300,301", "-n", "4");
        assertEquals(1, r.code());
        assertTrue(r.err().contains("--ctx 200 exceeds the model's trained window of 32 tokens"), r.err());
        assertFalse(r.err().contains("Exception"), r.err());
    }

    @Test
    void clearErrorsForWhatIsNotAModel() throws Exception {
        Path pickle = tmp.resolve("pytorch_model.bin");
        Files.write(pickle, new byte[] {(byte) 0x80, 2, 0x7d, 0x71});
        CliTest.Result r = run("", "info", "-m", pickle.toString());
        assertEquals(1, r.code());
        assertTrue(r.err().contains("PyTorch pickle") && r.err().contains("safetensors"), r.err());
        r = run("", "info", "-m", hf("internlm2-tiny-bf16-2shards").resolve("model-00001-of-00002.safetensors").toString());
        assertTrue(r.err().contains("give its directory"), r.err());
        r = run("", "info", "-m", tmp.toString());
        assertTrue(r.err().contains("is a directory without config.json"), r.err());
        r = run("", "convert", "-m", hf("internlm3-small-f32").toString(), "-o", tmp.resolve("x.gguf").toString(), "--type", "q5_k");
        assertEquals(1, r.code());
        assertTrue(r.err().contains("--type q5_k is not supported"), r.err());
        Files.writeString(tmp.resolve("exists.gguf"), "x");
        r = run("", "convert", "-m", hf("internlm3-small-f32").toString(), "-o", tmp.resolve("exists.gguf").toString());
        assertTrue(r.err().contains("exists (use --force"), r.err());
        r = run("", "convert", "-m", tmp.resolve("exists.gguf").toString(), "-o", tmp.resolve("y.gguf").toString());
        assertTrue(r.err().contains("is not a directory"), r.err());
        r = run("", "generate", "-q", "-m", hf("internlm3-small-f32").toString(), "--quantize", "q2_k", "--prompt", "x");
        assertTrue(r.err().contains("--quantize q2_k is not supported"), r.err());
        assertEquals(0, run("", "convert", "--help").code());
    }
}
