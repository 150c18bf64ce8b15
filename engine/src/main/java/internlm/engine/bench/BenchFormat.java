package internlm.engine.bench;

import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.databind.MappingIterator;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.dataformat.csv.CsvMapper;
import com.fasterxml.jackson.dataformat.csv.CsvSchema;

import java.io.IOException;
import java.io.Writer;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The output formats of {@code bench}: {@code md} (a table like llama-bench's), {@code csv}, {@code json} (one
 * array) and {@code jsonl} (one object per line, written as rows finish, what {@code bench report} reads). Every
 * format can be read back.
 */
public enum BenchFormat {
    MD, CSV, JSON, JSONL;

    static final ObjectMapper JSON_MAPPER = new ObjectMapper()
            .setPropertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
            .disable(JsonGenerator.Feature.AUTO_CLOSE_TARGET);
    private static final CsvMapper CSV_MAPPER = csvMapper();

    private static CsvMapper csvMapper() {
        // columns in the record's order (CsvMapper sorts them alphabetically by default)
        return CsvMapper.builder().disable(com.fasterxml.jackson.databind.MapperFeature.SORT_PROPERTIES_ALPHABETICALLY)
                .propertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE).disable(JsonGenerator.Feature.AUTO_CLOSE_TARGET).build();
    }

    private static CsvSchema schema() {
        return CSV_MAPPER.schemaFor(BenchRow.class).withHeader().withArrayElementSeparator(";");
    }

    public static BenchFormat parse(String name) {
        for (BenchFormat f : values()) {
            if (f.name().equalsIgnoreCase(name)) {
                return f;
            }
        }
        throw new IllegalArgumentException("-o must be md, csv, json or jsonl, not '" + name + "'");
    }

    /** Streaming writer: rows go out as they are added when the format allows it (jsonl, csv, md). */
    public Sink open(Writer out) {
        return new Sink(this, out);
    }

    /** Writes all rows at once. */
    public void write(List<BenchRow> rows, Writer out) throws IOException {
        try (Sink s = open(out)) {
            for (BenchRow r : rows) {
                s.add(r);
            }
        }
    }

    public static final class Sink implements AutoCloseable {
        private final BenchFormat format;
        private final Writer out;
        private final List<BenchRow> held = new ArrayList<>();
        private boolean first = true;

        Sink(BenchFormat format, Writer out) {
            this.format = format;
            this.out = out;
        }

        public void add(BenchRow r) throws IOException {
            switch (format) {
                case JSONL -> out.write(JSON_MAPPER.writeValueAsString(r) + "\n");
                case CSV -> {
                    CsvSchema s = first ? schema() : schema().withoutHeader();
                    out.write(CSV_MAPPER.writer(s).writeValueAsString(r));
                }
                case MD -> {
                    if (first) {
                        out.write(Markdown.header());
                    }
                    out.write(Markdown.row(r));
                }
                case JSON -> held.add(r);
            }
            first = false;
            out.flush();
        }

        @Override
        public void close() throws IOException {
            if (format == JSON) {
                out.write(JSON_MAPPER.writerWithDefaultPrettyPrinter().with(SerializationFeature.INDENT_OUTPUT).writeValueAsString(held) + "\n");
            }
            out.flush();
        }
    }

    /** Writes kernel rows as JSON lines (what {@code bench report} reads next to the bench rows). */
    public static final class KernelSink implements AutoCloseable {
        private final Writer out;

        public KernelSink(Writer out) {
            this.out = out;
        }

        public void add(KernelRow r) throws IOException {
            out.write(JSON_MAPPER.writeValueAsString(r) + "\n");
            out.flush();
        }

        @Override
        public void close() throws IOException {
            out.flush();
        }
    }

    /** Reads rows written in this format (md gives the table's cells, see {@link Markdown#parse}). */
    public List<BenchRow> read(String text) throws IOException {
        return switch (this) {
            case JSON -> List.of(JSON_MAPPER.readValue(text, BenchRow[].class));
            case JSONL -> {
                List<BenchRow> rows = new ArrayList<>();
                for (String line : text.split("\n")) {
                    if (!line.isBlank()) {
                        rows.add(JSON_MAPPER.readValue(line, BenchRow.class));
                    }
                }
                yield rows;
            }
            case CSV -> {
                try (MappingIterator<BenchRow> it = CSV_MAPPER.readerFor(BenchRow.class).with(schema()).readValues(text)) {
                    yield it.readAll();
                }
            }
            case MD -> throw new IllegalArgumentException("a Markdown table is read with Markdown.parse (it keeps only the shown columns)");
        };
    }

    /** llama-bench-like Markdown table. */
    public static final class Markdown {
        private Markdown() {}

        public static final List<String> COLUMNS = List.of("model", "size", "params", "backend", "device", "threads", "test", "t/s", "median t/s",
                "roofline t/s", "of roofline");

        static String header() {
            return "| " + String.join(" | ", COLUMNS) + " |\n|" + "---|".repeat(COLUMNS.size()) + "\n";
        }

        static String row(BenchRow r) {
            String speed = r.ok() ? String.format(Locale.ROOT, "%.2f ± %.2f", r.avgTs(), r.stddevTs()) : r.status() + ": " + r.note().replace('|', '/');
            List<String> cells = List.of(
                    r.modelType() + (r.synthetic() ? " (synthetic)" : ""),
                    r.modelSize() >= 1L << 30 ? String.format(Locale.ROOT, "%.2f GiB", r.modelSize() / 1073741824.0)
                            : String.format(Locale.ROOT, "%.2f MiB", r.modelSize() / 1048576.0),
                    r.modelNParams() >= 100_000_000 ? String.format(Locale.ROOT, "%.2f B", r.modelNParams() / 1e9)
                            : String.format(Locale.ROOT, "%.2f M", r.modelNParams() / 1e6),
                    r.backends(),
                    r.gpuInfo(),
                    Integer.toString(r.nThreads()),
                    r.test(),
                    speed,
                    r.ok() ? String.format(Locale.ROOT, "%.2f", r.medianTs()) : "",
                    r.rooflineTs() != null ? String.format(Locale.ROOT, "%.2f", r.rooflineTs()) : "",
                    r.rooflineFraction() != null ? String.format(Locale.ROOT, "%.0f %%", 100 * r.rooflineFraction()) : "");
            return "| " + String.join(" | ", cells) + " |\n";
        }

        /** The cells of a Markdown table written by {@code bench -o md}, one list per row (header and rule skipped). */
        public static List<List<String>> parse(String text) {
            List<List<String>> rows = new ArrayList<>();
            List<String> lines = text.lines().filter(l -> l.startsWith("|")).toList();
            for (int i = 0; i < lines.size(); i++) {
                String l = lines.get(i).trim();
                List<String> cells = new ArrayList<>();
                for (String c : l.substring(1, l.length() - 1).split("\\|", -1)) {
                    cells.add(c.trim());
                }
                if (i == 0) {
                    if (!cells.equals(COLUMNS)) {
                        throw new IllegalArgumentException("not a bench table: header " + cells);
                    }
                } else if (!cells.stream().allMatch(c -> c.matches("-+"))) {
                    rows.add(cells);
                }
            }
            return rows;
        }
    }
}
