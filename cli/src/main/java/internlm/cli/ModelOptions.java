package internlm.cli;

import internlm.engine.Engine;
import internlm.loader.gguf.GgmlType;
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
            description = "GGUF model file, or a Hugging Face model directory (config.json, *.safetensors, tokenizer.model). Default: the demo model built into the jar (a 0.2 MB synthetic InternLM2-shaped Q8_0 model with random weights: it runs the whole pipeline, its text is noise).")
    Path model;

    @Option(names = "--backend", paramLabel = "NAME", defaultValue = "auto",
            description = "cpu, tornado, or auto (tornado when running under TornadoVM, else cpu). Default: ${DEFAULT-VALUE}.")
    String backend;

    @Option(names = {"-t", "--threads"}, paramLabel = "N", defaultValue = "0", description = "CPU threads (default: all cores).")
    int threads;

    @Option(names = "--device", paramLabel = "B:D", description = "TornadoVM backend:device index (see 'devices').")
    String device;

    @Option(names = {"-c", "--ctx"}, paramLabel = "N", defaultValue = "0",
            description = "Context size in tokens (default: the model's window, at most 4096). Beyond the trained window only for models with dynamic NTK RoPE scaling.")
    int ctx;

    @Option(names = "--exact-activations",
            description = "Multiply quantized weights with exact float activations instead of rounding them to Q8_0 first as llama.cpp does.")
    boolean exactActivations;

    @Option(names = "--quantize", paramLabel = "TYPE",
            description = "Convert float weight matrices to TYPE at load: q8_0, q4_0, f16 or f32 (rows that are not whole 32-value blocks become f16). Default: run the weights as stored.")
    String quantize;

    @Option(names = {"-q", "--quiet"}, description = "No progress or load messages on stderr.")
    boolean quiet;

    @Option(names = "--kv-cache", paramLabel = "TYPE", defaultValue = "f32", description = "KV cache type: f32 or f16 (half the memory; attention reads half the bytes; default: ${DEFAULT-VALUE}).")
    String kvCache;

    @Option(names = "--profile", description = "TornadoVM backend: time the kernels and print where the time goes at the end.")
    boolean profile;

    @Option(names = "--no-cuda-graphs", description = "TornadoVM backend on PTX: launch the kernels one by one instead of replaying CUDA graphs "
            + "(used by default when the TornadoVM runtime has them; same as -Dinternlm.tornado.cudaGraphs=false).")
    void noCudaGraphs(boolean off) {
        if (off) {
            System.setProperty("internlm.tornado.cudaGraphs", "false");
        }
    }

    Engine load() {
        return load(1);
    }

    /** Loads the model for {@code sequences} sequences at once (the server's --parallel: the GPU backend's KV cache slots). */
    Engine load(int sequences) {
        Path path = model != null ? model : embedded();
        if (!kvCache.equals("f32") && !kvCache.equals("f16")) {
            throw new IllegalArgumentException("--kv-cache must be f32 or f16");
        }
        if (ctx < 0) {
            throw new IllegalArgumentException("--ctx must be positive");
        }
        Engine e = Engine.load(path, new Engine.Options(backend, threads, device, !exactActivations, ctx, kvCache.equals("f16"), profile, quantizeType(), sequences),
                new ProgressBar(System.err, quiet));
        if (profile) {
            Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                String r = e.backend().report();
                if (!r.isEmpty()) {
                    System.err.print(r);
                }
            }));
        }
        return e;
    }

    /** The --quantize type, or null. */
    GgmlType quantizeType() {
        return quantize == null ? null : weightType(quantize, "--quantize", false);
    }

    /** A weight type named on the command line (f32, f16, bf16 when allowed, q8_0, q4_0). */
    static GgmlType weightType(String name, String option, boolean allowBf16) {
        GgmlType t = switch (name.toLowerCase(java.util.Locale.ROOT)) {
            case "f32" -> GgmlType.F32;
            case "f16" -> GgmlType.F16;
            case "bf16" -> allowBf16 ? GgmlType.BF16 : null;
            case "q8_0" -> GgmlType.Q8_0;
            case "q4_0" -> GgmlType.Q4_0;
            default -> null;
        };
        if (t == null) {
            throw new IllegalArgumentException(option + " " + name + " is not supported (" + (allowBf16 ? "f32, f16, bf16, q8_0, q4_0" : "q8_0, q4_0, f16, f32") + ")");
        }
        return t;
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
