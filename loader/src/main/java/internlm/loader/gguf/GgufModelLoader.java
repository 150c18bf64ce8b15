package internlm.loader.gguf;

import internlm.loader.LoadedModel;
import internlm.loader.ModelConfig;
import internlm.loader.ModelConfig.Family;
import internlm.loader.ModelConfig.RopeScaling;
import internlm.loader.ModelFormatException;
import internlm.loader.Progress;
import internlm.loader.TensorData;
import internlm.loader.Vocabulary;
import internlm.loader.quant.Quants;
import internlm.loader.quant.TensorConversion;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Builds the engine's model description, vocabulary and weight views from a GGUF file written by llama.cpp's
 * converters for InternLM2/2.5 ({@code internlm2}) and InternLM3 ({@code llama}). Everything is read from the file's
 * metadata (RoPE base included); shapes of every tensor are checked against it. Q4_K and Q6_K tensors are
 * requantized to Q8_0 at load (the backends run F32/F16/BF16/Q8_0/Q4_0 directly).
 */
public final class GgufModelLoader {
    private GgufModelLoader() {}

    public static final Set<String> ARCHITECTURES = Set.of("internlm2", "llama");

    /**
     * Extra metadata keys this engine writes in {@code convert} output and reads back; llama.cpp ignores them.
     * {@value #KEY_DYNAMIC_FACTOR}: the factor of HF dynamic-NTK RoPE scaling (GGUF has no standard key for it);
     * {@value #KEY_FAMILY}: the HF model_type the file was converted from ("internlm", "internlm2", "internlm3").
     */
    public static final String KEY_DYNAMIC_FACTOR = "internlm.rope.dynamic_factor";
    public static final String KEY_FAMILY = "internlm.family";

    public static LoadedModel load(Path path, Progress progress) {
        return load(path, null, progress);
    }

    /**
     * @param matrixType convert 2-D float weight matrices (F32/F16/BF16) to this type at load, or null to keep them;
     *                   quantized tensors are left as they are
     */
    public static LoadedModel load(Path path, GgmlType matrixType, Progress progress) {
        GgufFile f = GgufFile.open(path);
        try {
            return load(f, matrixType, progress);
        } catch (RuntimeException e) {
            f.close();
            throw e;
        }
    }

    public static LoadedModel load(GgufFile f, Progress progress) {
        return load(f, null, progress);
    }

    public static LoadedModel load(GgufFile f, GgmlType matrixType, Progress progress) {
        if (matrixType != null && !TensorConversion.isTarget(matrixType)) {
            throw new IllegalArgumentException("cannot convert weights to " + matrixType + " (F32, F16, BF16, Q8_0, Q4_0)");
        }
        ModelConfig config = config(f);
        Vocabulary vocab = vocabulary(f);
        if (vocab.size() != config.vocabSize()) {
            throw new ModelFormatException(f.path(), "the vocabulary has " + vocab.size() + " tokens but the model has " + config.vocabSize());
        }
        List<String> notes = new ArrayList<>();
        Arena converted = Arena.ofShared();
        Map<String, TensorData> tensors = new LinkedHashMap<>();
        try {
            long toConvert = f.tensors().values().stream().filter(t -> !t.type().runsAsStored()).mapToLong(GgufTensor::byteSize).sum();
            long[] convertedBytes = {0};
            for (GgufTensor t : f.tensors().values()) {
                TensorData td = new TensorData(t.name(), t.type(), t.dims(), t.data());
                if (!t.type().computeSupported()) {
                    throw new ModelFormatException(f.path(), "tensor '" + t.name() + "' has type " + t.type()
                            + ", which this engine does not run (supported: F32, F16, BF16, Q8_0, Q4_0; Q4_K and Q6_K are requantized to Q8_0 at load)");
                }
                if (!t.type().runsAsStored()) {
                    td = requantizeToQ8_0(td, converted, progress, convertedBytes, toConvert);
                }
                tensors.put(t.name(), td);
            }
            if (toConvert > 0) {
                notes.add("K-quant tensors (" + (toConvert >> 20) + " MiB) were requantized to Q8_0 at load");
            }
            if (matrixType != null) {
                int n = 0;
                for (Map.Entry<String, TensorData> e : tensors.entrySet()) {
                    TensorData t = e.getValue();
                    boolean floatMatrix = t.dims().length == 2 && t.dims()[1] > 1 && !t.name().equals("v_head.weight")
                            && (t.type() == GgmlType.F32 || t.type() == GgmlType.F16 || t.type() == GgmlType.BF16);
                    GgmlType to = TensorConversion.matrixType(matrixType, t.rowLength());
                    if (floatMatrix && t.type() != to) {
                        e.setValue(TensorConversion.convert(t, to, converted));
                        n++;
                        progress.update("converting weights to " + matrixType, n, tensors.size());
                    }
                }
                notes.add(n + " float weight matrices converted to " + matrixType + " at load (rows that are not whole blocks: F16)");
            }
            checkTensors(f.path(), config, tensors);
            if (!tensors.containsKey("output.weight")) {
                notes.add("no output.weight: the LM head reuses token_embd.weight (tied embeddings)");
            }
        } catch (RuntimeException e) {
            converted.close();
            throw e;
        }
        AutoCloseable resources = () -> {
            converted.close();
            f.close();
        };
        return new LoadedModel(f.path(), "GGUF v" + f.version(), config, vocab, tensors, notes, resources);
    }

    /** The model description from the metadata. */
    public static ModelConfig config(GgufFile f) {
        Path p = f.path();
        String arch = f.getString("general.architecture");
        if (!ARCHITECTURES.contains(arch)) {
            throw new ModelFormatException(p, "unsupported architecture '" + arch + "' (this engine runs InternLM models: 'internlm2' for InternLM2/2.5, 'llama' for InternLM3)");
        }
        String k = arch + ".";
        int dim = positive(f, k + "embedding_length");
        int layers = positive(f, k + "block_count");
        int ffn = perLayerConstant(f, k + "feed_forward_length");
        int heads = perLayerConstant(f, k + "attention.head_count");
        int kvHeads = f.has(k + "attention.head_count_kv") ? perLayerConstant(f, k + "attention.head_count_kv") : heads;
        if (dim % heads != 0 && !f.has(k + "attention.key_length")) {
            throw new ModelFormatException(p, "embedding_length " + dim + " is not a multiple of head_count " + heads + " and attention.key_length is not set");
        }
        int headDim = f.has(k + "attention.key_length") ? positive(f, k + "attention.key_length") : dim / heads;
        if (f.has(k + "attention.value_length") && f.getInt(k + "attention.value_length") != headDim) {
            throw new ModelFormatException(p, "attention.value_length " + f.getInt(k + "attention.value_length") + " differs from key_length " + headDim + " (not supported)");
        }
        if (f.has(k + "rope.dimension_count") && f.getInt(k + "rope.dimension_count") != headDim) {
            throw new ModelFormatException(p, "rope.dimension_count " + f.getInt(k + "rope.dimension_count") + " differs from the head dimension " + headDim + " (partial rotary embeddings are not supported)");
        }
        if (kvHeads <= 0 || heads % kvHeads != 0) {
            throw new ModelFormatException(p, "attention.head_count " + heads + " is not a multiple of attention.head_count_kv " + kvHeads);
        }
        int ctx = positive(f, k + "context_length");
        double theta = f.getDouble(k + "rope.freq_base", 10000.0);
        float eps = (float) f.getDouble(k + "attention.layer_norm_rms_epsilon");
        RopeScaling scaling = ropeScaling(f, k);
        String[] tokens = f.getStringArray("tokenizer.ggml.tokens");
        int vocabSize = tokens.length;
        boolean qkvBias = f.tensor("blk.0.attn_q.bias") != null;
        boolean outBias = f.tensor("blk.0.attn_output.bias") != null;
        boolean tied = f.tensor("output.weight") == null;
        Family family = arch.equals("internlm2") ? Family.INTERNLM2 : (qkvBias ? Family.INTERNLM1 : Family.INTERNLM3);
        if (f.has(KEY_FAMILY)) {
            family = switch (f.getString(KEY_FAMILY)) {
                case "internlm" -> Family.INTERNLM1;
                case "internlm2" -> Family.INTERNLM2;
                case "internlm3" -> Family.INTERNLM3;
                default -> throw new ModelFormatException(p, "metadata '" + KEY_FAMILY + "' = '" + f.getString(KEY_FAMILY)
                        + "' is not an InternLM family (internlm, internlm2, internlm3)");
            };
        }
        String name = f.getString("general.name", p.getFileName().toString());
        try {
            return new ModelConfig(family, arch, name, dim, layers, heads, kvHeads, headDim, ffn, vocabSize, ctx, theta, scaling, eps, qkvBias, outBias, tied);
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(p, e.getMessage());
        }
    }

    private static RopeScaling ropeScaling(GgufFile f, String k) {
        String type = f.getString(k + "rope.scaling.type", "none");
        double factor = f.getDouble(k + "rope.scaling.factor", f.getDouble(k + "rope.scale_linear", 1.0));
        switch (type) {
            case "none":
                if (f.has(k + "rope.scale_linear") && factor != 1.0) {
                    return new RopeScaling(RopeScaling.Type.LINEAR, factor);
                }
                if (f.has(KEY_DYNAMIC_FACTOR)) {
                    double d = f.getDouble(KEY_DYNAMIC_FACTOR);
                    if (!(d > 0) || Double.isInfinite(d)) {
                        throw new ModelFormatException(f.path(), "metadata '" + KEY_DYNAMIC_FACTOR + "' = " + d + " must be a positive number");
                    }
                    return new RopeScaling(RopeScaling.Type.DYNAMIC, d);
                }
                return RopeScaling.NONE;
            case "linear":
                if (!(factor > 0)) {
                    throw new ModelFormatException(f.path(), "rope.scaling.factor " + factor + " must be positive");
                }
                return factor == 1.0 ? RopeScaling.NONE : new RopeScaling(RopeScaling.Type.LINEAR, factor);
            case "dynamic":
                if (!(factor > 0)) {
                    throw new ModelFormatException(f.path(), "rope.scaling.factor " + factor + " must be positive");
                }
                return new RopeScaling(RopeScaling.Type.DYNAMIC, factor);
            default:
                throw new ModelFormatException(f.path(), "RoPE scaling type '" + type + "' is not supported (none, linear, dynamic)");
        }
    }

    private static int positive(GgufFile f, String key) {
        int v = f.getInt(key);
        if (v <= 0) {
            throw new ModelFormatException(f.path(), "metadata '" + key + "' = " + v + " must be positive");
        }
        return v;
    }

    /** A per-layer hyper-parameter: a scalar, or an array whose values are all equal (varying ones are not supported). */
    private static int perLayerConstant(GgufFile f, String key) {
        GgufValue v = f.metadata().get(key);
        if (v != null && v.isArray()) {
            if (!(v.value() instanceof int[] a) || a.length == 0) {
                throw new ModelFormatException(f.path(), "metadata '" + key + "' must be an integer or an array of int32");
            }
            for (int x : a) {
                if (x != a[0]) {
                    throw new ModelFormatException(f.path(), "metadata '" + key + "' varies per layer, which is not supported");
                }
            }
            if (a[0] <= 0) {
                throw new ModelFormatException(f.path(), "metadata '" + key + "' = " + a[0] + " must be positive");
            }
            return a[0];
        }
        return positive(f, key);
    }

    /** The tokenizer data, with llama.cpp's defaults for a SentencePiece ("llama") vocabulary. */
    public static Vocabulary vocabulary(GgufFile f) {
        Path p = f.path();
        String model = f.getString("tokenizer.ggml.model", "");
        if (!model.equals("llama")) {
            throw new ModelFormatException(p, "tokenizer model '" + model + "' is not supported (InternLM models use SentencePiece BPE, tokenizer.ggml.model = 'llama')");
        }
        String[] tokens = f.getStringArray("tokenizer.ggml.tokens").clone();
        int n = tokens.length;
        if (n == 0) {
            throw new ModelFormatException(p, "the vocabulary (tokenizer.ggml.tokens) is empty");
        }
        float[] scores = new float[n];
        if (f.has("tokenizer.ggml.scores")) {
            float[] s = f.getFloatArray("tokenizer.ggml.scores");
            if (s.length < n) {
                throw new ModelFormatException(p, "tokenizer.ggml.scores has " + s.length + " entries for " + n + " tokens");
            }
            System.arraycopy(s, 0, scores, 0, n);
        }
        int[] types = new int[n];
        java.util.Arrays.fill(types, Vocabulary.TYPE_NORMAL);
        if (f.has("tokenizer.ggml.token_type")) {
            int[] t = f.getIntArray("tokenizer.ggml.token_type");
            if (t.length < n) {
                throw new ModelFormatException(p, "tokenizer.ggml.token_type has " + t.length + " entries for " + n + " tokens");
            }
            System.arraycopy(t, 0, types, 0, n);
        }
        Set<String> seen = new HashSet<>(n * 2);
        for (int i = 0; i < n; i++) {
            if (tokens[i].isEmpty()) {
                tokens[i] = "[EMPTY_" + i + "]"; // as llama.cpp does
            }
            if (!seen.add(tokens[i])) {
                throw new ModelFormatException(p, "duplicate token in the vocabulary: '" + tokens[i] + "' (id " + i + ")");
            }
        }
        int bos = specialId(f, "tokenizer.ggml.bos_token_id", 1, n);
        int eos = specialId(f, "tokenizer.ggml.eos_token_id", 2, n);
        int unk = specialId(f, "tokenizer.ggml.unknown_token_id", 0, n);
        int pad = specialId(f, "tokenizer.ggml.padding_token_id", -1, n);
        boolean addBos = f.getBool("tokenizer.ggml.add_bos_token", true);
        boolean addEos = f.getBool("tokenizer.ggml.add_eos_token", false);
        boolean addSpacePrefix = f.getBool("tokenizer.ggml.add_space_prefix", true);
        if (addBos && bos < 0) {
            throw new ModelFormatException(p, "tokenizer.ggml.add_bos_token is true but there is no BOS token");
        }
        String template = f.getString("tokenizer.chat_template", null);
        return new Vocabulary(tokens, scores, types, bos, eos, unk, pad, addBos, addEos, addSpacePrefix, template);
    }

    /** A special-token id: the file's value if in range, else llama.cpp's default if in range, else -1. */
    private static int specialId(GgufFile f, String key, int def, int n) {
        if (f.has(key)) {
            long v = f.getLong(key);
            if (v >= 0 && v < n) {
                return (int) v;
            }
        }
        return def >= 0 && def < n ? def : -1;
    }

    /**
     * Checks that every tensor the model description requires is present with the shape it implies (ggml dims), and
     * that vectors (norms, biases) have a float type. Errors name {@code p}.
     */
    public static void checkTensors(Path p, ModelConfig c, Map<String, TensorData> t) {
        long dim = c.dim(), q = c.qDim(), kv = c.kvDim(), ffn = c.ffn(), vocab = c.vocabSize();
        expect(p, t, "token_embd.weight", dim, vocab);
        expect(p, t, "output_norm.weight", dim);
        if (t.containsKey("output.weight")) {
            expect(p, t, "output.weight", dim, vocab);
        }
        for (int l = 0; l < c.layers(); l++) {
            String b = "blk." + l + ".";
            expect(p, t, b + "attn_norm.weight", dim);
            expect(p, t, b + "attn_q.weight", dim, q);
            expect(p, t, b + "attn_k.weight", dim, kv);
            expect(p, t, b + "attn_v.weight", dim, kv);
            expect(p, t, b + "attn_output.weight", q, dim);
            expect(p, t, b + "ffn_norm.weight", dim);
            expect(p, t, b + "ffn_gate.weight", dim, ffn);
            expect(p, t, b + "ffn_up.weight", dim, ffn);
            expect(p, t, b + "ffn_down.weight", ffn, dim);
            if (c.qkvBias()) {
                expect(p, t, b + "attn_q.bias", q);
                expect(p, t, b + "attn_k.bias", kv);
                expect(p, t, b + "attn_v.bias", kv);
            }
            if (c.outBias()) {
                expect(p, t, b + "attn_output.bias", dim);
            }
        }
        for (TensorData td : t.values()) {
            boolean vector = td.dims().length == 1 || td.name().endsWith(".bias") || td.name().endsWith("_norm.weight");
            if (vector && td.type() != internlm.loader.gguf.GgmlType.F32 && td.type() != internlm.loader.gguf.GgmlType.F16 && td.type() != internlm.loader.gguf.GgmlType.BF16) {
                throw new ModelFormatException(p, "tensor '" + td.name() + "' is a vector of type " + td.type() + " (norms and biases must be F32, F16 or BF16)");
            }
        }
    }

    private static void expect(Path p, Map<String, TensorData> t, String name, long... dims) {
        TensorData td = t.get(name);
        if (td == null) {
            throw new ModelFormatException(p, "required tensor '" + name + "' is missing");
        }
        long[] d = td.dims();
        boolean ok = d.length >= dims.length;
        for (int i = 0; ok && i < d.length; i++) {
            ok = i < dims.length ? d[i] == dims[i] : d[i] == 1;
        }
        if (!ok) {
            throw new ModelFormatException(p, "tensor '" + name + "' has shape " + td.shapeString() + " but the metadata implies " + java.util.Arrays.toString(dims));
        }
    }

    private static TensorData requantizeToQ8_0(TensorData t, Arena arena, Progress progress, long[] done, long total) {
        long rowLen = t.rowLength();
        long rows = t.rows();
        if (rowLen % 32 != 0 || rowLen > Integer.MAX_VALUE) {
            throw new IllegalStateException("cannot requantize " + t.name());
        }
        MemorySegment out = arena.allocate(GgmlType.Q8_0.byteSize(rowLen * rows), 64);
        float[] row = new float[(int) rowLen];
        long inRowBytes = t.rowBytes();
        long outRowBytes = GgmlType.Q8_0.byteSize(rowLen);
        for (long r = 0; r < rows; r++) {
            Quants.dequantize(t.type(), t.data(), r * rowLen, row, 0, (int) rowLen);
            Quants.quantizeQ8_0(row, 0, (int) rowLen, out, r * outRowBytes);
            done[0] += inRowBytes;
            if ((r & 255) == 0 || r == rows - 1) {
                progress.update("requantizing K-quant tensors to Q8_0", done[0], total);
            }
        }
        return new TensorData(t.name(), GgmlType.Q8_0, t.dims(), out);
    }
}
