package internlm.engine;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import internlm.loader.LoadedModel;
import internlm.loader.ModelConfig;
import internlm.loader.ModelConfig.Family;
import internlm.loader.TensorData;
import internlm.loader.Vocabulary;
import internlm.loader.quant.Quants;
import internlm.loader.quant.TensorConversion;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * Test-side writer of Hugging Face directories from a loaded GGUF model — the inverse of what llama.cpp's converter
 * (and our HF loader) do, written separately: Q/K rows (and q/k biases) put back into HF's half-split RoPE order,
 * InternLM2's q/k/v fused into the group-interleaved {@code wqkv}, HF names and [out, in] shapes, safetensors in
 * F32/F16/BF16 (optionally sharded, with an index), {@code config.json} of the family, a SentencePiece
 * {@code tokenizer.model} encoded here (protobuf by hand; the ChatML specials stored as {@code [UNUSED_TOKEN_n]}
 * placeholders like InternLM2's real file) and the tokenizer/generation configs that name them.
 */
public final class HfDirWriter {
    private HfDirWriter() {}

    private record HfTensor(String name, long[] shape, float[] values) {}

    private static final String[] CHATML = {"<|plugin|>", "<|interpreter|>", "<|action_end|>", "<|action_start|>", "<|im_end|>", "<|im_start|>"};

    /** @param dtype "F32", "F16" or "BF16" */
    public static void write(LoadedModel g, Path dir, Family family, String dtype, int shards) throws IOException {
        ModelConfig c = g.config();
        Files.createDirectories(dir);
        List<HfTensor> ts = tensors(g, family);
        int esz = dtype.equals("F32") ? 4 : 2;
        // shards: contiguous runs of the state-dict order; inside a file sorted by name
        ObjectMapper om = new ObjectMapper();
        ObjectNode weightMap = om.createObjectNode();
        long total = 0;
        int per = (ts.size() + shards - 1) / shards;
        for (int s = 0; s < shards; s++) {
            List<HfTensor> mine = new ArrayList<>(ts.subList(Math.min(ts.size(), s * per), Math.min(ts.size(), (s + 1) * per)));
            mine.sort(Comparator.comparing(HfTensor::name));
            String file = shards == 1 ? "model.safetensors" : String.format("model-%05d-of-%05d.safetensors", s + 1, shards);
            total += writeSafetensors(dir.resolve(file), mine, dtype, esz);
            for (HfTensor t : mine) {
                weightMap.put(t.name(), file);
            }
        }
        if (shards > 1) {
            ObjectNode idx = om.createObjectNode();
            idx.putObject("metadata").put("total_size", total);
            idx.set("weight_map", weightMap);
            om.writerWithDefaultPrettyPrinter().writeValue(dir.resolve("model.safetensors.index.json").toFile(), idx);
        }
        Vocabulary v = g.vocab();
        ObjectNode cfg = om.createObjectNode();
        String type = switch (family) {
            case INTERNLM1 -> "internlm";
            case INTERNLM2 -> "internlm2";
            case INTERNLM3 -> "internlm3";
        };
        cfg.putArray("architectures").add(switch (family) {
            case INTERNLM1 -> "InternLMForCausalLM";
            case INTERNLM2 -> "InternLM2ForCausalLM";
            case INTERNLM3 -> "InternLM3ForCausalLM";
        });
        cfg.put("model_type", type).put("hidden_size", c.dim()).put("intermediate_size", c.ffn()).put("num_hidden_layers", c.layers())
                .put("num_attention_heads", c.heads()).put("num_key_value_heads", c.kvHeads()).put("max_position_embeddings", c.contextLength())
                .put("rms_norm_eps", c.rmsEps()).put("rope_theta", c.ropeTheta()).put("vocab_size", c.vocabSize()).put("hidden_act", "silu")
                .put("bos_token_id", 1).put("eos_token_id", 2).put("pad_token_id", 2).put("tie_word_embeddings", false).putNull("rope_scaling")
                .put("torch_dtype", dtype.equals("F32") ? "float32" : dtype.equals("F16") ? "float16" : "bfloat16");
        if (family == Family.INTERNLM3) {
            cfg.put("head_dim", c.headDim()).put("qkv_bias", c.qkvBias()).put("bias", c.outBias());
        } else {
            if (c.headDim() * c.heads() != c.dim()) {
                throw new IllegalArgumentException(type + " has no head_dim field: head_dim must be hidden/heads");
            }
            cfg.put("bias", c.qkvBias());
        }
        om.writerWithDefaultPrettyPrinter().writeValue(dir.resolve("config.json").toFile(), cfg);

        // tokenizer.model with placeholders for the ChatML specials, named back by tokenizer_config.json
        String[] pieces = v.tokens().clone();
        ObjectNode tc = om.createObjectNode();
        tc.put("add_bos_token", v.addBos()).put("add_eos_token", v.addEos());
        ObjectNode added = tc.putObject("added_tokens_decoder");
        int placeholder = 141;
        for (int id = 0; id < pieces.length; id++) {
            String p = pieces[id];
            boolean chatml = java.util.Arrays.asList(CHATML).contains(p);
            if (id < 3 || chatml) {
                added.putObject(String.valueOf(id)).put("content", p).put("lstrip", false).put("normalized", false)
                        .put("rstrip", false).put("single_word", false).put("special", true);
            }
            if (chatml) {
                String ph;
                do {
                    ph = "[UNUSED_TOKEN_" + placeholder++ + "]";
                } while (v.find(ph) >= 0);
                pieces[id] = ph;
            }
        }
        if (v.chatTemplate() != null) {
            tc.put("chat_template", v.chatTemplate());
        }
        if (family == Family.INTERNLM3) {
            tc.put("add_prefix_space", v.addSpacePrefix());
        }
        om.writerWithDefaultPrettyPrinter().writeValue(dir.resolve("tokenizer_config.json").toFile(), tc);
        Files.write(dir.resolve("tokenizer.model"), sentencePiece(pieces, v));
        ObjectNode gen = om.createObjectNode();
        ArrayNode eos = gen.putArray("eos_token_id").add(2);
        if (v.find("<|im_end|>") >= 0) {
            eos.add(v.find("<|im_end|>"));
        }
        om.writeValue(dir.resolve("generation_config.json").toFile(), gen);
    }

    /** HF lane t of a head of d rows is GGUF lane 2t (t &lt; d/2) or 2(t − d/2) + 1. */
    private static float[] toHfRows(float[] x, int nHead, int d, int rowLen) {
        float[] y = new float[x.length];
        for (int h = 0; h < nHead; h++) {
            for (int t = 0; t < d; t++) {
                int g = t < d / 2 ? 2 * t : 2 * (t - d / 2) + 1;
                System.arraycopy(x, (h * d + g) * rowLen, y, (h * d + t) * rowLen, rowLen);
            }
        }
        return y;
    }

    private static List<HfTensor> tensors(LoadedModel g, Family family) {
        ModelConfig c = g.config();
        int dim = c.dim(), H = c.heads(), G = c.kvHeads(), d = c.headDim(), r = H / G;
        List<HfTensor> out = new ArrayList<>();
        boolean v2 = family == Family.INTERNLM2;
        out.add(matrix(g, "token_embd.weight", v2 ? "model.tok_embeddings.weight" : "model.embed_tokens.weight"));
        for (int l = 0; l < c.layers(); l++) {
            String b = "blk." + l + ".", p = "model.layers." + l + ".";
            float[] q = toHfRows(values(g, b + "attn_q.weight"), H, d, dim);
            float[] k = toHfRows(values(g, b + "attn_k.weight"), G, d, dim);
            float[] vv = values(g, b + "attn_v.weight");
            if (v2) {
                out.add(vector(g, b + "attn_norm.weight", p + "attention_norm.weight"));
                float[] wqkv = new float[(H + 2 * G) * d * dim];
                int blk = d * dim;
                for (int grp = 0; grp < G; grp++) {
                    int base = grp * (r + 2) * blk;
                    System.arraycopy(q, grp * r * blk, wqkv, base, r * blk);
                    System.arraycopy(k, grp * blk, wqkv, base + r * blk, blk);
                    System.arraycopy(vv, grp * blk, wqkv, base + (r + 1) * blk, blk);
                }
                out.add(new HfTensor(p + "attention.wqkv.weight", new long[] {(long) (H + 2 * G) * d, dim}, wqkv));
                out.add(matrix(g, b + "attn_output.weight", p + "attention.wo.weight"));
                out.add(vector(g, b + "ffn_norm.weight", p + "ffn_norm.weight"));
                out.add(matrix(g, b + "ffn_gate.weight", p + "feed_forward.w1.weight"));
                out.add(matrix(g, b + "ffn_up.weight", p + "feed_forward.w3.weight"));
                out.add(matrix(g, b + "ffn_down.weight", p + "feed_forward.w2.weight"));
                continue;
            }
            out.add(vector(g, b + "attn_norm.weight", p + "input_layernorm.weight"));
            out.add(new HfTensor(p + "self_attn.q_proj.weight", new long[] {(long) H * d, dim}, q));
            out.add(new HfTensor(p + "self_attn.k_proj.weight", new long[] {(long) G * d, dim}, k));
            out.add(new HfTensor(p + "self_attn.v_proj.weight", new long[] {(long) G * d, dim}, vv));
            out.add(matrix(g, b + "attn_output.weight", p + "self_attn.o_proj.weight"));
            if (g.optionalTensor(b + "attn_q.bias") != null) {
                out.add(new HfTensor(p + "self_attn.q_proj.bias", new long[] {(long) H * d}, toHfRows(values(g, b + "attn_q.bias"), H, d, 1)));
                out.add(new HfTensor(p + "self_attn.k_proj.bias", new long[] {(long) G * d}, toHfRows(values(g, b + "attn_k.bias"), G, d, 1)));
                out.add(vector(g, b + "attn_v.bias", p + "self_attn.v_proj.bias"));
            }
            if (g.optionalTensor(b + "attn_output.bias") != null) {
                out.add(vector(g, b + "attn_output.bias", p + "self_attn.o_proj.bias"));
            }
            out.add(vector(g, b + "ffn_norm.weight", p + "post_attention_layernorm.weight"));
            out.add(matrix(g, b + "ffn_gate.weight", p + "mlp.gate_proj.weight"));
            out.add(matrix(g, b + "ffn_up.weight", p + "mlp.up_proj.weight"));
            out.add(matrix(g, b + "ffn_down.weight", p + "mlp.down_proj.weight"));
        }
        out.add(vector(g, "output_norm.weight", "model.norm.weight"));
        out.add(matrix(g, "output.weight", v2 ? "output.weight" : "lm_head.weight"));
        return out;
    }

    private static float[] values(LoadedModel g, String name) {
        return TensorConversion.toFloats(g.tensor(name));
    }

    private static HfTensor matrix(LoadedModel g, String gguf, String hf) {
        TensorData t = g.tensor(gguf);
        return new HfTensor(hf, new long[] {t.dims()[1], t.dims()[0]}, values(g, gguf));
    }

    private static HfTensor vector(LoadedModel g, String gguf, String hf) {
        return new HfTensor(hf, new long[] {g.tensor(gguf).dims()[0]}, values(g, gguf));
    }

    private static long writeSafetensors(Path file, List<HfTensor> ts, String dtype, int esz) throws IOException {
        StringBuilder h = new StringBuilder("{\"__metadata__\":{\"format\":\"pt\"}");
        long off = 0;
        for (HfTensor t : ts) {
            long n = t.values().length * (long) esz;
            StringBuilder shape = new StringBuilder();
            for (long x : t.shape()) {
                shape.append(shape.isEmpty() ? "" : ",").append(x);
            }
            h.append(",\"").append(t.name()).append("\":{\"dtype\":\"").append(dtype).append("\",\"shape\":[").append(shape)
                    .append("],\"data_offsets\":[").append(off).append(',').append(off + n).append("]}");
            off += n;
        }
        h.append('}');
        while (h.length() % 8 != 0) {
            h.append(' ');
        }
        byte[] hb = h.toString().getBytes(StandardCharsets.UTF_8);
        try (OutputStream os = new java.io.BufferedOutputStream(Files.newOutputStream(file))) {
            os.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(hb.length).array());
            os.write(hb);
            for (HfTensor t : ts) {
                ByteBuffer b = ByteBuffer.allocate(t.values().length * esz).order(ByteOrder.LITTLE_ENDIAN);
                for (float x : t.values()) {
                    switch (dtype) {
                        case "F32" -> b.putFloat(x);
                        case "F16" -> b.putShort(Float.floatToFloat16(x));
                        default -> b.putShort(Quants.floatToBf16(x));
                    }
                }
                os.write(b.array());
            }
        }
        return off;
    }

    // ------------------------------------------------------------------ protobuf (SentencePiece ModelProto)

    private static void varint(ByteArrayOutputStream o, long v) {
        while ((v & ~0x7fL) != 0) {
            o.write((int) ((v & 0x7f) | 0x80));
            v >>>= 7;
        }
        o.write((int) v);
    }

    private static void tag(ByteArrayOutputStream o, int field, int wire) {
        varint(o, ((long) field << 3) | wire);
    }

    private static void bytes(ByteArrayOutputStream o, int field, byte[] b) {
        tag(o, field, 2);
        varint(o, b.length);
        o.writeBytes(b);
    }

    private static void uint(ByteArrayOutputStream o, int field, long v) {
        tag(o, field, 0);
        varint(o, v);
    }

    static byte[] sentencePiece(String[] pieces, Vocabulary v) {
        ByteArrayOutputStream m = new ByteArrayOutputStream();
        for (int i = 0; i < pieces.length; i++) {
            ByteArrayOutputStream p = new ByteArrayOutputStream();
            bytes(p, 1, pieces[i].getBytes(StandardCharsets.UTF_8));
            tag(p, 2, 5);
            p.writeBytes(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putFloat(v.scores()[i]).array());
            if (v.types()[i] != Vocabulary.TYPE_NORMAL) {
                uint(p, 3, v.types()[i]);
            }
            bytes(m, 1, p.toByteArray());
        }
        ByteArrayOutputStream t = new ByteArrayOutputStream();
        uint(t, 3, 2);                              // model_type BPE
        uint(t, 4, pieces.length);                  // vocab_size
        uint(t, 35, 1);                             // byte_fallback
        uint(t, 40, v.unk());
        uint(t, 41, v.bos());
        uint(t, 42, 2);
        uint(t, 43, -1L);                           // pad_id -1: int32 sign-extended to 10 bytes
        bytes(m, 2, t.toByteArray());
        ByteArrayOutputStream n = new ByteArrayOutputStream();
        bytes(n, 1, "identity".getBytes(StandardCharsets.UTF_8));
        uint(n, 3, v.addSpacePrefix() ? 1 : 0);
        uint(n, 4, 0);
        uint(n, 5, 1);
        bytes(m, 3, n.toByteArray());
        return m.toByteArray();
    }
}
