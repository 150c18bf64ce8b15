package internlm.engine.bench;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ReportTest {

    private static BenchRow with(BenchRow r, String device, String backend, String name, int prompt, int gen, int depth, int seqs, double ts, Double fraction) {
        return new BenchRow(r.buildCommit(), r.testTime(), r.jdk(), r.tornadoVersion(), r.modelFilename(), r.modelType(), r.modelFamily(), r.modelShape(),
                r.weightType(), r.modelSize(), r.modelNParams(), r.synthetic(), device, backend, name, r.deviceDriver(), r.deviceVersion(), r.nThreads(),
                r.typeK(), r.typeV(), BenchRow.testName(prompt, gen, depth, seqs), prompt, gen, depth, seqs, "ok", "", r.loadMs(), 1e9, 1e7, ts, 0.5, ts,
                new double[] {1e9}, new double[] {ts}, 100.0, "probe", gen > 0 ? 1e9 : null, fraction == null ? null : ts / fraction, fraction);
    }

    static List<BenchRow> rows() {
        BenchRow b = BenchFormatTest.ok();
        List<BenchRow> rows = new ArrayList<>();
        for (String[] d : new String[][] {{"cpu", "CPU", "AMD EPYC"}, {"0:0", "OpenCL", "pthread-AMD EPYC"}}) {
            double k = d[0].equals("cpu") ? 1 : 0.1;
            for (int depth : new int[] {0, 64}) {
                for (int seqs : new int[] {1, 2}) {
                    rows.add(with(b, d[0], d[1], d[2], 16, 0, depth, seqs, k * (80 - depth / 8.0) * seqs, null));
                    rows.add(with(b, d[0], d[1], d[2], 0, 8, depth, seqs, k * (20 - depth / 16.0) * seqs, 0.4 * k));
                }
            }
        }
        rows.add(BenchFormatTest.tooLarge());
        return rows;
    }

    static KernelRow kernel(String device, double gbs, String check) {
        return new KernelRow("abc", "2026-12-04T20:00:00Z", "5.2.0-jdk25", device, "OpenCL", "PoCL", "internlm2.5-1.8b", "matvec", "Q8_0 wg64", "2048x2048",
                4_456_448, 8_388_608, 5, 100, 2, 99, gbs, 83.9, 30.0, gbs / 30.0, 1e-5, check, "wall");
    }

    @Test
    void htmlAndMarkdownReportsWithChartsAndAScreenshot(@TempDir Path tmp) throws Exception {
        Path results = tmp.resolve("results.jsonl");
        StringWriter w = new StringWriter();
        BenchFormat.JSONL.write(rows(), w);
        StringBuilder all = new StringBuilder(w.toString());
        for (KernelRow k : List.of(kernel("0:0", 25.5, "ok"), kernel("0:1", 12.5, "ok"), kernel("0:2", 1, "FAILED"))) {
            all.append(BenchFormat.JSON_MAPPER.writeValueAsString(k)).append('\n');
        }
        Files.writeString(results, all);
        Report r = new Report().add(results);
        assertEquals(17, r.rows().size());
        assertEquals(3, r.kernels().size());
        List<String> charts = r.charts().stream().map(Report.Chart::name).toList();
        assertEquals(List.of("tg-per-device", "pp-per-device", "roofline", "vs-depth", "vs-sequences", "kernels"), charts);

        Path html = tmp.resolve("report.html");
        r.write(html);
        String page = Files.readString(html);
        assertTrue(page.startsWith("<!DOCTYPE html>"));
        assertEquals(6, page.split("<svg ", -1).length - 1, "one inline SVG per chart");
        assertFalse(page.contains("<script") || page.contains("src=\"http") || page.contains("href=\"http"), "self-contained");
        assertTrue(page.contains("too_large: needs 41 GiB"), "rows that did not run are listed with the reason");
        assertTrue(page.contains("FAILED"));

        Path md = tmp.resolve("report.md");
        r.write(md);
        String text = Files.readString(md);
        for (String c : charts) {
            Path svg = tmp.resolve("report-" + c + ".svg");
            assertTrue(Files.isRegularFile(svg), svg.toString());
            assertTrue(text.contains("](report-" + c + ".svg)"));
            assertTrue(Files.readString(svg).startsWith("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        }
        assertEquals(BenchFormat.Markdown.COLUMNS.size() > 0, text.contains("| model | device |"));
        screenshot(html);
    }

    /** Renders the page in headless Chromium (Debian package chromium) when it is installed, and checks the image. */
    private static void screenshot(Path html) throws Exception {
        String chromium = null;
        for (String c : new String[] {"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"}) {
            if (Files.isExecutable(Path.of(c))) {
                chromium = c;
            }
        }
        Assumptions.assumeTrue(chromium != null, "headless Chromium not installed (apt-get install chromium)");
        Path png = Path.of("target", "report-screenshot.png").toAbsolutePath();
        Files.createDirectories(png.getParent());
        Files.deleteIfExists(png);
        Process p = new ProcessBuilder(chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1400,2400",
                "--screenshot=" + png, html.toUri().toString()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "chromium did not finish");
        assertTrue(Files.isRegularFile(png), "no screenshot: " + out);
        BufferedImage img = ImageIO.read(png.toFile());
        assertEquals(1400, img.getWidth());
        long coloured = 0, total = 0;
        for (int y = 0; y < img.getHeight(); y += 4) {
            for (int x = 0; x < img.getWidth(); x += 4) {
                int rgb = img.getRGB(x, y) & 0xFFFFFF;
                int r = rgb >> 16, g = (rgb >> 8) & 255, b = rgb & 255;
                coloured += Math.max(r, Math.max(g, b)) - Math.min(r, Math.min(g, b)) > 60 ? 1 : 0;
                total++;
            }
        }
        // the bars and lines are coloured; text and grid are grey: a page without rendered charts has none
        assertTrue(coloured > total / 100, "rendered charts cover " + coloured + " of " + total + " sampled pixels");
    }
}
