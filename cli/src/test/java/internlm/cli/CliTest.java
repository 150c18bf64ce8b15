package internlm.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** The commands end to end, as a user runs them (in-process: Main.run with captured streams). */
class CliTest {
    @TempDir
    Path tmp;

    record Result(int code, String out, String err) {}

    static synchronized Result run(String stdin, String... args) {
        PrintStream oldOut = System.out, oldErr = System.err;
        InputStream oldIn = System.in;
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        try {
            System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
            System.setIn(new ByteArrayInputStream(stdin.getBytes(StandardCharsets.UTF_8)));
            int code = Main.run(args);
            return new Result(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
        } finally {
            System.setOut(oldOut);
            System.setErr(oldErr);
            System.setIn(oldIn);
        }
    }

    static Path fixture(String name) {
        return Path.of(System.getProperty("internlm.testdata", "../testdata")).resolve("fixtures").resolve(name);
    }

    @Test
    void generateKeepsToAJsonSchemaOrAGrammar() throws Exception {
        Path schema = tmp.resolve("s.json");
        Files.writeString(schema, "{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"integer\"}, \"b\": {\"enum\": [\"x\", \"y\"]}},"
                + " \"required\": [\"a\", \"b\"], \"additionalProperties\": false}");
        Result r = run("", "generate", "-q", "-p", "Hi", "--json-schema", schema.toString(), "-n", "80", "--temperature", "1", "--seed", "3");
        assertEquals(0, r.code(), r.err());
        JsonNode j = new ObjectMapper().readTree(r.out());
        assertTrue(j.get("a").isIntegralNumber() && (j.get("b").asText().equals("x") || j.get("b").asText().equals("y")), r.out());
        assertEquals(2, j.size());
        Path g = tmp.resolve("g.gbnf");
        Files.writeString(g, "root ::= (\"yes\" | \"no\") \" \" [0-9]{2}\n");
        Result w = run("", "generate", "-q", "-p", "Hi", "--grammar", g.toString(), "-n", "20", "--temperature", "1", "--seed", "5");
        assertEquals(0, w.code(), w.err());
        assertTrue(w.out().strip().matches("(yes|no) [0-9]{2}"), w.out());
        Files.writeString(g, "root ::= root \"x\"\n");
        Result bad = run("", "generate", "-q", "-p", "Hi", "--grammar", g.toString());
        assertNotEquals(0, bad.code());
        assertTrue(bad.err().contains("never finish") && !bad.err().contains("Exception"), bad.err());
    }

    @Test
    void generateJsonOnTheEmbeddedModelMatchesLlamaCpp() throws Exception {
        // the embedded demo model is the internlm2-tiny-q8_0 fixture: its greedy ids must be llama.cpp's
        JsonNode exp = new ObjectMapper().readTree(fixture("internlm2-tiny-q8_0.expected.json").toFile()).get("decode");
        Result r = run("", "generate", "-q", "--prompt", "The capital of France is", "-n", "24", "--temperature", "0", "--ignore-eos", "--json");
        assertEquals(0, r.code(), r.err());
        JsonNode j = new ObjectMapper().readTree(r.out());
        assertEquals(exp.get("prompt"), j.get("prompt"));
        assertEquals(exp.get("generated"), j.get("generated"));
        assertEquals(24, j.get("steps").size());
        JsonNode top = j.get("steps").get(0).get("top");
        assertEquals(5, top.size());
        assertEquals(exp.get("steps").get(0).get("top").get(0).get("id"), top.get(0).get("id"));
        assertEquals(exp.get("steps").get(0).get("top").get(0).get("logit").asDouble(), top.get(0).get("logit").asDouble(), 1e-2);
        assertTrue(top.get(0).has("piece"));
        for (String k : new String[] {"load_ms", "prompt_ms", "prompt_tok_s", "decode_ms", "decode_tok_s"}) {
            assertTrue(j.get("timings").has(k), k);
        }
        assertTrue(j.has("text"));
    }

    @Test
    void generateStreamsTextAndPromptIdsWork() {
        Result r = run("", "generate", "-m", fixture("internlm3-tiny-q8_0.gguf").toString(), "--prompt-ids", "1,295,388", "-n", "8", "--seed", "5");
        assertEquals(0, r.code(), r.err());
        assertFalse(r.out().isBlank());
        Result again = run("", "generate", "-m", fixture("internlm3-tiny-q8_0.gguf").toString(), "--prompt-ids", "1,295,388", "-n", "8", "--seed", "5");
        assertEquals(r.out(), again.out(), "same seed, same text");
    }

    @Test
    void promptLongerThanTheContextIsAClearError() {
        String longPrompt = "The quick brown fox jumps over the lazy dog. ".repeat(40);
        Result r = run("", "generate", "-q", "--prompt", longPrompt, "--ctx", "64", "-n", "4");
        assertEquals(1, r.code());
        assertTrue(r.err().startsWith("error: the prompt has "), r.err());
        assertTrue(r.err().contains("context is 64 tokens"), r.err());
        assertFalse(r.err().contains("Exception"), r.err());
        Result r2 = run("", "generate", "-q", "--prompt", "x".repeat(5000) + " y".repeat(3000), "-n", "4");
        assertEquals(1, r2.code());
        assertTrue(r2.err().contains("model's context is 2048 tokens"), r2.err());
    }

    @Test
    void badModelFilesGiveOneLineErrors() throws Exception {
        Path junk = tmp.resolve("junk.gguf");
        Files.write(junk, "definitely not a model".getBytes());
        Result r = run("", "generate", "-m", junk.toString(), "--prompt", "hi");
        assertEquals(1, r.code());
        assertTrue(r.err().startsWith("error: " + junk + ": magic at offset 0: not a GGUF file"), r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
        Path truncated = tmp.resolve("cut.gguf");
        byte[] full = Files.readAllBytes(fixture("internlm2-tiny-q8_0.gguf"));
        Files.write(truncated, java.util.Arrays.copyOf(full, full.length / 2));
        r = run("", "info", "-m", truncated.toString());
        assertEquals(1, r.code());
        assertTrue(r.err().contains("truncated or corrupt"), r.err());
        r = run("", "info", "-m", tmp.resolve("missing.gguf").toString());
        assertTrue(r.err().contains("no such file"), r.err());
    }

    @Test
    void tokenizeShowsIdsPiecesAndRoundTrip() throws Exception {
        Result r = run("", "tokenize", "-m", fixture("internlm2-tiny-f32.gguf").toString(), "--text", "<|im_start|>user\nHello world!", "--json");
        assertEquals(0, r.code(), r.err());
        JsonNode j = new ObjectMapper().readTree(r.out());
        assertEquals(399, j.get("ids").get(0).asInt(), "special token parsed");
        assertEquals("<|im_start|>user\nHello world!", j.get("detokenized").asText());
        Result plain = run("", "tokenize", "-m", fixture("internlm2-tiny-f32.gguf").toString(), "--text", "<|im_start|>", "--no-special", "--bos", "--json");
        JsonNode p = new ObjectMapper().readTree(plain.out());
        assertEquals(1, p.get("ids").get(0).asInt(), "BOS first");
        assertTrue(p.get("count").asInt() > 2);
        Result text = run("", "tokenize", "-m", fixture("internlm2-tiny-f32.gguf").toString(), "--text", "Hello world");
        assertTrue(text.out().contains("round trip identical"), text.out());
    }

    @Test
    void infoDescribesTheModel() {
        Result r = run("", "info", "-m", fixture("internlm3-tiny-q8_0.gguf").toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("llama -> InternLM3"), r.out());
        assertTrue(r.out().contains("GQA 8:1"), r.out());
        assertTrue(r.out().contains("base 5.0E7"), r.out());
        assertTrue(r.out().contains("Q8_0"), r.out());
        assertTrue(r.out().contains("<|im_end|> = "), r.out());
    }

    @Test
    void chatRunsMultipleTurnsAndExits() {
        Result r = run("Hello!\nAnd now?\n/reset\nAgain\n/exit\n", "chat", "-q", "-n", "5", "--temperature", "0");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("(conversation cleared)"), r.out());
        Result noChatml = run("hi\n", "chat", "-q", "-m", fixture("internlm2-tiny-f32.gguf").toString(), "-n", "2", "--system", "Be brief.");
        assertEquals(0, noChatml.code(), noChatml.err());
    }

    @Test
    void helpForEveryCommand() {
        for (String c : new String[] {"generate", "chat", "tokenize", "info"}) {
            Result r = run("", c, "--help");
            assertEquals(0, r.code());
            assertTrue(r.out().contains("Usage: internlm " + c), r.out());
        }
        assertEquals(2, run("", "generate", "--bogus").code());
    }

    @Test
    void benchPrintsSpeedsAndMedianRatiosToLlamaCpp() throws Exception {
        // a harness bench JSON whose first rep ran on a cold page cache: the median ignores it, a mean would not
        Path ref = tmp.resolve("ref.json");
        Files.writeString(ref, """
                {"bench": {"reps": [
                  {"llama_perf": {"prompt_eval": {"tok_s": 20.0}, "eval": {"tok_s": 1.5}}},
                  {"llama_perf": {"prompt_eval": {"tok_s": 59.0}, "eval": {"tok_s": 16.0}}},
                  {"llama_perf": {"prompt_eval": {"tok_s": 58.0}, "eval": {"tok_s": 15.0}}}]}}""");
        double[] med = BenchCommand.llamaCpp(ref);
        assertArrayEquals(new double[] {58.0, 15.0}, med, 1e-9);
        Result r = run("", "bench", "-q", "-p", "8", "-n", "4", "-r", "3", "--devices", "cpu", "-o", "jsonl", "--llamacpp-json", ref.toString());
        assertEquals(0, r.code(), r.err());
        List<JsonNode> rows = r.out().lines().map(l -> {
            try {
                return new ObjectMapper().readTree(l);
            } catch (Exception e) {
                throw new AssertionError(l, e);
            }
        }).toList();
        assertEquals(2, rows.size(), r.out());
        JsonNode pp = rows.get(0), tg = rows.get(1);
        assertEquals("pp8", pp.get("test").asText());
        assertEquals("tg4", tg.get("test").asText());
        assertEquals(3, tg.get("samples_ts").size());
        assertTrue(tg.get("avg_ts").asDouble() > 0);
        assertTrue(tg.get("roofline_ts").asDouble() > 0, "decode rows carry the roofline");
        assertTrue(pp.get("roofline_ts").isNull(), "prompt rows do not");
        double[] s = new double[3];
        for (int i = 0; i < 3; i++) {
            s[i] = tg.get("samples_ts").get(i).asDouble();
        }
        java.util.Arrays.sort(s);
        assertTrue(r.err().contains(String.format(java.util.Locale.ROOT, "cpu tg4: %.2f tok/s, llama.cpp 15.00 tok/s (medians): %.2fx", s[1], s[1] / 15.0)), r.err());
        Result bad = run("", "bench", "-q", "-r", "0");
        assertNotEquals(0, bad.code());
        assertTrue(bad.err().contains("at least 1"), bad.err());
    }
}
