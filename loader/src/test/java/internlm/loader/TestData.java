package internlm.loader;

import java.nio.file.Files;
import java.nio.file.Path;

/** Locates the repository's testdata directory (set by the build as the system property internlm.testdata). */
public final class TestData {
    private TestData() {}

    public static Path dir() {
        String p = System.getProperty("internlm.testdata");
        Path d = p != null ? Path.of(p) : Path.of("../testdata");
        if (!Files.isDirectory(d)) {
            throw new IllegalStateException("testdata directory not found: " + d.toAbsolutePath());
        }
        return d;
    }

    public static Path fixture(String name) {
        return dir().resolve("fixtures").resolve(name);
    }
}
