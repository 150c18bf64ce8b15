package internlm.cli;

import internlm.engine.Engine;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/** Options shared by every command that loads a model. */
final class ModelOptions {
    /** Name of the model built into the jar, used when --model is not given. */
    static final String EMBEDDED = "demo-internlm2-tiny-q8_0.gguf";

    @Option(names = {"-m", "--model"}, paramLabel = "MODEL",
            description = "GGUF model file. Default: the demo model built into the jar (a 0.2 MB synthetic InternLM2-shaped Q8_0 model with random weights: it runs the whole pipeline, its text is noise).")
    Path model;

    @Option(names = "--backend", paramLabel = "NAME", defaultValue = "auto",
            description = "cpu, tornado, or auto (tornado when running under TornadoVM, else cpu). Default: ${DEFAULT-VALUE}.")
    String backend;

    @Option(names = {"-t", "--threads"}, paramLabel = "N", defaultValue = "0", description = "CPU threads (default: all cores).")
    int threads;

    @Option(names = "--device", paramLabel = "B:D", description = "TornadoVM backend:device index (see 'devices').")
    String device;

    @Option(names = {"-c", "--ctx"}, paramLabel = "N", defaultValue = "0",
            description = "Context size in tokens (default: the model's window, at most 4096).")
    int ctx;

    @Option(names = "--exact-activations",
            description = "Multiply quantized weights with exact float activations instead of rounding them to Q8_0 first as llama.cpp does.")
    boolean exactActivations;

    @Option(names = {"-q", "--quiet"}, description = "No progress or load messages on stderr.")
    boolean quiet;

    Engine load() {
        Path path = model != null ? model : embedded();
        return Engine.load(path, new Engine.Options(backend, threads, device, !exactActivations), new ProgressBar(System.err, quiet));
    }

    int contextFor(Engine engine) {
        int c = ctx > 0 ? ctx : engine.defaultContext();
        if (c > engine.maxContext()) {
            throw new IllegalArgumentException("--ctx " + c + " exceeds the model's trained window of " + engine.config().contextLength()
                    + " tokens (it has no dynamic RoPE scaling that would allow more)");
        }
        return c;
    }

    /** The name a server announces for the model: the file (or directory) name without its extension. */
    String modelId() {
        if (model == null) {
            return EMBEDDED.substring(0, EMBEDDED.length() - ".gguf".length());
        }
        Path name = model.toAbsolutePath().normalize().getFileName();
        String n = name == null ? model.toString() : name.toString();
        return n.endsWith(".gguf") ? n.substring(0, n.length() - 5) : n;
    }

    String modelName() {
        return model != null ? model.toString() : "(embedded demo model " + EMBEDDED + ")";
    }

    /** Extracts the embedded demo model to a temporary file (deleted on exit). */
    static Path embedded() {
        try (InputStream in = ModelOptions.class.getResourceAsStream("/models/" + EMBEDDED)) {
            if (in == null) {
                throw new IllegalStateException("the embedded demo model is missing from the jar");
            }
            Path tmp = Files.createTempFile("internlm-demo-", ".gguf");
            tmp.toFile().deleteOnExit();
            Files.copy(in, tmp, StandardCopyOption.REPLACE_EXISTING);
            return tmp;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot extract the embedded demo model: " + e.getMessage(), e);
        }
    }
}
