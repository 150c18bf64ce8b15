import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;

/**
 * Build step (run with the JDK's source launcher): clears the "preview features" minor version (0xFFFF) of every
 * class file under a directory, so that JDK 25 can compile against and load the TornadoVM API classes that
 * gpu-llama3 ships compiled for JDK 21 with --enable-preview.
 */
public class ClearPreviewBit {
    public static void main(String[] args) throws IOException {
        if (args.length != 1 || !Files.isDirectory(Path.of(args[0]))) {
            throw new IllegalArgumentException("usage: ClearPreviewBit <classes-dir>");
        }
        AtomicInteger cleared = new AtomicInteger();
        try (Stream<Path> files = Files.walk(Path.of(args[0]))) {
            files.filter(p -> p.toString().endsWith(".class")).forEach(p -> {
                try {
                    byte[] b = Files.readAllBytes(p);
                    if (b.length > 8 && (b[4] & 0xff) == 0xff && (b[5] & 0xff) == 0xff) {
                        b[4] = 0;
                        b[5] = 0;
                        Files.write(p, b);
                        cleared.incrementAndGet();
                    }
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
        }
        System.out.println("ClearPreviewBit: cleared the preview bit of " + cleared.get() + " class files");
    }
}
