package internlm.engine;

import internlm.engine.cpu.CpuBackend;
import internlm.engine.generate.Session;
import internlm.engine.model.Backend;
import internlm.engine.tokenizer.Tokenizer;
import internlm.engine.tornado.TornadoBackend;
import internlm.engine.tornado.TornadoBackends;
import internlm.engine.tornado.TornadoSupport;
import internlm.loader.LoadedModel;
import internlm.loader.ModelConfig;
import internlm.loader.ModelFormatException;
import internlm.loader.Progress;
import internlm.loader.TensorData;
import internlm.loader.quant.Quants;
import internlm.loader.gguf.GgmlType;
import internlm.loader.gguf.GgufModelLoader;
import internlm.loader.hf.HfModelLoader;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashSet;
import java.util.Set;

/**
 * A loaded model ready to generate: description, tokenizer, stop tokens and a backend. Create sessions (one per
 * conversation / request) with {@link #newSession(int)}.
 */
public final class Engine implements AutoCloseable {
    private final LoadedModel model;
    private final Tokenizer tokenizer;
    private final Backend backend;
    private final int[] stopTokens;
    private final long loadMillis;
    private final float[] rewardHead;

    /**
     * How to load. {@code backend}: "cpu", "tornado" or "auto" (TornadoVM when this JVM runs under it, else the CPU);
     * {@code threads} ≤ 0 means all cores; {@code device} "B:D" picks a TornadoVM device; {@code roundActivations}
     * rounds inputs of quantized matrices to Q8_0 like llama.cpp (see ActivationRounding); {@code context} is the
     * context the GPU backend sizes its KV cache for (0 = {@link #defaultContext()}); {@code kvCacheF16} keeps the
     * KV cache in half precision (either backend); {@code profile} records TornadoVM kernel times; {@code quantize} converts float
     * weight matrices to that type at load (null: keep them as stored); {@code sequences} is how many sequences the
     * GPU backend holds KV caches for at once (the server's --parallel; the CPU backend's caches grow on demand).
     */
    public record Options(String backend, int threads, String device, boolean roundActivations, int context, boolean kvCacheF16,
                          boolean profile, GgmlType quantize, int sequences) {
        public Options(String backend, int threads, String device, boolean roundActivations) {
            this(backend, threads, device, roundActivations, 0, false, false, null, 1);
        }

        public Options(String backend, int threads, String device, boolean roundActivations, int context, boolean kvCacheF16,
                       boolean profile, GgmlType quantize) {
            this(backend, threads, device, roundActivations, context, kvCacheF16, profile, quantize, 1);
        }

        public static Options cpu() {
            return new Options("cpu", 0, null, true);
        }
    }

    private Engine(LoadedModel model, Backend backend, long loadMillis) {
        this.model = model;
        this.tokenizer = new Tokenizer(model.vocab());
        this.backend = backend;
        this.stopTokens = resolveStops(model, tokenizer);
        this.loadMillis = loadMillis;
        this.rewardHead = rewardHead(model);
    }

    /**
     * An engine over a model that is already loaded and a backend prepared for it (for backends made outside
     * {@link #load}); the engine owns both and closes them.
     */
    public static Engine create(LoadedModel model, Backend backend) {
        return new Engine(model, backend, 0);
    }

    /** InternLM2-Reward's scalar head {@code v_head.weight} (ggml dims {dim, 1}) as floats, or null. */
    private static float[] rewardHead(LoadedModel model) {
        TensorData t = model.optionalTensor("v_head.weight");
        if (t == null) {
            return null;
        }
        int dim = model.config().dim();
        if (t.rowLength() != dim || t.rows() != 1) {
            throw new ModelFormatException(model.source(), "tensor 'v_head.weight' has dims " + t.shapeString()
                    + ", a reward head needs [" + dim + ", 1] (hidden size → one score)");
        }
        float[] v = new float[dim];
        Quants.dequantize(t.type(), t.data(), 0, v, 0, dim);
        return v;
    }

    /** Loads a model (GGUF file or HF directory) and prepares the chosen backend. */
    public static Engine load(Path path, Options options, Progress progress) {
        long t0 = System.nanoTime();
        LoadedModel model = loadModel(path, options.quantize(), progress);
        try {
            Backend backend = createBackend(model, options, progress);
            return new Engine(model, backend, (System.nanoTime() - t0) / 1_000_000);
        } catch (RuntimeException | Error e) {
            model.close();
            throw e;
        }
    }

    public static LoadedModel loadModel(Path path, Progress progress) {
        return loadModel(path, null, progress);
    }

    /**
     * Loads a GGUF file or a Hugging Face model directory (one with config.json, safetensors weights and
     * tokenizer.model). {@code quantize}: convert float weight matrices to this type at load, or null.
     */
    public static LoadedModel loadModel(Path path, GgmlType quantize, Progress progress) {
        if (Files.isDirectory(path)) {
            if (!HfModelLoader.isModelDirectory(path)) {
                throw new ModelFormatException(path, "is a directory without config.json; give a GGUF file or a Hugging Face model directory");
            }
            return HfModelLoader.load(path, new HfModelLoader.Options(quantize), progress);
        }
        HfModelLoader.refuseCheckpointFile(path);
        return GgufModelLoader.load(path, quantize, progress);
    }

    /**
     * Prepares the backend the options name for an already loaded model (the caller closes it; the model outlives it,
     * so one model can serve several backends in turn, as the benchmark does).
     */
    public static Backend createBackend(LoadedModel model, Options options, Progress progress) {
        String b = options.backend() == null ? "auto" : options.backend();
        int threads = options.threads() > 0 ? options.threads() : Runtime.getRuntime().availableProcessors();
        if (b.equals("auto")) {
            b = TornadoSupport.available() ? "tornado" : "cpu";
        }
        return switch (b) {
            case "cpu" -> new CpuBackend(model, threads, options.roundActivations(), options.kvCacheF16(), progress);
            case "tornado" -> {
                String why = TornadoSupport.unavailableReason();
                if (why != null) {
                    throw new IllegalStateException("--backend tornado: " + why);
                }
                int ctx = options.context() > 0 ? options.context() : Math.min(model.config().contextLength(), 4096);
                yield TornadoBackends.create(model, new TornadoBackend.Settings(ctx, Math.max(1, options.sequences()),
                        options.device(), options.kvCacheF16(), options.roundActivations(), options.profile()), progress);
            }
            default -> throw new IllegalArgumentException("unknown backend '" + b + "' (cpu, tornado, auto)");
        };
    }

    /** End-of-generation tokens, found by their text in the vocabulary (never by fixed ids). */
    private static int[] resolveStops(LoadedModel model, Tokenizer tok) {
        Set<Integer> ids = new LinkedHashSet<>();
        int eos = model.vocab().eos();
        if (eos >= 0) {
            ids.add(eos);
        }
        for (int id : model.stopTokens()) {
            ids.add(id);
        }
        for (String s : new String[] {"<|im_end|>", "</s>", "<eoa>"}) {
            int id = tok.tokenId(s);
            if (id >= 0) {
                ids.add(id);
            }
        }
        return ids.stream().mapToInt(Integer::intValue).toArray();
    }

    /**
     * A new session (one conversation or request) holding up to {@code contextTokens} tokens.
     *
     * @throws IllegalArgumentException when the context exceeds what the model allows
     * @throws IllegalStateException when the backend has no free sequence slot
     */
    public Session newSession(int contextTokens) {
        if (contextTokens > maxContext()) {
            throw new IllegalArgumentException("context of " + contextTokens + " tokens exceeds the model's trained window of "
                    + config().contextLength() + " tokens (and the model has no dynamic RoPE scaling to go further)");
        }
        return new Session(backend, model.config(), tokenizer, stopTokens, contextTokens);
    }

    /** Context length a session gets by default: the model's window, capped at 4096 to keep memory modest. */
    public int defaultContext() {
        return Math.min(model.config().contextLength(), 4096);
    }

    /** The most tokens a sequence may hold: the trained window (more only with dynamic NTK scaling). */
    public int maxContext() {
        ModelConfig c = model.config();
        return c.ropeScaling().type() == ModelConfig.RopeScaling.Type.DYNAMIC ? Integer.MAX_VALUE / 2 : c.contextLength();
    }

    public LoadedModel model() {
        return model;
    }

    public ModelConfig config() {
        return model.config();
    }

    public Tokenizer tokenizer() {
        return tokenizer;
    }

    public Backend backend() {
        return backend;
    }

    public int[] stopTokens() {
        return stopTokens.clone();
    }

    public boolean isStop(int token) {
        for (int s : stopTokens) {
            if (s == token) {
                return true;
            }
        }
        return false;
    }

    /** True for reward models (a {@code v_head.weight} scalar head): they score conversations, they do not generate. */
    public boolean isRewardModel() {
        return rewardHead != null;
    }

    /** The reward head's weights (a copy), or null when the model has none. */
    public float[] rewardHead() {
        return rewardHead == null ? null : rewardHead.clone();
    }

    public long loadMillis() {
        return loadMillis;
    }

    @Override
    public void close() {
        try {
            backend.close();
        } finally {
            model.close();
        }
    }
}
