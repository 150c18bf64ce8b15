package internlm.loader.hf;

import internlm.loader.LoadedModel;
import internlm.loader.ModelConfig;
import internlm.loader.ModelConfig.Family;
import internlm.loader.ModelFormatException;
import internlm.loader.Progress;
import internlm.loader.TensorData;
import internlm.loader.gguf.GgmlType;
import internlm.loader.gguf.GgufModelLoader;
import internlm.loader.quant.TensorConversion;

import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.function.LongUnaryOperator;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Loads a Hugging Face InternLM directory (v1 {@code internlm}, v2/2.5 {@code internlm2}, v3 {@code internlm3}) into
 * the same {@link LoadedModel} a GGUF conversion of it gives: canonical GGUF tensor names and ggml dims order,
 * Q/K rows permuted from HF's half-split RoPE layout to GGUF's adjacent pairs (spec §5), InternLM2's fused
 * group-interleaved {@code wqkv} split into {@code attn_q/k/v} (spec §4), v1/v3 biases, the reward head
 * {@code v_head.weight} (dims {hidden, 1}), and the vocabulary llama.cpp's converter would write ({@link HfVocabulary}).
 *
 * <p>Weights keep their stored type (F32, F16 and BF16 run as stored; tensors with unchanged rows stay views of the
 * mapped safetensors files) unless {@link Options#matrixType} asks for another one; norms and biases become F32 as
 * in converter output. Every shape is checked against {@code config.json} before anything is copied.
 */
public final class HfModelLoader {
    private HfModelLoader() {}

    /**
     * @param matrixType convert 2-D weight matrices to this type at load (F32, F16, BF16, Q8_0, Q4_0; rows that are not
     *                   whole blocks fall back to F16), or null to keep the stored type
     */
    public record Options(GgmlType matrixType) {
        public static final Options DEFAULT = new Options(null);

        public Options {
            if (matrixType != null && !TensorConversion.isTarget(matrixType)) {
                throw new IllegalArgumentException("cannot convert weights to " + matrixType + " (F32, F16, BF16, Q8_0, Q4_0)");
            }
        }
    }

    /** True when {@code dir} looks like an HF model directory (it has a config.json). */
    public static boolean isModelDirectory(Path dir) {
        return Files.isDirectory(dir) && Files.isRegularFile(dir.resolve("config.json"));
    }

    /**
     * A clear error when a single file of an HF checkpoint is given where a GGUF file is expected: a safetensors
     * shard (give its directory), or a PyTorch pickle (convert it). Files that start with the GGUF magic pass,
     * whatever their name.
     */
    public static void refuseCheckpointFile(Path file) {
        String n = file.getFileName() == null ? "" : file.getFileName().toString();
        boolean st = n.endsWith(".safetensors") || n.endsWith(".safetensors.index.json");
        boolean pickle = n.endsWith(".bin") || n.endsWith(".pt") || n.endsWith(".pth");
        if ((!st && !pickle) || !Files.isRegularFile(file)) {
            return;
        }
        try (java.io.InputStream in = Files.newInputStream(file)) {
            byte[] magic = in.readNBytes(4);
            if (magic.length == 4 && magic[0] == 'G' && magic[1] == 'G' && magic[2] == 'U' && magic[3] == 'F') {
                return;
            }
        } catch (java.io.IOException e) {
            return; // the GGUF reader will report it
        }
        if (st) {
            throw new ModelFormatException(file, "is part of a Hugging Face checkpoint: give its directory (the one with config.json and tokenizer.model)");
        }
        throw new ModelFormatException(file, HfCheckpoint.pickleMessage(n));
    }

    public static LoadedModel load(Path dir, Progress progress) {
        return load(dir, Options.DEFAULT, progress);
    }

    public static LoadedModel load(Path dir, Options options, Progress progress) {
        if (!Files.isDirectory(dir)) {
            throw new ModelFormatException(dir, "is not a directory");
        }
        Path cfgPath = dir.resolve("config.json");
        if (!Files.isRegularFile(cfgPath)) {
            throw new ModelFormatException(dir, "has no config.json: not a Hugging Face model directory");
        }
        HfConfig cfg = HfConfig.read(cfgPath);
        HfCheckpoint ckpt = HfCheckpoint.open(dir);
        Arena arena = Arena.ofShared();
        try {
            // the embedding bounds vocab_size by what the files really hold, before the vocabulary is allocated
            String emb = cfg.family() == Family.INTERNLM2 ? "model.tok_embeddings.weight" : "model.embed_tokens.weight";
            HfCheckpoint.Entry embedding = ckpt.get(emb);
            if (embedding == null) {
                throw new ModelFormatException(dir, "the token embedding '" + emb + "' is missing from the weights");
            }
            Mapper.expectShape(embedding, cfg.vocabSize(), cfg.hidden());
            HfVocabulary vocab = HfVocabulary.read(dir, cfg);
            List<String> notes = new ArrayList<>();
            Map<String, TensorData> tensors = new Mapper(cfg, ckpt, options, arena, notes).run(progress);
            boolean hasOutput = tensors.containsKey("output.weight");
            boolean reward = tensors.containsKey("v_head.weight");
            if (!hasOutput && !reward && Boolean.FALSE.equals(cfg.tieEmbeddings())) {
                throw new ModelFormatException(dir, "the LM head (" + (cfg.family() == Family.INTERNLM2 ? "output.weight" : "lm_head.weight")
                        + ") is missing from the weights and config.json says tie_word_embeddings = false");
            }
            ModelConfig config;
            try {
                config = new ModelConfig(cfg.family(), cfg.modelType(), cfg.name(), cfg.hidden(), cfg.layers(), cfg.heads(), cfg.kvHeads(),
                        cfg.headDim(), cfg.ffn(), cfg.vocabSize(), cfg.maxPositions(), cfg.ropeTheta(), cfg.ropeScaling(), cfg.rmsEps(),
                        tensors.containsKey("blk.0.attn_q.bias"), tensors.containsKey("blk.0.attn_output.bias"), !hasOutput);
            } catch (IllegalArgumentException e) {
                throw new ModelFormatException(cfgPath, e.getMessage());
            }
            GgufModelLoader.checkTensors(dir, config, tensors);
            notes.add(config.family() == Family.INTERNLM2 ? "wqkv de-interleaved into attn_q/k/v (spec §4); Q/K rows permuted to GGUF RoPE order"
                    : "q/k rows permuted to GGUF RoPE order");
            if (!hasOutput) {
                notes.add(reward ? "reward model: no LM head (logits are not meaningful; score with v_head.weight)"
                        : "no LM head: the token embedding is reused (tie_word_embeddings)");
            }
            if (reward) {
                notes.add("reward head v_head.weight [" + cfg.hidden() + " -> 1] loaded");
            }
            notes.addAll(vocab.notes());
            int shards = ckpt.files().size();
            String format = "HF safetensors" + (shards > 1 ? " (" + shards + " shards)" : "");
            AutoCloseable resources = () -> {
                arena.close();
                ckpt.close();
            };
            return new LoadedModel(dir, format, config, vocab.vocabulary(), tensors, List.copyOf(notes), resources, vocab.stopIds());
        } catch (RuntimeException | Error e) {
            arena.close();
            ckpt.close();
            throw e;
        }
    }

    /** HF tensor names → GGUF tensors, with the shape checks and transforms of each family. */
    private static final class Mapper {
        private static final Pattern LAYER = Pattern.compile("model\\.layers\\.(\\d{1,9})\\.(.+)");

        final HfConfig c;
        final HfCheckpoint ckpt;
        final Options options;
        final Arena arena;
        final List<String> notes;
        final Map<String, TensorData> out = new LinkedHashMap<>();
        final TreeSet<String> ignored = new TreeSet<>();
        final TreeSet<GgmlType> storedTypes = new TreeSet<>();
        long total, done;
        Progress progress;

        Mapper(HfConfig c, HfCheckpoint ckpt, Options options, Arena arena, List<String> notes) {
            this.c = c;
            this.ckpt = ckpt;
            this.options = options;
            this.arena = arena;
            this.notes = notes;
        }

        Map<String, TensorData> run(Progress progress) {
            this.progress = progress;
            for (HfCheckpoint.Entry e : ckpt.tensors().values()) {
                total += e.tensor().byteSize();
            }
            boolean v2 = c.family() == Family.INTERNLM2;
            String emb = v2 ? "model.tok_embeddings.weight" : "model.embed_tokens.weight";
            String head = v2 ? "output.weight" : "lm_head.weight";
            for (HfCheckpoint.Entry e : ckpt.tensors().values()) {
                String name = e.tensor().name();
                if (name.equals(emb)) {
                    matrix(e, "token_embd.weight", c.vocabSize(), c.hidden(), null);
                } else if (name.equals(head)) {
                    matrix(e, "output.weight", c.vocabSize(), c.hidden(), null);
                } else if (name.equals("model.norm.weight")) {
                    vector(e, "output_norm.weight", c.hidden(), null);
                } else if (name.equals("v_head.weight")) {
                    expectShape(e, 1, c.hidden());
                    put(e, "v_head.weight", new long[] {c.hidden(), 1}, c.hidden(), 1, null, GgmlType.F32);
                    count(e);
                } else if (name.endsWith("rotary_emb.inv_freq")) {
                    count(e); // a cached buffer of old checkpoints, recomputed from the config
                } else {
                    Matcher m = LAYER.matcher(name);
                    if (m.matches()) {
                        int layer = Integer.parseInt(m.group(1));
                        if (layer >= c.layers()) {
                            throw new ModelFormatException(e.file().path(), "tensor '" + name + "' belongs to layer " + layer
                                    + " but config.json num_hidden_layers is " + c.layers());
                        }
                        if (v2 ? layerV2(e, layer, m.group(2)) : layerLlama(e, layer, m.group(2))) {
                            continue;
                        }
                    }
                    ignored.add(name);
                    count(e);
                }
            }
            if (!ignored.isEmpty()) {
                notes.add("ignored " + ignored.size() + " tensor" + (ignored.size() == 1 ? "" : "s") + " this engine does not use: "
                        + String.join(", ", ignored.stream().limit(5).toList()) + (ignored.size() > 5 ? ", ..." : ""));
            }
            notes.addFirst("weights stored as " + storedTypes + (options.matrixType() == null ? ", run as stored"
                    : ", 2-D weights converted to " + options.matrixType() + " at load") + "; norms and biases as F32");
            progress.update("loading " + ckpt.dir().getFileName(), total, total);
            return out;
        }

        private boolean layerV2(HfCheckpoint.Entry e, int l, String rest) {
            String b = "blk." + l + ".";
            long h = c.hidden(), ffn = c.ffn();
            switch (rest) {
                case "attention_norm.weight" -> vector(e, b + "attn_norm.weight", h, null);
                case "ffn_norm.weight" -> vector(e, b + "ffn_norm.weight", h, null);
                case "attention.wo.weight" -> matrix(e, b + "attn_output.weight", h, (long) c.heads() * c.headDim(), null);
                case "attention.wo.bias" -> vector(e, b + "attn_output.bias", h, null);
                case "feed_forward.w1.weight" -> matrix(e, b + "ffn_gate.weight", ffn, h, null);
                case "feed_forward.w3.weight" -> matrix(e, b + "ffn_up.weight", ffn, h, null);
                case "feed_forward.w2.weight" -> matrix(e, b + "ffn_down.weight", h, ffn, null);
                case "attention.wqkv.weight", "attention.wqkv.bias" -> {
                    boolean bias = rest.endsWith("bias");
                    long rows = ((long) c.heads() + 2L * c.kvHeads()) * c.headDim();
                    if (bias) {
                        expectShape(e, rows);
                    } else {
                        expectShape(e, rows, h);
                    }
                    splitWqkv(e, b, bias);
                    count(e);
                }
                default -> {
                    return false;
                }
            }
            return true;
        }

        private boolean layerLlama(HfCheckpoint.Entry e, int l, String rest) {
            String b = "blk." + l + ".";
            long h = c.hidden(), ffn = c.ffn(), q = (long) c.heads() * c.headDim(), kv = (long) c.kvHeads() * c.headDim();
            switch (rest) {
                case "input_layernorm.weight" -> vector(e, b + "attn_norm.weight", h, null);
                case "post_attention_layernorm.weight" -> vector(e, b + "ffn_norm.weight", h, null);
                case "self_attn.q_proj.weight" -> matrix(e, b + "attn_q.weight", q, h, ropeOrder());
                case "self_attn.k_proj.weight" -> matrix(e, b + "attn_k.weight", kv, h, ropeOrder());
                case "self_attn.v_proj.weight" -> matrix(e, b + "attn_v.weight", kv, h, null);
                case "self_attn.o_proj.weight" -> matrix(e, b + "attn_output.weight", h, q, null);
                case "self_attn.q_proj.bias" -> vector(e, b + "attn_q.bias", q, ropeOrder());
                case "self_attn.k_proj.bias" -> vector(e, b + "attn_k.bias", kv, ropeOrder());
                case "self_attn.v_proj.bias" -> vector(e, b + "attn_v.bias", kv, null);
                case "self_attn.o_proj.bias" -> vector(e, b + "attn_output.bias", h, null);
                case "mlp.gate_proj.weight" -> matrix(e, b + "ffn_gate.weight", ffn, h, null);
                case "mlp.up_proj.weight" -> matrix(e, b + "ffn_up.weight", ffn, h, null);
                case "mlp.down_proj.weight" -> matrix(e, b + "ffn_down.weight", h, ffn, null);
                case "mlp.gate_proj.bias", "mlp.up_proj.bias", "mlp.down_proj.bias" ->
                        throw new ModelFormatException(e.file().path(), "tensor '" + e.tensor().name()
                                + "': MLP biases (InternLM3 with bias=true) are not supported by this engine");
                default -> {
                    return false;
                }
            }
            return true;
        }

        /**
         * Row r of the GGUF-order (adjacent-pair RoPE) tensor comes from HF row sourceRow(r): within each head of d
         * rows, GGUF lane 2t holds HF lane t and lane 2t+1 holds HF lane t + d/2 (LlamaModel.permute, spec §5).
         */
        private LongUnaryOperator ropeOrder() {
            int d = c.headDim();
            return r -> (r / d) * d + hfLane(r % d, d);
        }

        static long hfLane(long ggufLane, int d) {
            return (ggufLane & 1) == 0 ? ggufLane / 2 : ggufLane / 2 + d / 2;
        }

        /** InternLM2 wqkv rows: G groups of [q heads g·r .. g·r+r−1, k head g, v head g], d rows each (spec §4). */
        private void splitWqkv(HfCheckpoint.Entry e, String b, boolean bias) {
            int d = c.headDim(), r = c.heads() / c.kvHeads(), h = c.hidden();
            int rowLen = bias ? 1 : h;
            LongUnaryOperator q = row -> {
                long head = row / d, lane = hfLane(row % d, d);
                long g = head / r, slot = head % r;
                return (g * (r + 2) + slot) * d + lane;
            };
            LongUnaryOperator k = row -> {
                long g = row / d, lane = hfLane(row % d, d);
                return (g * (r + 2) + r) * d + lane;
            };
            LongUnaryOperator v = row -> {
                long g = row / d;
                return (g * (r + 2) + r + 1) * d + row % d;
            };
            int qRows = c.heads() * d, kvRows = c.kvHeads() * d;
            if (bias) {
                put(e, b + "attn_q.bias", new long[] {qRows}, 1, qRows, q, GgmlType.F32);
                put(e, b + "attn_k.bias", new long[] {kvRows}, 1, kvRows, k, GgmlType.F32);
                put(e, b + "attn_v.bias", new long[] {kvRows}, 1, kvRows, v, GgmlType.F32);
            } else {
                put(e, b + "attn_q.weight", new long[] {rowLen, qRows}, rowLen, qRows, q, matrixTarget(e, rowLen));
                put(e, b + "attn_k.weight", new long[] {rowLen, kvRows}, rowLen, kvRows, k, matrixTarget(e, rowLen));
                put(e, b + "attn_v.weight", new long[] {rowLen, kvRows}, rowLen, kvRows, v, matrixTarget(e, rowLen));
            }
        }

        private void matrix(HfCheckpoint.Entry e, String name, long rows, long cols, LongUnaryOperator order) {
            expectShape(e, rows, cols);
            put(e, name, new long[] {cols, rows}, cols, rows, order, matrixTarget(e, cols));
            count(e);
        }

        private void vector(HfCheckpoint.Entry e, String name, long n, LongUnaryOperator order) {
            expectShape(e, n);
            put(e, name, new long[] {n}, 1, n, order, GgmlType.F32);
            count(e);
        }

        private GgmlType matrixTarget(HfCheckpoint.Entry e, long rowLen) {
            GgmlType stored = stored(e);
            return options.matrixType() == null ? stored : TensorConversion.matrixType(options.matrixType(), rowLen);
        }

        private GgmlType stored(HfCheckpoint.Entry e) {
            GgmlType t = e.tensor().dtype().ggml();
            if (t == null) {
                throw new ModelFormatException(e.file().path(), "tensor '" + e.tensor().name() + "' has dtype " + e.tensor().dtype()
                        + ", which this engine does not run (model weights must be F32, F16 or BF16)");
            }
            return t;
        }

        private void put(HfCheckpoint.Entry e, String name, long[] dims, long rowLen, long rows, LongUnaryOperator order, GgmlType target) {
            GgmlType from = stored(e);
            storedTypes.add(from);
            if (out.containsKey(name)) {
                throw new ModelFormatException(e.file().path(), "tensor '" + e.tensor().name() + "' maps to " + name + ", which another tensor already gave");
            }
            TensorData td;
            if (order == null && from == target) {
                td = new TensorData(name, from, dims, e.tensor().data());
            } else {
                td = new TensorData(name, target, dims, TensorConversion.gather(e.tensor().data(), from, rowLen, rows, order, target, arena));
            }
            out.put(name, td);
        }

        private void count(HfCheckpoint.Entry e) {
            done += e.tensor().byteSize();
            progress.update("loading " + ckpt.dir().getFileName(), done, total);
        }

        static void expectShape(HfCheckpoint.Entry e, long... shape) {
            if (!java.util.Arrays.equals(e.tensor().shape(), shape)) {
                throw new ModelFormatException(e.file().path(), "tensor '" + e.tensor().name() + "' has shape " + e.tensor().shapeString()
                        + " but config.json implies " + java.util.Arrays.toString(shape));
            }
        }
    }
}
