package internlm.loader.synthetic;

import internlm.loader.gguf.GgmlType;
import internlm.loader.gguf.GgufWriter;
import internlm.loader.quant.Quants;

import java.io.IOException;
import java.io.OutputStream;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.UnaryOperator;

/**
 * Writes InternLM-shaped GGUF models with seeded random weights: a byte-level vocabulary (unk, s, /s, 256 byte
 * tokens, the six ChatML specials) and every tensor the model description needs. For tests of shapes the shared
 * fixtures do not cover (head_dim ≠ dim/heads, biases, 16:1 GQA, K-quant tensors) and for speed runs without
 * external tools. Weights are uniform in ±scale/sqrt(in) so activations stay O(1).
 */
public final class SyntheticGguf {

    /** What to write. {@code headDim} 0 means dim / heads. */
    public record Spec(String arch, int dim, int layers, int heads, int kvHeads, int headDim, int ffn, int ctx,
                       double ropeTheta, float rmsEps, GgmlType type, boolean qkvBias, long seed) {
        public int hd() {
            return headDim > 0 ? headDim : dim / heads;
        }

        public static Spec internlm2(int dim, int layers, int heads, int kvHeads, int ffn, GgmlType type, long seed) {
            return new Spec("internlm2", dim, layers, heads, kvHeads, 0, ffn, 2048, 1e6, 1e-5f, type, false, seed);
        }
    }

    public static final String[] CHATML = {"<|plugin|>", "<|interpreter|>", "<|action_end|>", "<|action_start|>", "<|im_end|>", "<|im_start|>"};

    private final Spec spec;
    private final Map<String, UnaryOperator<Tensor>> overrides = new LinkedHashMap<>();
    private final Map<String, Object> extraMetadata = new LinkedHashMap<>();
    private final List<String> extraTokens = new ArrayList<>();
    private final List<Integer> extraTokenTypes = new ArrayList<>();
    private final List<Tensor> extraTensors = new ArrayList<>();

    /** A tensor about to be written: its type, dims and float values (quantized on write). */
    public record Tensor(String name, GgmlType type, long[] dims, float[] values, byte[] raw) {}

    public SyntheticGguf(Spec spec) {
        this.spec = spec;
    }

    /** Replaces a tensor before it is written (tests: change its type, shape or bytes). */
    public SyntheticGguf override(String name, UnaryOperator<Tensor> f) {
        overrides.put(name, f);
        return this;
    }

    /** Adds or replaces a metadata value (String, Integer (u32), Float, Boolean; null removes). */
    public SyntheticGguf metadata(String key, Object value) {
        extraMetadata.put(key, value);
        return this;
    }

    /** Appends a token to the vocabulary (after the ChatML specials) with a llama.cpp token type (1 normal … 6 byte). */
    public SyntheticGguf extraToken(String piece, int type) {
        extraTokens.add(piece);
        extraTokenTypes.add(type);
        return this;
    }

    /** Adds a tensor the model description does not need (e.g. a reward model's {@code v_head.weight}). */
    public SyntheticGguf extraTensor(Tensor t) {
        extraTensors.add(t);
        return this;
    }

    public static String[] vocabulary() {
        List<String> v = new ArrayList<>(List.of("<unk>", "<s>", "</s>"));
        for (int b = 0; b < 256; b++) {
            v.add(String.format("<0x%02X>", b));
        }
        v.addAll(List.of(CHATML));
        return v.toArray(new String[0]);
    }

    public void write(Path out) throws IOException {
        Spec s = spec;
        String[] base = vocabulary();
        List<String> all = new ArrayList<>(List.of(base));
        all.addAll(extraTokens);
        String[] tokens = all.toArray(new String[0]);
        int n = tokens.length;
        int[] types = new int[n];
        float[] scores = new float[n];
        for (int i = 0; i < n; i++) {
            types[i] = i >= base.length ? extraTokenTypes.get(i - base.length) : i == 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 3;
        }
        String a = s.arch() + ".";
        GgufWriter w = new GgufWriter()
                .putString("general.architecture", s.arch())
                .putString("general.name", "synthetic " + s.arch() + " d" + s.dim() + " l" + s.layers())
                .putU32(a + "context_length", s.ctx())
                .putU32(a + "embedding_length", s.dim())
                .putU32(a + "block_count", s.layers())
                .putU32(a + "feed_forward_length", s.ffn())
                .putU32(a + "attention.head_count", s.heads())
                .putU32(a + "attention.head_count_kv", s.kvHeads())
                .putF32(a + "rope.freq_base", (float) s.ropeTheta())
                .putF32(a + "attention.layer_norm_rms_epsilon", s.rmsEps())
                .putString("tokenizer.ggml.model", "llama")
                .putStrings("tokenizer.ggml.tokens", tokens)
                .putFloats("tokenizer.ggml.scores", scores)
                .putInts("tokenizer.ggml.token_type", types)
                .putU32("tokenizer.ggml.bos_token_id", 1)
                .putU32("tokenizer.ggml.eos_token_id", 2)
                .putU32("tokenizer.ggml.unknown_token_id", 0)
                .putBool("tokenizer.ggml.add_bos_token", true)
                .putBool("tokenizer.ggml.add_space_prefix", false);
        if (s.headDim() > 0) {
            w.putU32(a + "attention.key_length", s.hd()).putU32(a + "attention.value_length", s.hd());
        }
        for (Map.Entry<String, Object> e : extraMetadata.entrySet()) {
            switch (e.getValue()) {
                case String v -> w.putString(e.getKey(), v);
                case Integer v -> w.putU32(e.getKey(), v);
                case Float v -> w.putF32(e.getKey(), v);
                case Boolean v -> w.putBool(e.getKey(), v);
                case null -> { }
                default -> throw new IllegalArgumentException(e.getKey());
            }
        }
        int q = s.heads() * s.hd(), kv = s.kvHeads() * s.hd();
        SplittableRandom rnd = new SplittableRandom(s.seed());
        List<Tensor> ts = new ArrayList<>();
        ts.add(matrix("token_embd.weight", s.dim(), n, 1.0f, rnd));
        for (int l = 0; l < s.layers(); l++) {
            String p = "blk." + l + ".";
            ts.add(norm(p + "attn_norm.weight", s.dim(), rnd));
            ts.add(matrix(p + "attn_q.weight", s.dim(), q, 1, rnd));
            ts.add(matrix(p + "attn_k.weight", s.dim(), kv, 1, rnd));
            ts.add(matrix(p + "attn_v.weight", s.dim(), kv, 1, rnd));
            ts.add(matrix(p + "attn_output.weight", q, s.dim(), 1, rnd));
            if (s.qkvBias()) {
                ts.add(vector(p + "attn_q.bias", q, 0.5f, rnd));
                ts.add(vector(p + "attn_k.bias", kv, 0.5f, rnd));
                ts.add(vector(p + "attn_v.bias", kv, 0.5f, rnd));
                ts.add(vector(p + "attn_output.bias", s.dim(), 0.5f, rnd));
            }
            ts.add(norm(p + "ffn_norm.weight", s.dim(), rnd));
            ts.add(matrix(p + "ffn_gate.weight", s.dim(), s.ffn(), 1, rnd));
            ts.add(matrix(p + "ffn_up.weight", s.dim(), s.ffn(), 1, rnd));
            ts.add(matrix(p + "ffn_down.weight", s.ffn(), s.dim(), 1, rnd));
        }
        ts.add(norm("output_norm.weight", s.dim(), rnd));
        ts.add(matrix("output.weight", s.dim(), n, 4, rnd));
        ts.addAll(extraTensors);
        for (Tensor t : ts) {
            UnaryOperator<Tensor> f = overrides.get(t.name());
            Tensor t2 = f == null ? t : f.apply(t);
            if (t2 == null) {
                continue;
            }
            w.addTensor(t2.name(), t2.type(), t2.dims(), bytesOf(t2));
        }
        w.write(out);
    }

    private Tensor matrix(String name, int in, int out, float gain, SplittableRandom rnd) {
        float[] v = new float[in * out];
        float scale = (float) (gain * Math.sqrt(3.0 / in));
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) ((rnd.nextDouble() * 2 - 1) * scale);
        }
        GgmlType t = spec.type();
        if ((t == GgmlType.Q8_0 || t == GgmlType.Q4_0) && in % 32 != 0) {
            t = GgmlType.F16;
        }
        return new Tensor(name, t, new long[] {in, out}, v, null);
    }

    private static Tensor norm(String name, int n, SplittableRandom rnd) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (0.8 + 0.4 * rnd.nextDouble());
        }
        return new Tensor(name, GgmlType.F32, new long[] {n}, v, null);
    }

    private static Tensor vector(String name, int n, float scale, SplittableRandom rnd) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) ((rnd.nextDouble() * 2 - 1) * scale);
        }
        return new Tensor(name, GgmlType.F32, new long[] {n}, v, null);
    }

    /** The bytes of a tensor: its raw bytes when given, else its values encoded in its type. */
    public static GgufWriter.TensorBytes bytesOf(Tensor t) {
        if (t.raw() != null) {
            return o -> o.write(t.raw());
        }
        return o -> encode(t.type(), t.values(), o);
    }

    public static void encode(GgmlType type, float[] v, OutputStream o) throws IOException {
        switch (type) {
            case F32 -> {
                ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
                for (float f : v) {
                    b.putFloat(f);
                }
                o.write(b.array());
            }
            case F16, BF16 -> {
                ByteBuffer b = ByteBuffer.allocate(2 * v.length).order(ByteOrder.LITTLE_ENDIAN);
                for (float f : v) {
                    b.putShort(type == GgmlType.F16 ? Float.floatToFloat16(f) : Quants.floatToBf16(f));
                }
                o.write(b.array());
            }
            case Q8_0, Q4_0 -> {
                byte[] out = new byte[(int) type.byteSize(v.length)];
                MemorySegment seg = MemorySegment.ofArray(out);
                if (type == GgmlType.Q8_0) {
                    Quants.quantizeQ8_0(v, 0, v.length, seg, 0);
                } else {
                    Quants.quantizeQ4_0(v, 0, v.length, seg, 0);
                }
                o.write(out);
            }
            default -> throw new IllegalArgumentException("cannot encode " + type);
        }
    }
}
