package internlm.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The bench matrix end to end on the CPU with a cut-down synthetic model, the report made from its jsonl, bad input. */
class BenchCliTest {
    @TempDir
    Path tmp;

    record Result(int code, String out, String err) {}

    static Result run(String... args) {
        PrintStream oldOut = System.out, oldErr = System.err;
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        try {
            System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
            int code = Main.run(args);
            return new Result(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
        } finally {
            System.setOut(oldOut);
            System.setErr(oldErr);
        }
    }

    @Test
    void matrixOnASyntheticModelThenReport() throws Exception {
        Path results = tmp.resolve("r.jsonl");
        Result r = run("bench", "-q", "--synthetic", "internlm2.5-1.8b:q4_0", "--synthetic-layers", "1", "-p", "4", "-n", "2", "-d", "0,3", "-b", "1,2",
                "-r", "2", "--devices", "cpu,7:7", "--probe-mib", "64", "-o", "jsonl", "--out", results.toString());
        assertEquals(0, r.code(), r.err());
        List<JsonNode> rows = new ArrayList<>();
        for (String l : Files.readAllLines(results)) {
            rows.add(new ObjectMapper().readTree(l));
        }
        assertEquals(16, rows.size(), "2 tests x 2 depths x 2 sequence counts x 2 devices");
        List<String> tests = new ArrayList<>();
        for (JsonNode j : rows.subList(0, 8)) {
            assertEquals("cpu", j.get("device").asText());
            assertEquals("ok", j.get("status").asText(), j.toString());
            assertTrue(j.get("synthetic").asBoolean());
            assertEquals("synthetic internlm2.5-1.8b:q4_0 (1 of 24 layers)", j.get("model_filename").asText());
            assertEquals("Q4_0", j.get("weight_type").asText());
            assertEquals(2, j.get("samples_ns").size());
            assertTrue(j.get("bandwidth_gbs").asDouble() > 0);
            tests.add(j.get("test").asText());
        }
        assertEquals(List.of("pp4", "tg2", "pp4 ×2", "tg2 ×2", "pp4 @ d3", "tg2 @ d3", "pp4 @ d3 ×2", "tg2 @ d3 ×2"), tests);
        for (JsonNode j : rows.subList(8, 16)) {
            assertEquals("7:7", j.get("device").asText());
            assertEquals("error", j.get("status").asText(), "a device that is not there is reported, the others still run");
        }
        Path html = tmp.resolve("report.html");
        Result rep = run("bench", "report", results.toString(), "-o", html.toString());
        assertEquals(0, rep.code(), rep.err());
        assertTrue(Files.readString(html).contains("<svg"));
        Path md = tmp.resolve("report.md");
        assertEquals(0, run("bench", "report", results.toString(), "-o", md.toString()).code());
        assertTrue(Files.isRegularFile(tmp.resolve("report-tg-per-device.svg")));
    }

    /** The CPU backend with its cache in half precision: decode at a depth and two sequences run, rows say f16. */
    @Test
    void halfPrecisionKvCacheOnTheCpu() throws Exception {
        Path results = tmp.resolve("kv.jsonl");
        Result r = run("bench", "-q", "--synthetic", "internlm2.5-1.8b:q8_0", "--synthetic-layers", "1", "-p", "4", "-n", "2", "-d", "20", "-b", "1,2",
                "-r", "1", "--devices", "cpu", "--kv-cache", "f16", "--probe-mib", "64", "-o", "jsonl", "--out", results.toString());
        assertEquals(0, r.code(), r.err());
        List<String> lines = Files.readAllLines(results);
        assertEquals(4, lines.size());
        for (String l : lines) {
            JsonNode j = new ObjectMapper().readTree(l);
            assertEquals("ok", j.get("status").asText(), j.toString());
            assertEquals("f16", j.get("type_k").asText());
            assertEquals("f16", j.get("type_v").asText());
            assertTrue(j.get("avg_ts").asDouble() > 0);
        }
    }

    @Test
    void markdownIsTheDefault() {
        Result r = run("bench", "-q", "-p", "4", "-n", "2", "-r", "1", "--devices", "cpu", "--probe-mib", "64");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().startsWith("| model | size | params | backend | device |"), r.out());
        assertEquals(4, r.out().lines().count(), r.out());
    }

    @Test
    void badInputIsExplained() {
        Result a = run("bench", "-q", "--synthetic", "internlm9-1b");
        assertNotEquals(0, a.code());
        assertTrue(a.err().contains("unknown synthetic model"), a.err());
        Result b = run("bench", "-q", "-o", "xml");
        assertTrue(b.err().contains("md, csv, json or jsonl"), b.err());
        Result c = run("bench", "-q", "-p", "4,x");
        assertTrue(c.err().contains("comma-separated"), c.err());
        Result d = run("bench", "report", tmp.resolve("missing.jsonl").toString(), "-o", tmp.resolve("x.html").toString());
        assertTrue(d.err().contains("no such results file"), d.err());
        Result e = run("bench", "-q", "-b", "0");
        assertTrue(e.err().contains("-b values must be at least 1"), e.err());
        for (Result x : List.of(b, c, d, e)) {
            assertNotEquals(0, x.code());
            assertTrue(!x.err().contains("Exception"), x.err());
        }
    }
}
