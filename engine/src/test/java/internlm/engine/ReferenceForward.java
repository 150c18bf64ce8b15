package internlm.engine;

import internlm.loader.LoadedModel;
import internlm.loader.ModelConfig;
import internlm.loader.TensorData;
import internlm.loader.quant.Quants;

import java.util.ArrayList;
import java.util.List;

/**
 * An independent, deliberately plain float64 implementation of the InternLM decoder (GGUF conventions: adjacent-pair
 * RoPE, grouped-query attention, SwiGLU), written from the spec for tests. It shares nothing with the CPU backend
 * except the scalar dequantizers (which are checked against ggml's reference files).
 */
public final class ReferenceForward {
    private final ModelConfig c;
    private final LoadedModel m;
    private final List<double[][]> keys = new ArrayList<>(), values = new ArrayList<>();

    public ReferenceForward(LoadedModel m) {
        this(m, m.config().contextLength());
    }

    /** A reference able to hold {@code capacity} positions (more than the trained window for dynamic NTK tests). */
    public ReferenceForward(LoadedModel m, int capacity) {
        this.m = m;
        this.c = m.config();
        for (int l = 0; l < c.layers(); l++) {
            keys.add(new double[capacity][]);
            values.add(new double[capacity][]);
        }
    }

    private float[] all(String name) {
        TensorData t = m.tensor(name);
        float[] v = new float[(int) t.elements()];
        Quants.dequantize(t.type(), t.data(), 0, v, 0, v.length);
        return v;
    }

    private float[] opt(String name) {
        return m.optionalTensor(name) == null ? null : all(name);
    }

    private static double[] matvec(float[] w, double[] x, int out) {
        int in = x.length;
        double[] y = new double[out];
        for (int r = 0; r < out; r++) {
            double s = 0;
            for (int i = 0; i < in; i++) {
                s += w[r * in + i] * x[i];
            }
            y[r] = s;
        }
        return y;
    }

    private double[] rmsnorm(double[] x, float[] w) {
        double ss = 0;
        for (double v : x) {
            ss += v * v;
        }
        double k = 1 / Math.sqrt(ss / x.length + c.rmsEps());
        double[] y = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            y[i] = x[i] * k * w[i];
        }
        return y;
    }

    private void rope(double[] v, int heads, int pos, double base) {
        int d = c.headDim();
        for (int h = 0; h < heads; h++) {
            for (int i = 0; i < d / 2; i++) {
                double theta = pos * Math.pow(base, -2.0 * i / d);
                double a = v[h * d + 2 * i], b = v[h * d + 2 * i + 1];
                v[h * d + 2 * i] = a * Math.cos(theta) - b * Math.sin(theta);
                v[h * d + 2 * i + 1] = a * Math.sin(theta) + b * Math.cos(theta);
            }
        }
    }

    private static void add(double[] y, float[] b) {
        if (b != null) {
            for (int i = 0; i < y.length; i++) {
                y[i] += b[i];
            }
        }
    }

    /** Logits after the token at position pos (earlier positions must have been run). */
    public double[] forward(int token, int pos, double ropeBase) {
        double[] xn = forwardHidden(token, pos, ropeBase);
        String out = m.optionalTensor("output.weight") != null ? "output.weight" : "token_embd.weight";
        return matvec(all(out), xn, c.vocabSize());
    }

    /** The hidden state after the final RMSNorm for the token at position pos (what the LM head or v_head reads). */
    public double[] forwardHidden(int token, int pos, double ropeBase) {
        int dim = c.dim(), hd = c.headDim(), group = c.groupSize();
        float[] emb = all("token_embd.weight");
        double[] x = new double[dim];
        for (int i = 0; i < dim; i++) {
            x[i] = emb[token * dim + i];
        }
        for (int l = 0; l < c.layers(); l++) {
            String p = "blk." + l + ".";
            double[] h = rmsnorm(x, all(p + "attn_norm.weight"));
            double[] q = matvec(all(p + "attn_q.weight"), h, c.qDim());
            double[] k = matvec(all(p + "attn_k.weight"), h, c.kvDim());
            double[] v = matvec(all(p + "attn_v.weight"), h, c.kvDim());
            add(q, opt(p + "attn_q.bias"));
            add(k, opt(p + "attn_k.bias"));
            add(v, opt(p + "attn_v.bias"));
            rope(q, c.heads(), pos, ropeBase);
            rope(k, c.kvHeads(), pos, ropeBase);
            keys.get(l)[pos] = k;
            values.get(l)[pos] = v;
            double[] att = new double[c.qDim()];
            for (int head = 0; head < c.heads(); head++) {
                int g = head / group;
                double[] sc = new double[pos + 1];
                double max = Double.NEGATIVE_INFINITY;
                for (int t = 0; t <= pos; t++) {
                    double s = 0;
                    for (int i = 0; i < hd; i++) {
                        s += q[head * hd + i] * keys.get(l)[t][g * hd + i];
                    }
                    sc[t] = s / Math.sqrt(hd);
                    max = Math.max(max, sc[t]);
                }
                double sum = 0;
                for (int t = 0; t <= pos; t++) {
                    sc[t] = Math.exp(sc[t] - max);
                    sum += sc[t];
                }
                for (int t = 0; t <= pos; t++) {
                    for (int i = 0; i < hd; i++) {
                        att[head * hd + i] += sc[t] / sum * values.get(l)[t][g * hd + i];
                    }
                }
            }
            double[] o = matvec(all(p + "attn_output.weight"), att, dim);
            add(o, opt(p + "attn_output.bias"));
            for (int i = 0; i < dim; i++) {
                x[i] += o[i];
            }
            double[] f = rmsnorm(x, all(p + "ffn_norm.weight"));
            double[] gate = matvec(all(p + "ffn_gate.weight"), f, c.ffn());
            double[] up = matvec(all(p + "ffn_up.weight"), f, c.ffn());
            for (int i = 0; i < gate.length; i++) {
                gate[i] = gate[i] / (1 + Math.exp(-gate[i])) * up[i];
            }
            double[] down = matvec(all(p + "ffn_down.weight"), gate, dim);
            for (int i = 0; i < dim; i++) {
                x[i] += down[i];
            }
        }
        return rmsnorm(x, all("output_norm.weight"));
    }
}
