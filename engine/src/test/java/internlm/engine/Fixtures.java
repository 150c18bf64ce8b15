package internlm.engine;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/** The llama.cpp reference fixtures: the repository's testdata plus any directory named by INTERNLM_EXTRA_FIXTURES. */
public final class Fixtures {
    private Fixtures() {}

    public static Path testdata() {
        String p = System.getProperty("internlm.testdata");
        return p != null ? Path.of(p) : Path.of("../testdata");
    }

    public static Path fixture(String name) {
        return testdata().resolve("fixtures").resolve(name);
    }

    /** Every NAME.gguf that has a NAME.expected.json beside it. */
    public static List<Path> all() throws IOException {
        List<Path> dirs = new ArrayList<>(List.of(testdata().resolve("fixtures")));
        String extra = System.getProperty("internlm.extraFixtures");
        if (extra == null || extra.isBlank() || extra.startsWith("${")) {
            extra = System.getenv("INTERNLM_EXTRA_FIXTURES");
        }
        if (extra != null && !extra.isBlank()) {
            dirs.add(Path.of(extra));
        }
        List<Path> out = new ArrayList<>();
        for (Path d : dirs) {
            try (Stream<Path> s = Files.list(d)) {
                s.filter(p -> p.toString().endsWith(".gguf"))
                        .filter(p -> Files.exists(expected(p)))
                        .sorted()
                        .forEach(out::add);
            }
        }
        return out;
    }

    public static Path expected(Path gguf) {
        String n = gguf.getFileName().toString();
        return gguf.resolveSibling(n.substring(0, n.length() - 5) + ".expected.json");
    }
}
