package internlm.loader.hf;

import internlm.loader.LoadedModel;
import internlm.loader.ModelConfig;
import internlm.loader.ModelConfig.Family;
import internlm.loader.ModelConfig.RopeScaling;
import internlm.loader.Progress;
import internlm.loader.TensorData;
import internlm.loader.Vocabulary;
import internlm.loader.gguf.GgmlType;
import internlm.loader.gguf.GgufModelLoader;
import internlm.loader.gguf.GgufWriter;
import internlm.loader.quant.Quants;
import internlm.loader.quant.TensorConversion;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;

/**
 * Writes a Hugging Face InternLM directory as a GGUF v3 file with the metadata and tensors llama.cpp's converter
 * ({@code convert_hf_to_gguf.py}) writes for it, so that llama.cpp loads it and gives the same greedy tokens as the
 * directory does in this engine:
 * <ul>
 *   <li>InternLM2/2.5 → arch {@code internlm2} (wqkv split, Q/K permuted); InternLM3 → arch {@code llama} with
 *       {@code vocab_size}, {@code rope.dimension_count}, {@code attention.key_length/value_length}; InternLM v1 (which
 *       has no llama.cpp converter) → arch {@code llama} plus {@code blk.N.attn_{q,k,v,output}.bias}, optional tensors
 *       llama.cpp's llama graph adds exactly like v1 attention does;</li>
 *   <li>the vocabulary of {@link HfVocabulary} (placeholders renamed, eos = {@code <|im_end|>} for chat models),
 *       {@code tokenizer.ggml.*} keys and the chat template;</li>
 *   <li>norms and biases F32; 2-D weights in the requested type (F32, F16, BF16, Q8_0, Q4_0 — ggml's reference
 *       quantizers; rows that are not whole 32-value blocks fall back to F16 as llama-quantize does);</li>
 *   <li>linear RoPE scaling as {@code rope.scaling.type/factor}; dynamic NTK scaling, which GGUF cannot express
 *       (llama.cpp's converter drops it), as the extra key {@value GgufModelLoader#KEY_DYNAMIC_FACTOR} that this
 *       engine reads back and llama.cpp ignores; the HF model_type as {@value GgufModelLoader#KEY_FAMILY}.</li>
 * </ul>
 * A reward model's {@code v_head.weight} is written too (F32); llama.cpp refuses files with tensors it does not know,
 * so such a file is for this engine only.
 */
public final class HfToGguf {
    private HfToGguf() {}

    /** What was written, for the user. */
    public record Result(Path out, long bytes, int tensors, List<String> notes) {}

    /** ggml's general.file_type for a file whose matrices are of type t. */
    static int fileType(GgmlType t) {
        return switch (t) {
            case F32 -> 0;
            case F16 -> 1;
            case Q4_0 -> 2;
            case Q8_0 -> 7;
            case BF16 -> 32;
            default -> throw new IllegalArgumentException("no GGUF file type for " + t);
        };
    }

    public static Result convert(Path hfDir, Path out, GgmlType type, Progress progress) throws IOException {
        if (!TensorConversion.isTarget(type)) {
            throw new IllegalArgumentException("cannot write weights as " + type + " (f32, f16, bf16, q8_0, q4_0)");
        }
        try (LoadedModel m = HfModelLoader.load(hfDir, progress)) {
            List<String> notes = new ArrayList<>();
            GgufWriter w = metadata(m, type);
            List<TensorData> order = tensorOrder(m);
            long total = 0;
            for (TensorData t : order) {
                total += t.elements();
            }
            long[] done = {0};
            final long all = total;
            for (TensorData t : order) {
                GgmlType to = targetType(t, type);
                w.addTensor(t.name(), to, t.dims(), os -> {
                    writeConverted(t, to, os);
                    done[0] += t.elements();
                    progress.update("writing " + out.getFileName() + " (" + type + ")", done[0], all);
                });
            }
            if (m.tensors().containsKey("v_head.weight")) {
                notes.add("reward model: v_head.weight written; llama.cpp refuses files with tensors it does not know, this file is for this engine");
            }
            if (m.config().ropeScaling().type() == RopeScaling.Type.DYNAMIC) {
                notes.add("dynamic NTK RoPE scaling (factor " + m.config().ropeScaling().factor() + ") kept in '" + GgufModelLoader.KEY_DYNAMIC_FACTOR
                        + "'; llama.cpp has no dynamic NTK and runs plain RoPE");
            }
            Path parent = out.toAbsolutePath().getParent();
            Path tmp = Files.createTempFile(parent, "." + out.getFileName() + ".", ".part");
            try {
                w.write(tmp);
                Files.move(tmp, out, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            } finally {
                Files.deleteIfExists(tmp);
            }
            return new Result(out, Files.size(out), order.size(), notes);
        }
    }

    /** The type a tensor is written as: vectors and the reward head F32, matrices the requested type (or F16). */
    static GgmlType targetType(TensorData t, GgmlType type) {
        if (t.dims().length == 1 || t.name().equals("v_head.weight")) {
            return GgmlType.F32;
        }
        return TensorConversion.matrixType(type, t.rowLength());
    }

    /** Streams the tensor converted to {@code to}, a few MB at a time. */
    private static void writeConverted(TensorData t, GgmlType to, java.io.OutputStream os) throws IOException {
        long rowLen = t.rowLength(), rows = t.rows();
        long outRow = to.byteSize(rowLen);
        long chunkRows = Math.max(1, (8L << 20) / Math.max(1, outRow));
        for (long r = 0; r < rows; r += chunkRows) {
            long n = Math.min(chunkRows, rows - r);
            byte[] buf = new byte[Math.toIntExact(n * outRow)];
            MemorySegment dst = MemorySegment.ofArray(buf);
            if (t.type() == to) {
                MemorySegment.copy(t.data(), r * t.rowBytes(), dst, 0, n * outRow);
            } else {
                float[] row = new float[Math.toIntExact(rowLen)];
                for (long i = 0; i < n; i++) {
                    Quants.dequantize(t.type(), t.data(), (r + i) * rowLen, row, 0, row.length);
                    TensorConversion.encode(row, 0, row.length, to, dst, i * outRow);
                }
            }
            os.write(buf);
        }
    }

    /** llama.cpp's order: token_embd, every layer's tensors, output_norm, output (then the reward head). */
    static List<TensorData> tensorOrder(LoadedModel m) {
        List<TensorData> out = new ArrayList<>();
        add(m, out, "token_embd.weight");
        for (int l = 0; l < m.config().layers(); l++) {
            for (String s : new String[] {"attn_norm.weight", "attn_q.weight", "attn_q.bias", "attn_k.weight", "attn_k.bias",
                    "attn_v.weight", "attn_v.bias", "attn_output.weight", "attn_output.bias", "ffn_norm.weight", "ffn_gate.weight",
                    "ffn_up.weight", "ffn_down.weight"}) {
                add(m, out, "blk." + l + "." + s);
            }
        }
        add(m, out, "output_norm.weight");
        add(m, out, "output.weight");
        add(m, out, "v_head.weight");
        if (out.size() != m.tensors().size()) {
            throw new IllegalStateException("tensors not placed in the GGUF order: " + m.tensors().keySet());
        }
        return out;
    }

    private static void add(LoadedModel m, List<TensorData> out, String name) {
        TensorData t = m.optionalTensor(name);
        if (t != null) {
            out.add(t);
        }
    }

    /** The GGUF metadata llama.cpp's converter writes for this model (plus this engine's two extra keys). */
    static GgufWriter metadata(LoadedModel m, GgmlType type) {
        ModelConfig c = m.config();
        Vocabulary v = m.vocab();
        String arch = c.family() == Family.INTERNLM2 ? "internlm2" : "llama";
        GgufWriter w = new GgufWriter();
        w.putString("general.architecture", arch);
        w.putString("general.name", c.name());
        w.putU32("general.file_type", fileType(type));
        w.putU32("general.quantization_version", 2);
        String k = arch + ".";
        if (arch.equals("llama")) {
            w.putU32(k + "vocab_size", c.vocabSize());
        }
        w.putU32(k + "context_length", c.contextLength());
        w.putU32(k + "embedding_length", c.dim());
        w.putU32(k + "block_count", c.layers());
        w.putU32(k + "feed_forward_length", c.ffn());
        w.putU32(k + "attention.head_count", c.heads());
        w.putU32(k + "attention.head_count_kv", c.kvHeads());
        w.putF32(k + "attention.layer_norm_rms_epsilon", c.rmsEps());
        if (arch.equals("llama")) {
            w.putU32(k + "attention.key_length", c.headDim());
            w.putU32(k + "attention.value_length", c.headDim());
        }
        w.putF32(k + "rope.freq_base", (float) c.ropeTheta());
        if (arch.equals("llama")) {
            w.putU32(k + "rope.dimension_count", c.headDim());
        }
        switch (c.ropeScaling().type()) {
            case LINEAR -> {
                w.putString(k + "rope.scaling.type", "linear");
                w.putF32(k + "rope.scaling.factor", (float) c.ropeScaling().factor());
            }
            case DYNAMIC -> w.putF32(GgufModelLoader.KEY_DYNAMIC_FACTOR, (float) c.ropeScaling().factor());
            case NONE -> { }
        }
        w.putString(GgufModelLoader.KEY_FAMILY, c.architecture());
        w.putString("tokenizer.ggml.model", "llama");
        w.putString("tokenizer.ggml.pre", "default");
        w.putStrings("tokenizer.ggml.tokens", v.tokens());
        w.putFloats("tokenizer.ggml.scores", v.scores());
        w.putInts("tokenizer.ggml.token_type", v.types());
        w.putBool("tokenizer.ggml.add_space_prefix", v.addSpacePrefix());
        putId(w, "tokenizer.ggml.bos_token_id", v.bos());
        putId(w, "tokenizer.ggml.eos_token_id", v.eos());
        putId(w, "tokenizer.ggml.unknown_token_id", v.unk());
        putId(w, "tokenizer.ggml.padding_token_id", v.pad());
        w.putBool("tokenizer.ggml.add_bos_token", v.addBos());
        w.putBool("tokenizer.ggml.add_eos_token", v.addEos());
        if (v.chatTemplate() != null) {
            w.putString("tokenizer.chat_template", v.chatTemplate());
        }
        return w;
    }

    private static void putId(GgufWriter w, String key, int id) {
        if (id >= 0) {
            w.putU32(key, id);
        }
    }
}
