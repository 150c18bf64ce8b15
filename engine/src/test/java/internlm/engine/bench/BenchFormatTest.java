package internlm.engine.bench;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;

import java.io.StringWriter;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BenchFormatTest {

    static BenchRow ok() {
        return new BenchRow("abc1234567", "2026-12-04T20:00:00Z", "25+36", "5.2.0-jdk25", "synthetic internlm2.5-7b:q8_0", "internlm2 7.7B Q8_0",
                "InternLM2 / 2.5", "dim=4096 layers=32", "Q8_0", 8_200_000_000L, 7_740_000_000L, true, "0:0", "OpenCL", "NVIDIA H200", "NVIDIA CUDA 580.1",
                "OpenCL C 3.0", 1, "f32", "f32", "tg128 @ d4096 ×4", 0, 128, 4096, 4, "ok", "", 12345, 2.5e9, 1e7, 204.8, 0.8, 204.5,
                new double[] {2.49e9, 2.51e9}, new double[] {205.6, 204.0}, 4100.5, "TornadoVM streaming-read kernel", 2.1e9, 1950.0, 0.105);
    }

    static BenchRow tooLarge() {
        return new BenchRow("abc1234567", "2026-12-04T20:00:00Z", "25+36", "none", "m.gguf", "llama 20.1B F16", "InternLM v1", "dim=5120", "F16", 40_000_000_000L,
                20_090_000_000L, false, "cpu", "CPU", "AMD EPYC, \"quoted\"", "", "Vector API 512-bit", 2, "f32", "f32", "pp512", 512, 0, 0, 1, "too_large",
                "needs 41 GiB | has 16", 0, 0, 0, 0, 0, 0, new double[0], new double[0], null, "", null, null, null);
    }

    private static String write(BenchFormat f, List<BenchRow> rows) throws Exception {
        StringWriter w = new StringWriter();
        f.write(rows, w);
        return w.toString();
    }

    private static JsonNode tree(BenchRow r) {
        return BenchFormat.JSON_MAPPER.valueToTree(r);
    }

    @Test
    void jsonJsonlAndCsvReadBackToTheSameRows() throws Exception {
        List<BenchRow> rows = List.of(ok(), tooLarge());
        for (BenchFormat f : List.of(BenchFormat.JSON, BenchFormat.JSONL, BenchFormat.CSV)) {
            String text = write(f, rows);
            List<BenchRow> back = f.read(text);
            assertEquals(2, back.size(), f + ":\n" + text);
            for (int i = 0; i < 2; i++) {
                assertEquals(tree(rows.get(i)), tree(back.get(i)), f + " row " + i + ":\n" + text);
            }
        }
    }

    @Test
    void llamaBenchFieldNames() throws Exception {
        JsonNode j = BenchFormat.JSON_MAPPER.readTree(write(BenchFormat.JSONL, List.of(ok())).trim());
        for (String k : List.of("build_commit", "model_filename", "model_type", "model_size", "model_n_params", "backends", "gpu_info", "n_threads",
                "type_k", "type_v", "n_prompt", "n_gen", "n_depth", "test_time", "avg_ns", "stddev_ns", "avg_ts", "stddev_ts", "samples_ns", "samples_ts")) {
            assertTrue(j.has(k), k + " in " + j);
        }
        assertEquals(204.8, j.get("avg_ts").asDouble());
        assertEquals(2, j.get("samples_ts").size());
        assertEquals(4, j.get("n_seq").asInt());
        assertEquals(0.105, j.get("roofline_fraction").asDouble());
        assertEquals("build_commit", write(BenchFormat.CSV, List.of(ok())).split(",")[0], "CSV header");
    }

    @Test
    void markdownTableParsesBack() throws Exception {
        String md = write(BenchFormat.MD, List.of(ok(), tooLarge()));
        List<List<String>> cells = BenchFormat.Markdown.parse(md);
        assertEquals(2, cells.size(), md);
        List<String> a = cells.get(0), b = cells.get(1);
        assertEquals(BenchFormat.Markdown.COLUMNS.size(), a.size());
        assertEquals("internlm2 7.7B Q8_0 (synthetic)", a.get(0));
        assertEquals("7.64 GiB", a.get(1));
        assertEquals("7.74 B", a.get(2));
        assertEquals("OpenCL", a.get(3));
        assertEquals("NVIDIA H200", a.get(4));
        assertEquals("tg128 @ d4096 ×4", a.get(6));
        assertEquals("204.80 ± 0.80", a.get(7));
        assertEquals("204.50", a.get(8));
        assertEquals("1950.00", a.get(9));
        assertEquals("11 %", a.get(10));
        assertEquals(BenchFormat.Markdown.COLUMNS.size(), b.size(), "a '|' in a note must not add a column");
        assertTrue(b.get(7).startsWith("too_large: needs 41 GiB / has 16"), b.get(7));
        assertEquals("", b.get(9));
    }

    @Test
    void unknownFormatIsExplained() {
        IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> BenchFormat.parse("xml"));
        assertTrue(e.getMessage().contains("jsonl"));
    }
}
