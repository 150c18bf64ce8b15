package internlm.engine.tornado;

import internlm.engine.model.Backend;
import internlm.engine.model.Batch;
import internlm.engine.model.Rope;
import internlm.kernels.DeviceLayouts;
import internlm.kernels.KernelSupport;
import internlm.kernels.LayerKernels;
import internlm.kernels.MatVecKernels;
import internlm.loader.LoadedModel;
import internlm.loader.ModelConfig;
import internlm.loader.Progress;
import internlm.loader.TensorData;
import internlm.loader.quant.Quants;
import uk.ac.manchester.tornado.api.GridScheduler;
import uk.ac.manchester.tornado.api.ImmutableTaskGraph;
import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.TaskGraph;
import uk.ac.manchester.tornado.api.TornadoExecutionPlan;
import uk.ac.manchester.tornado.api.TornadoExecutionResult;
import uk.ac.manchester.tornado.api.WorkerGrid1D;
import uk.ac.manchester.tornado.api.common.TornadoDevice;
import uk.ac.manchester.tornado.api.enums.DataTransferMode;
import uk.ac.manchester.tornado.api.enums.ProfilerMode;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;
import uk.ac.manchester.tornado.api.types.arrays.ShortArray;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The GPU backend: the transformer as TornadoVM task graphs of the Java kernels in {@code tornado-kernels}, built by
 * one builder from the model description for every family and weight type. One execution plan holds an embedding
 * graph, one graph per layer and a logits graph. Weights and the KV cache are copied to the device once
 * (FIRST_EXECUTION); activations stay on the device between graphs (persist/consume); per token only the
 * {token, position} pair and the RoPE cos/sin table travel to the device, and only one int (the argmax) travels back
 * when decoding greedily. The KV cache is sized once (the context given at load) and serves one sequence at a time.
 */
public final class TornadoBackend implements Backend {

    /**
     * Settings: context to size the KV cache for, sequences to hold at once (this backend holds one today), device
     * "B:D" (null = TornadoVM's default), KV cache in F16, round activations like llama.cpp, profile kernels.
     */
    public record Settings(int context, int sequences, String device, boolean kvCacheF16, boolean roundActivations, boolean profile) {}

    private final ModelConfig c;
    private final Settings settings;
    private final int capacity;
    private final TornadoExecutionPlan plan;
    private final GridScheduler grid = new GridScheduler();
    private final int graphs;
    private final IntArray state = new IntArray(2);
    private final FloatArray rope;
    private final FloatArray logits;
    private final IntArray result = new IntArray(1);
    /** The logits graph's normalised final hidden state (reward heads read it). */
    private FloatArray hidden;
    /** Powers of two for decoding half-precision bits in kernels (F16 weights, F16 KV cache). */
    private final FloatArray pow2 = KernelSupport.halfTable();
    /** Use native half loads (devices with cl_khr_fp16 / CUDA) instead of decoding bits: -Dinternlm.tornado.nativeHalf=true. */
    private final boolean nativeHalf = Boolean.getBoolean("internlm.tornado.nativeHalf");
    private final String deviceName;
    private final Map<String, long[]> profile = new LinkedHashMap<>();
    private long tokens;

    public TornadoBackend(LoadedModel model, Settings settings, Progress progress) {
        String why = TornadoSupport.unavailableReason();
        if (why != null) {
            throw new IllegalStateException(why);
        }
        this.c = model.config();
        this.settings = settings;
        this.capacity = settings.context();
        if (c.headDim() > KernelSupport.MAX_HEAD_DIM) {
            throw new IllegalArgumentException("head dimension " + c.headDim() + " exceeds the TornadoVM kernels' limit of " + KernelSupport.MAX_HEAD_DIM);
        }
        long need = deviceBytes(model, settings);
        TornadoSupport.prepareRuntime(need);
        int[] dev = TornadoSupport.parseDevice(settings.device());
        TornadoDevice device = dev == null ? null : TornadoExecutionPlan.getDevice(dev[0], dev[1]);
        TornadoDevice probe = device != null ? device : TornadoExecutionPlan.getDevice(0, 0);
        this.deviceName = probe.getPhysicalDevice().getDeviceName();
        long available = probe.getMaxGlobalMemory();
        if (available > 0 && need > available) {
            throw new IllegalArgumentException(String.format("the model needs %.2f GiB on the device (weights, KV cache for %d tokens, buffers) but %s has %.2f GiB: "
                    + "use a smaller --ctx, --kv-cache f16, a smaller quantization, or --backend cpu", need / 1073741824.0, capacity, deviceName, available / 1073741824.0));
        }
        this.rope = new FloatArray(c.headDim());
        this.ropeScratch = new float[c.headDim()];
        this.logits = new FloatArray(c.vocabSize());
        List<ImmutableTaskGraph> list = new Builder(model, progress).build();
        this.graphs = list.size();
        TornadoExecutionPlan p = new TornadoExecutionPlan(list.toArray(new ImmutableTaskGraph[0]));
        if (device != null) {
            p.withDevice(device);
        }
        if (settings.profile()) {
            p.withProfiler(ProfilerMode.SILENT);
        }
        this.plan = p;
        progress.update("compiling the kernels for " + deviceName, 0, 1);
        plan.withPreCompilation();
        progress.update("compiling the kernels for " + deviceName, 1, 1);
        // warm-up: one full step pushes the weights to the device (FIRST_EXECUTION) and JIT-compiles everything
        progress.update("copying the weights to the device", 0, 1);
        step(Math.max(0, model.vocab().bos()), 0, c.ropeTheta(), true);
        progress.update("copying the weights to the device", 1, 1);
        profile.clear();
        perTask.clear();
        tokens = 0;
    }

    @Override
    public String name() {
        return "tornado";
    }

    @Override
    public int vocabularySize() {
        return c.vocabSize();
    }

    @Override
    public int maxSequences() {
        return 1;
    }

    @Override
    public String report() {
        return profileSummary();
    }

    @Override
    public String description() {
        return "TornadoVM on " + deviceName + " (KV cache " + (settings.kvCacheF16() ? "F16" : "F32") + ", " + capacity + " tokens)";
    }

    // ------------------------------------------------------------------ sizes

    static long deviceBytes(LoadedModel m, Settings s) {
        ModelConfig c = m.config();
        long total = 0;
        for (TensorData t : m.tensors().values()) {
            total += t.dims().length == 1 ? 4 * t.elements() : DeviceMatrix.deviceBytes(t);
        }
        if (m.optionalTensor("output.weight") == null) {
            total += DeviceMatrix.deviceBytes(m.tensor("token_embd.weight"));
        }
        total += 2L * c.layers() * s.context() * c.kvDim() * (s.kvCacheF16() ? 2 : 4);
        total += 4L * (6L * Math.max(Math.max(c.dim(), c.qDim()), c.ffn()) + 2L * c.vocabSize());
        return total;
    }

    private static int roundUp(int n, int m) {
        return (n + m - 1) / m * m;
    }

    private static int pow2AtLeast(int n) {
        return n <= 1 ? 1 : Integer.highestOneBit(n - 1) << 1;
    }

    // ------------------------------------------------------------------ the one graph builder

    private final class Builder {
        private final LoadedModel m;
        private final Progress progress;
        private final int local;        // work-items per row of a mat-vec
        private final int attLocal;     // work-items per attention head
        private final int normLocal = KernelSupport.MAX_LOCAL;
        private static final int ARGMAX_GROUPS = 64;
        /** The residual stream: the only activation that flows from graph to graph. */
        private final FloatArray x;
        /** Work buffers of the graph being built (each graph has its own: they never cross graphs). */
        private FloatArray xb, xr, q, k, v, att, hb;
        private final FloatArray argVal = new FloatArray(ARGMAX_GROUPS);
        private final IntArray argIdx = new IntArray(ARGMAX_GROUPS);
        private long packed, toPack;

        Builder(LoadedModel m, Progress progress) {
            this.m = m;
            this.progress = progress;
            String lower = deviceName.toLowerCase();
            int dflt = lower.contains("nvidia") || lower.contains("tesla") || lower.contains("geforce") || lower.matches(".*\\b[hab]100.*") ? 128 : 64;
            this.local = Integer.getInteger("internlm.tornado.local", dflt);
            if (Integer.bitCount(local) != 1 || local > KernelSupport.MAX_LOCAL || local < 8) {
                throw new IllegalArgumentException("internlm.tornado.local must be a power of two between 8 and " + KernelSupport.MAX_LOCAL);
            }
            this.attLocal = Math.max(32, pow2AtLeast(c.headDim()));
            x = new FloatArray(c.dim());
            for (TensorData t : m.tensors().values()) {
                if (t.dims().length > 1) {
                    toPack += t.data().byteSize();
                }
            }
        }

        /** Fresh work buffers for the next graph. */
        private void newScratch() {
            int wide = Math.max(Math.max(c.dim(), c.qDim()), c.ffn());
            xb = new FloatArray(Math.max(c.dim(), c.qDim()));
            xr = new FloatArray(wide);
            q = new FloatArray(c.qDim());
            k = new FloatArray(c.kvDim());
            v = new FloatArray(c.kvDim());
            att = new FloatArray(c.qDim());
            hb = new FloatArray(c.ffn());
        }

        /** pow2 is needed by a graph that decodes half-precision bits. */
        private boolean needsHalfTable(DeviceMatrix... ms) {
            for (DeviceMatrix m : ms) {
                if (m.kind() == DeviceMatrix.Kind.F16_BITS) {
                    return true;
                }
            }
            return false;
        }

        private DeviceMatrix matrix(String name) {
            TensorData t = m.tensor(name);
            DeviceMatrix d = DeviceMatrix.of(t, nativeHalf);
            packed += t.data().byteSize();
            progress.update("preparing weights for the device", packed, toPack);
            return d;
        }

        private FloatArray vector(String name) {
            TensorData t = m.tensor(name);
            float[] f = new float[(int) t.elements()];
            Quants.dequantize(t.type(), t.data(), 0, f, 0, f.length);
            return DeviceLayouts.floats(f);
        }

        private void grid(String graph, String task, int global, int localSize) {
            WorkerGrid1D w = new WorkerGrid1D(roundUp(global, localSize));
            w.setLocalWork(localSize, 1, 1);
            grid.addWorkerGrid(graph + "." + task, w);
        }

        /** The input a matrix reads: x, or x rounded to the Q8_0 grid into xr (a task added here). */
        private FloatArray input(TaskGraph g, String graph, String task, DeviceMatrix w, KernelContext ctx, FloatArray in, int n) {
            if (!settings.roundActivations() || !w.quantized()) {
                return in;
            }
            g.task(task, LayerKernels::roundQ8, ctx, in, xr, n);
            grid(graph, task, n / 32 + 1, 32);
            return xr;
        }

        private void matvec(TaskGraph g, String graph, String task, DeviceMatrix w, KernelContext ctx, FloatArray in, FloatArray out, boolean residual) {
            int r = w.rows(), cols = w.cols();
            switch (w.kind()) {
                case F32 -> {
                    if (residual) {
                        g.task(task, MatVecKernels::matvecResidualF32, ctx, w.floats(), in, out, r, cols);
                    } else {
                        g.task(task, MatVecKernels::matvecF32, ctx, w.floats(), in, out, r, cols);
                    }
                }
                case F16 -> {
                    if (residual) {
                        g.task(task, MatVecKernels::matvecResidualF16, ctx, w.halves(), in, out, r, cols);
                    } else {
                        g.task(task, MatVecKernels::matvecF16, ctx, w.halves(), in, out, r, cols);
                    }
                }
                case F16_BITS -> {
                    if (residual) {
                        g.task(task, MatVecKernels::matvecResidualF16Bits, ctx, w.bits(), pow2, in, out, r, cols);
                    } else {
                        g.task(task, MatVecKernels::matvecF16Bits, ctx, w.bits(), pow2, in, out, r, cols);
                    }
                }
                case Q8 -> {
                    if (residual) {
                        g.task(task, MatVecKernels::matvecResidualQ8, ctx, w.quants(), w.scales(), in, out, r, cols);
                    } else {
                        g.task(task, MatVecKernels::matvecQ8, ctx, w.quants(), w.scales(), in, out, r, cols);
                    }
                }
                case Q4 -> {
                    if (residual) {
                        g.task(task, MatVecKernels::matvecResidualQ4, ctx, w.quants(), w.scales(), in, out, r, cols);
                    } else {
                        g.task(task, MatVecKernels::matvecQ4, ctx, w.quants(), w.scales(), in, out, r, cols);
                    }
                }
            }
            grid(graph, task, r * local, local);
        }

        List<ImmutableTaskGraph> build() {
            List<ImmutableTaskGraph> out = new ArrayList<>();
            int dim = c.dim(), qDim = c.qDim(), kvDim = c.kvDim(), ffn = c.ffn(), hd = c.headDim();
            float eps = c.rmsEps();

            // embedding: x = token_embd[token]
            DeviceMatrix emb = matrix("token_embd.weight");
            KernelContext ectx = new KernelContext();
            TaskGraph e = new TaskGraph("embed")
                    .transferToDevice(DataTransferMode.EVERY_EXECUTION, state)
                    .transferToDevice(DataTransferMode.FIRST_EXECUTION, emb.arrays());
            if (needsHalfTable(emb)) {
                e.transferToDevice(DataTransferMode.FIRST_EXECUTION, pow2);
            }
            switch (emb.kind()) {
                case F32 -> e.task("embed", LayerKernels::embedF32, ectx, emb.floats(), state, x, dim);
                case F16 -> e.task("embed", LayerKernels::embedF16, ectx, emb.halves(), state, x, dim);
                case F16_BITS -> e.task("embed", LayerKernels::embedF16Bits, ectx, emb.bits(), pow2, state, x, dim);
                case Q8 -> e.task("embed", LayerKernels::embedQ8, ectx, emb.quants(), emb.scales(), state, x, dim);
                case Q4 -> e.task("embed", LayerKernels::embedQ4, ectx, emb.quants(), emb.scales(), state, x, dim);
            }
            grid("embed", "embed", dim, 64);
            e.persistOnDevice(state, x);
            out.add(e.snapshot());

            // state and x come from the previous graph; rope is copied in by the first layer graph every step
            String prev = "embed";
            for (int l = 0; l < c.layers(); l++) {
                String name = "layer" + l, p = "blk." + l + ".";
                KernelContext ctx = new KernelContext();
                TaskGraph g = new TaskGraph(name);
                if (l == 0) {
                    g.consumeFromDevice(prev, state, x);
                    g.transferToDevice(DataTransferMode.EVERY_EXECUTION, rope);
                } else {
                    g.consumeFromDevice(prev, state, x, rope);
                }
                newScratch();
                g.transferToDevice(DataTransferMode.FIRST_EXECUTION, xb, xr, q, k, v, att, hb);
                FloatArray attnNorm = vector(p + "attn_norm.weight"), ffnNorm = vector(p + "ffn_norm.weight");
                DeviceMatrix wq = matrix(p + "attn_q.weight"), wk = matrix(p + "attn_k.weight"), wv = matrix(p + "attn_v.weight");
                DeviceMatrix wo = matrix(p + "attn_output.weight");
                DeviceMatrix gate = matrix(p + "ffn_gate.weight"), up = matrix(p + "ffn_up.weight"), down = matrix(p + "ffn_down.weight");
                if (wk.kind() != wq.kind() || wv.kind() != wq.kind() || up.kind() != gate.kind()) {
                    throw new IllegalArgumentException("layer " + l + " mixes weight types within Q/K/V or gate/up, which the fused TornadoVM kernels do not support");
                }
                Object kCache = settings.kvCacheF16() ? new ShortArray(capacity * kvDim) : new FloatArray(capacity * kvDim);
                Object vCache = settings.kvCacheF16() ? new ShortArray(capacity * kvDim) : new FloatArray(capacity * kvDim);
                List<Object> consts = new ArrayList<>(List.of(attnNorm, ffnNorm, kCache, vCache));
                for (DeviceMatrix w : new DeviceMatrix[] {wq, wk, wv, wo, gate, up, down}) {
                    consts.addAll(List.of(w.arrays()));
                }
                FloatArray bq = null, bk = null, bv = null, bo = null;
                if (c.qkvBias()) {
                    bq = vector(p + "attn_q.bias");
                    bk = vector(p + "attn_k.bias");
                    bv = vector(p + "attn_v.bias");
                    consts.addAll(List.of(bq, bk, bv));
                }
                if (c.outBias()) {
                    bo = vector(p + "attn_output.bias");
                    consts.add(bo);
                }
                if (settings.kvCacheF16() || needsHalfTable(wq, wo, gate, down)) {
                    consts.add(pow2);
                }
                g.transferToDevice(DataTransferMode.FIRST_EXECUTION, consts.toArray());

                // attention block
                g.task("attn_norm", LayerKernels::rmsNorm, ctx, x, attnNorm, xb, dim, eps);
                grid(name, "attn_norm", normLocal, normLocal);
                FloatArray in = input(g, name, "attn_round", wq, ctx, xb, dim);
                int kvRows = kvDim;
                switch (wq.kind()) {
                    case F32 -> g.task("qkv", MatVecKernels::qkvF32, ctx, wq.floats(), wk.floats(), wv.floats(), in, q, k, v, qDim, kvRows, dim);
                    case F16 -> g.task("qkv", MatVecKernels::qkvF16, ctx, wq.halves(), wk.halves(), wv.halves(), in, q, k, v, qDim, kvRows, dim);
                    case F16_BITS -> g.task("qkv", MatVecKernels::qkvF16Bits, ctx, wq.bits(), wk.bits(), wv.bits(), pow2, in, q, k, v, qDim, kvRows, dim);
                    case Q8 -> g.task("qkv", MatVecKernels::qkvQ8, ctx, wq.quants(), wq.scales(), wk.quants(), wk.scales(), wv.quants(), wv.scales(), in, q, k, v, qDim, kvRows, dim);
                    case Q4 -> g.task("qkv", MatVecKernels::qkvQ4, ctx, wq.quants(), wq.scales(), wk.quants(), wk.scales(), wv.quants(), wv.scales(), in, q, k, v, qDim, kvRows, dim);
                }
                grid(name, "qkv", (qDim + 2 * kvDim) * local, local);
                if (c.qkvBias()) {
                    g.task("bias_q", LayerKernels::addBias, ctx, q, bq, qDim);
                    g.task("bias_k", LayerKernels::addBias, ctx, k, bk, kvDim);
                    g.task("bias_v", LayerKernels::addBias, ctx, v, bv, kvDim);
                    grid(name, "bias_q", qDim, 64);
                    grid(name, "bias_k", kvDim, 64);
                    grid(name, "bias_v", kvDim, 64);
                }
                if (settings.kvCacheF16()) {
                    g.task("rope_kv", LayerKernels::ropeKvF16, ctx, q, k, v, (ShortArray) kCache, (ShortArray) vCache, rope, state, qDim, kvDim, hd);
                    g.task("attention", LayerKernels::attentionF16, ctx, q, (ShortArray) kCache, (ShortArray) vCache, pow2, att, state, c.heads(), c.kvHeads(), hd);
                } else {
                    g.task("rope_kv", LayerKernels::ropeKv, ctx, q, k, v, (FloatArray) kCache, (FloatArray) vCache, rope, state, qDim, kvDim, hd);
                    g.task("attention", LayerKernels::attention, ctx, q, (FloatArray) kCache, (FloatArray) vCache, att, state, c.heads(), c.kvHeads(), hd);
                }
                grid(name, "rope_kv", Math.max(qDim / 2, kvDim), 64);
                grid(name, "attention", c.heads() * attLocal, attLocal);
                matvec(g, name, "out_proj", wo, ctx, input(g, name, "out_round", wo, ctx, att, qDim), x, true);
                if (c.outBias()) {
                    g.task("bias_o", LayerKernels::addBias, ctx, x, bo, dim);
                    grid(name, "bias_o", dim, 64);
                }
                // feed-forward block
                g.task("ffn_norm", LayerKernels::rmsNorm, ctx, x, ffnNorm, xb, dim, eps);
                grid(name, "ffn_norm", normLocal, normLocal);
                FloatArray fin = input(g, name, "ffn_round", gate, ctx, xb, dim);
                switch (gate.kind()) {
                    case F32 -> g.task("swiglu", MatVecKernels::swigluF32, ctx, gate.floats(), up.floats(), fin, hb, ffn, dim);
                    case F16 -> g.task("swiglu", MatVecKernels::swigluF16, ctx, gate.halves(), up.halves(), fin, hb, ffn, dim);
                    case F16_BITS -> g.task("swiglu", MatVecKernels::swigluF16Bits, ctx, gate.bits(), up.bits(), pow2, fin, hb, ffn, dim);
                    case Q8 -> g.task("swiglu", MatVecKernels::swigluQ8, ctx, gate.quants(), gate.scales(), up.quants(), up.scales(), fin, hb, ffn, dim);
                    case Q4 -> g.task("swiglu", MatVecKernels::swigluQ4, ctx, gate.quants(), gate.scales(), up.quants(), up.scales(), fin, hb, ffn, dim);
                }
                grid(name, "swiglu", ffn * local, local);
                matvec(g, name, "down", down, ctx, input(g, name, "down_round", down, ctx, hb, ffn), x, true);
                g.persistOnDevice(state, x, rope);
                out.add(g.snapshot());
                prev = name;
            }

            // logits: final norm, LM head, argmax
            KernelContext lctx = new KernelContext();
            FloatArray outNorm = vector("output_norm.weight");
            DeviceMatrix head = matrix(m.optionalTensor("output.weight") != null ? "output.weight" : "token_embd.weight");
            newScratch();
            TaskGraph lg = new TaskGraph("logits")
                    .consumeFromDevice(prev, x)
                    .transferToDevice(DataTransferMode.FIRST_EXECUTION, xb, outNorm, logits, argVal, argIdx, result)
                    .transferToDevice(DataTransferMode.FIRST_EXECUTION, head.arrays());
            if (needsHalfTable(head)) {
                lg.transferToDevice(DataTransferMode.FIRST_EXECUTION, pow2);
            }
            if (settings.roundActivations() && head.quantized()) {
                lg.transferToDevice(DataTransferMode.FIRST_EXECUTION, xr);
            }
            lg.task("final_norm", LayerKernels::rmsNorm, lctx, x, outNorm, xb, dim, eps);
            grid("logits", "final_norm", normLocal, normLocal);
            matvec(lg, "logits", "lm_head", head, lctx, input(lg, "logits", "head_round", head, lctx, xb, dim), logits, false);
            lg.task("argmax_partial", LayerKernels::argmaxPartial, lctx, logits, argVal, argIdx, c.vocabSize());
            grid("logits", "argmax_partial", ARGMAX_GROUPS * 256, 256);
            lg.task("argmax_final", LayerKernels::argmaxFinal, lctx, argVal, argIdx, result, ARGMAX_GROUPS);
            grid("logits", "argmax_final", 64, 64);
            lg.transferToHost(DataTransferMode.EVERY_EXECUTION, result);
            lg.transferToHost(DataTransferMode.UNDER_DEMAND, logits, xb);
            hidden = xb;
            out.add(lg.snapshot());
            progress.update("preparing weights for the device", toPack, toPack);
            return out;
        }
    }

    // ------------------------------------------------------------------ execution

    private static final class TornadoSequence implements Sequence {
        private final TornadoBackend owner;
        private final int capacity;
        private boolean closed;

        TornadoSequence(TornadoBackend owner, int capacity) {
            this.owner = owner;
            this.capacity = capacity;
        }

        @Override
        public int capacity() {
            return capacity;
        }

        @Override
        public void close() {
            synchronized (owner) {
                if (!closed) {
                    closed = true;
                    owner.open = null;
                }
            }
        }
    }

    private TornadoSequence open;

    @Override
    public synchronized Sequence openSequence(int capacity) {
        if (capacity > this.capacity) {
            throw new IllegalArgumentException("the TornadoVM backend was prepared for a context of " + this.capacity
                    + " tokens (--ctx at load); a sequence of " + capacity + " does not fit");
        }
        if (open != null) {
            throw new IllegalStateException("the TornadoVM backend holds one sequence at a time on the device (close the other session first)");
        }
        open = new TornadoSequence(this, capacity);
        return open;
    }

    @Override
    public int hiddenSize() {
        return c.dim();
    }

    private final float[] ropeScratch;

    /** Fills the cos/sin table for a position (see {@link Rope#table}). */
    private void ropeTable(int pos, double base) {
        Rope.table(c, pos, base, ropeScratch, 0);
        for (int i = 0; i < ropeScratch.length; i++) {
            rope.set(i, ropeScratch[i]);
        }
    }

    /** Runs one token through the embedding and layer graphs, and through the logits graph when asked. */
    private TornadoExecutionResult step(int token, int pos, double base, boolean withLogits) {
        if (token < 0 || token >= c.vocabSize()) {
            throw new IllegalArgumentException("token id " + token + " is outside the vocabulary (0.." + (c.vocabSize() - 1) + ")");
        }
        if (pos >= capacity) {
            throw new IllegalArgumentException("position " + pos + " is past the context of " + capacity + " tokens");
        }
        state.set(0, token);
        state.set(1, pos);
        ropeTable(pos, base);
        TornadoExecutionResult r = null;
        int last = withLogits ? graphs : graphs - 1;
        for (int i = 0; i < last; i++) {
            r = plan.withGraph(i).withGridScheduler(grid).execute();
            if (settings.profile()) {
                record(i, r);
            }
        }
        tokens++;
        return r;
    }

    private void record(int graph, TornadoExecutionResult r) {
        String key = graph == 0 ? "embed" : graph == graphs - 1 ? "logits" : "layers";
        long[] acc = profile.computeIfAbsent(key, x -> new long[3]);
        var pr = r.getProfilerResult();
        acc[0] += pr.getDeviceKernelTime();
        acc[1] += pr.getDataTransfersTime();
        acc[2] += pr.getTotalTime();
        // per-kernel times from the profiler's JSON log: {graph: {"graph.task": {"TASK_KERNEL_TIME": ns, "METHOD": ...}}}
        try {
            var root = JSON.readTree(pr.getProfileLog());
            for (var g : root) {
                for (var it = g.properties().iterator(); it.hasNext(); ) {
                    var e = it.next();
                    if (e.getValue().isObject() && e.getValue().has("TASK_KERNEL_TIME")) {
                        String task = e.getKey().substring(e.getKey().indexOf('.') + 1);
                        long[] t = perTask.computeIfAbsent(task, x -> new long[2]);
                        t[0] += e.getValue().get("TASK_KERNEL_TIME").asLong();
                        t[1]++;
                    }
                }
            }
        } catch (Exception e) {
            // a profile log we cannot read only loses the per-kernel table
        }
    }

    private static final com.fasterxml.jackson.databind.ObjectMapper JSON = new com.fasterxml.jackson.databind.ObjectMapper();
    private final Map<String, long[]> perTask = new LinkedHashMap<>();

    /** Runs the rows one at a time, in order (one sequence; batched graphs are future work). */
    @Override
    public synchronized void forward(Batch batch) {
        batch.validate(c.vocabSize(), c.dim());
        for (int i = 0; i < batch.size(); i++) {
            if (batch.sequence(i) != open || open == null) {
                throw new IllegalArgumentException("row " + i + " belongs to a sequence that is closed or was not opened on this backend");
            }
        }
        for (int i = 0; i < batch.size(); i++) {
            Batch.Output o = batch.output(i);
            TornadoExecutionResult r = step(batch.token(i), batch.position(i), batch.ropeBase(i), o != Batch.Output.NONE);
            switch (o) {
                case NONE -> { }
                case ARGMAX -> batch.setArgmax(i, result.get(0));
                case LOGITS -> {
                    r.transferToHost(logits);
                    float[] out = batch.destination(i);
                    for (int j = 0; j < c.vocabSize(); j++) {
                        out[j] = logits.get(j);
                    }
                    batch.setArgmax(i, result.get(0));
                }
                case HIDDEN -> {
                    r.transferToHost(hidden);
                    float[] out = batch.destination(i);
                    for (int j = 0; j < c.dim(); j++) {
                        out[j] = hidden.get(j);
                    }
                }
            }
        }
    }

    /** Device time per token by graph group (kernel ms, transfer ms, total ms), when profiling. */
    public synchronized String profileSummary() {
        if (!settings.profile() || tokens == 0) {
            return "";
        }
        StringBuilder sb = new StringBuilder(String.format("TornadoVM profile over %d tokens (per token):%n", tokens));
        for (Map.Entry<String, long[]> e : profile.entrySet()) {
            long[] a = e.getValue();
            sb.append(String.format("  %-7s kernels %8.3f ms, transfers %8.3f ms, total %8.3f ms%n", e.getKey(),
                    a[0] / 1e6 / tokens, a[1] / 1e6 / tokens, a[2] / 1e6 / tokens));
        }
        long all = perTask.values().stream().mapToLong(a -> a[0]).sum();
        if (all > 0) {
            sb.append("  kernels (all layers together, per token):\n");
            perTask.entrySet().stream().sorted((x, y) -> Long.compare(y.getValue()[0], x.getValue()[0])).forEach(e ->
                    sb.append(String.format("    %-15s %8.3f ms  %5.1f %%%n", e.getKey(), e.getValue()[0] / 1e6 / tokens, 100.0 * e.getValue()[0] / all)));
        }
        return sb.toString();
    }

    @Override
    public void close() {
        try {
            plan.freeDeviceMemory();
            plan.close();
        } catch (Exception e) {
            // the device memory goes with the process anyway
        }
    }
}
