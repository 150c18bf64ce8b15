package internlm.engine.tornado;

import internlm.kernels.BatchKernels;
import internlm.kernels.BatchLayout;
import internlm.kernels.DeviceLayouts;
import internlm.kernels.KernelSupport;
import internlm.kernels.SamplingKernels;
import internlm.loader.LoadedModel;
import internlm.loader.ModelConfig;
import internlm.loader.Progress;
import internlm.loader.TensorData;
import internlm.loader.quant.Quants;
import uk.ac.manchester.tornado.api.GridScheduler;
import uk.ac.manchester.tornado.api.ImmutableTaskGraph;
import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.TaskGraph;
import uk.ac.manchester.tornado.api.WorkerGrid1D;
import uk.ac.manchester.tornado.api.enums.DataTransferMode;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;

import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;

/**
 * Builds the task graphs of the transformer from the model description, for every family and weight type: an
 * embedding graph, one graph per layer and a logits graph, all for batches of up to {@link Shape#rows} rows (the row
 * count is data in {@code meta}, so they compile once). Weights and KV caches go to the device once
 * (FIRST_EXECUTION); the residual stream, meta and the RoPE tables cross from graph to graph on the device
 * (persist/consume); per batch only meta, the RoPE tables and the sampling parameters travel to the device, and back
 * only the argmax or sampled ids, or the logits / hidden states of the rows that ask for them. Execution is {@link TornadoBackend}'s.
 */
final class GraphBuilder {

    /** Sizes fixed at load: rows per batch, output rows per batch, sequence slots, positions per slot, KV precision. */
    record Shape(int rows, int outputs, int slots, int capacity, boolean kvF16, boolean roundActivations) {}

    /** What the builder hands to execution: the graphs, their grids and the host-side arrays execution fills or reads. */
    static final class Graphs {
        final List<ImmutableTaskGraph> graphs = new ArrayList<>();
        final GridScheduler grid = new GridScheduler();
        final IntArray meta = new IntArray(BatchLayout.SIZE);
        FloatArray rope, logits, hidden;
        IntArray result;
        /** Per-pass parameters of the rows sampled on the device (filled by execution before each pass). */
        DeviceSampling sampling;
        /** Grids with one work-group per row (per output row): resized to the batch's bucket before each run. */
        private final List<WorkerGrid1D> perRow = new ArrayList<>(), perOutput = new ArrayList<>();
        private final List<Integer> perRowSize = new ArrayList<>(), perOutputSize = new ArrayList<>();
        private int rowBucket = -1, outBucket = -1;

        /** Sizes the per-row grids for {@code rows} rows and {@code outputs} output rows (powers of two, so few sizes occur). */
        void size(int rows, int outputs) {
            int rb = pow2AtLeast(rows), ob = pow2AtLeast(Math.max(1, outputs));
            if (rb != rowBucket) {
                for (int i = 0; i < perRow.size(); i++) {
                    perRow.get(i).setGlobalWork((long) rb * perRowSize.get(i), 1, 1);
                }
                rowBucket = rb;
            }
            if (ob != outBucket) {
                for (int i = 0; i < perOutput.size(); i++) {
                    perOutput.get(i).setGlobalWork((long) ob * perOutputSize.get(i), 1, 1);
                }
                outBucket = ob;
            }
        }
    }

    private static final int ARGMAX_GROUPS = 64;

    private final LoadedModel m;
    private final ModelConfig c;
    private final Shape shape;
    private final Progress progress;
    private final boolean nativeHalf;
    private final FloatArray pow2 = KernelSupport.halfTable();
    /** Work-items per output row of a one-row product, per attention head, per RMSNorm. */
    private final int local, attLocal, normLocal = KernelSupport.MAX_LOCAL;
    private final Graphs out = new Graphs();
    /** The residual stream [rows × dim]: the activation that flows from graph to graph. */
    private final FloatArray x;
    private long packed, toPack;

    GraphBuilder(LoadedModel m, Shape shape, int local, boolean nativeHalf, Progress progress) {
        this.m = m;
        this.c = m.config();
        this.shape = shape;
        this.local = local;
        this.nativeHalf = nativeHalf;
        this.progress = progress;
        this.attLocal = Math.max(32, pow2AtLeast(c.headDim()));
        this.x = new FloatArray(shape.rows() * c.dim());
        for (TensorData t : m.tensors().values()) {
            if (t.dims().length > 1) {
                toPack += t.data().byteSize();
            }
        }
    }

    /** Device bytes of the activation buffers (each graph has its own), for the memory check before allocation. */
    static long activationBytes(ModelConfig c, Shape s) {
        long wide = Math.max(Math.max(c.dim(), c.qDim()), c.ffn());
        long perLayer = (long) s.rows() * (2L * Math.max(c.dim(), c.qDim()) + wide + 2L * c.qDim() + 2L * c.kvDim() + c.ffn());
        long logits = (long) s.outputs() * (3L * c.dim() + c.vocabSize() + 2L * ARGMAX_GROUPS + SamplingKernels.ROW_INTS + SamplingKernels.ROW_FLOATS)
                + 2L * DeviceSampling.PENALTY_ENTRIES;
        return 4 * ((long) c.layers() * perLayer + logits + (long) s.rows() * (c.dim() + c.headDim()) + BatchLayout.SIZE);
    }

    /** Device bytes of the KV caches of every slot. */
    static long kvBytes(ModelConfig c, Shape s) {
        return 2L * c.layers() * s.slots() * s.capacity() * c.kvDim() * DeviceKvCache.elementBytes(s.kvF16());
    }

    static int pow2AtLeast(int n) {
        return n <= 1 ? 1 : Integer.highestOneBit(n - 1) << 1;
    }

    private static int roundUp(int n, int m) {
        return (n + m - 1) / m * m;
    }

    private DeviceWeight matrix(String name) {
        TensorData t = m.tensor(name);
        DeviceWeight d = DeviceWeight.of(t, nativeHalf, pow2);
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
        out.grid.addWorkerGrid(graph + "." + task, w);
    }

    /** A grid of one work-group of {@code localSize} per row (or per output row), resized per batch. */
    private void rowGrid(String graph, String task, int groupsPerRow, int localSize, boolean outputs) {
        int perRow = groupsPerRow * localSize;
        WorkerGrid1D w = new WorkerGrid1D((outputs ? shape.outputs() : shape.rows()) * perRow);
        w.setLocalWork(localSize, 1, 1);
        out.grid.addWorkerGrid(graph + "." + task, w);
        (outputs ? out.perOutput : out.perRow).add(w);
        (outputs ? out.perOutputSize : out.perRowSize).add(perRow);
    }

    /** Copies every distinct array to the device on the first execution. */
    private static void constants(TaskGraph g, List<Object> arrays) {
        Set<Object> seen = Collections.newSetFromMap(new IdentityHashMap<>());
        List<Object> distinct = new ArrayList<>();
        for (Object a : arrays) {
            if (seen.add(a)) {
                distinct.add(a);
            }
        }
        g.transferToDevice(DataTransferMode.FIRST_EXECUTION, distinct.toArray());
    }

    /** One graph's own work buffers (buffers never cross graphs, apart from x, meta and rope). */
    private final class Scratch {
        final FloatArray xn, xr, q, k, v, att, hb;

        Scratch(int rows) {
            int wide = Math.max(Math.max(c.dim(), c.qDim()), c.ffn());
            xn = new FloatArray(rows * Math.max(c.dim(), c.qDim()));
            xr = new FloatArray(rows * wide);
            q = new FloatArray(rows * c.qDim());
            k = new FloatArray(rows * c.kvDim());
            v = new FloatArray(rows * c.kvDim());
            att = new FloatArray(rows * c.qDim());
            hb = new FloatArray(rows * c.ffn());
        }
    }

    /** The input a matrix reads: {@code in}, or in rounded to the Q8_0 grid into xr (a task added here). */
    private FloatArray input(TaskGraph g, String graph, String task, DeviceWeight w, KernelContext ctx, FloatArray in, FloatArray xr, int width) {
        if (!shape.roundActivations() || !w.quantized()) {
            return in;
        }
        g.task(task, BatchKernels::roundQ8, ctx, in, xr, out.meta, BatchLayout.ROWS, width);
        grid(graph, task, width / 32 + 1, 32);
        return xr;
    }

    private void product(TaskGraph g, String graph, String task, DeviceWeight w, KernelContext ctx, FloatArray in, FloatArray y, int count, boolean residual) {
        w.product(g, task, ctx, in, y, out.meta, count, residual);
        grid(graph, task, w.rows * local, local);
    }

    Graphs build() {
        int dim = c.dim(), qDim = c.qDim(), kvDim = c.kvDim(), hd = c.headDim();
        float eps = c.rmsEps();
        IntArray meta = out.meta;
        out.rope = new FloatArray(shape.rows() * hd);

        // embedding: x[b] = token_embd[token_b]
        DeviceWeight emb = matrix("token_embd.weight");
        KernelContext ectx = new KernelContext();
        TaskGraph e = new TaskGraph("embed").transferToDevice(DataTransferMode.EVERY_EXECUTION, meta);
        constants(e, List.of(emb.arrays()));
        emb.embedding(e, "embed", ectx, meta, x);
        grid("embed", "embed", dim, 64);
        e.persistOnDevice(meta, x);
        out.graphs.add(e.snapshot());

        String prev = "embed";
        int slotsElements = shape.slots() * shape.capacity() * kvDim;
        for (int l = 0; l < c.layers(); l++) {
            String name = "layer" + l, p = "blk." + l + ".";
            KernelContext ctx = new KernelContext();
            TaskGraph g = new TaskGraph(name);
            if (l == 0) {
                g.consumeFromDevice(prev, meta, x);
                g.transferToDevice(DataTransferMode.EVERY_EXECUTION, out.rope);
            } else {
                g.consumeFromDevice(prev, meta, x, out.rope);
            }
            Scratch s = new Scratch(shape.rows());
            FloatArray attnNorm = vector(p + "attn_norm.weight"), ffnNorm = vector(p + "ffn_norm.weight");
            DeviceWeight wq = matrix(p + "attn_q.weight"), wk = matrix(p + "attn_k.weight"), wv = matrix(p + "attn_v.weight");
            DeviceWeight wo = matrix(p + "attn_output.weight");
            DeviceWeight gate = matrix(p + "ffn_gate.weight"), up = matrix(p + "ffn_up.weight"), down = matrix(p + "ffn_down.weight");
            DeviceKvCache cache = DeviceKvCache.create(shape.kvF16(), slotsElements, pow2);
            List<Object> consts = new ArrayList<>(List.of(s.xn, s.q, s.k, s.v, s.att, s.hb, attnNorm, ffnNorm));
            if (shape.roundActivations()) {
                consts.add(s.xr);
            }
            consts.addAll(List.of(cache.arrays()));
            for (DeviceWeight w : new DeviceWeight[] {wq, wk, wv, wo, gate, up, down}) {
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
            constants(g, consts);

            // attention block
            g.task("attn_norm", BatchKernels::rmsNorm, ctx, x, attnNorm, s.xn, meta, BatchLayout.ROWS, dim, eps);
            rowGrid(name, "attn_norm", 1, normLocal, false);
            FloatArray in = input(g, name, "attn_round", wq, ctx, s.xn, s.xr, dim);
            wq.qkv(g, "qkv", ctx, wk, wv, in, s.q, s.k, s.v, meta);
            grid(name, "qkv", (qDim + 2 * kvDim) * local, local);
            if (c.qkvBias()) {
                g.task("bias_q", BatchKernels::addBias, ctx, s.q, bq, meta, qDim);
                g.task("bias_k", BatchKernels::addBias, ctx, s.k, bk, meta, kvDim);
                g.task("bias_v", BatchKernels::addBias, ctx, s.v, bv, meta, kvDim);
                grid(name, "bias_q", qDim, 64);
                grid(name, "bias_k", kvDim, 64);
                grid(name, "bias_v", kvDim, 64);
            }
            cache.ropeKv(g, "rope_kv", ctx, s.q, s.k, s.v, out.rope, meta, qDim, kvDim, hd);
            grid(name, "rope_kv", Math.max(qDim / 2, kvDim), 64);
            cache.attention(g, "attention", ctx, s.q, s.att, meta, c.heads(), c.kvHeads(), hd);
            rowGrid(name, "attention", c.heads(), attLocal, false);
            product(g, name, "out_proj", wo, ctx, input(g, name, "out_round", wo, ctx, s.att, s.xr, qDim), x, BatchLayout.ROWS, true);
            if (c.outBias()) {
                g.task("bias_o", BatchKernels::addBias, ctx, x, bo, meta, dim);
                grid(name, "bias_o", dim, 64);
            }
            // feed-forward block
            g.task("ffn_norm", BatchKernels::rmsNorm, ctx, x, ffnNorm, s.xn, meta, BatchLayout.ROWS, dim, eps);
            rowGrid(name, "ffn_norm", 1, normLocal, false);
            gate.swiglu(g, "swiglu", ctx, up, input(g, name, "ffn_round", gate, ctx, s.xn, s.xr, dim), s.hb, meta);
            grid(name, "swiglu", c.ffn() * local, local);
            product(g, name, "down", down, ctx, input(g, name, "down_round", down, ctx, s.hb, s.xr, c.ffn()), x, BatchLayout.ROWS, true);
            g.persistOnDevice(meta, x, out.rope);
            out.graphs.add(g.snapshot());
            prev = name;
        }

        // logits of the output rows only: gather, final norm, LM head, argmax, sampling
        KernelContext lctx = new KernelContext();
        FloatArray outNorm = vector("output_norm.weight");
        DeviceWeight head = matrix(m.optionalTensor("output.weight") != null ? "output.weight" : "token_embd.weight");
        int outs = shape.outputs();
        FloatArray gathered = new FloatArray(outs * dim), normed = new FloatArray(outs * dim), rounded = new FloatArray(outs * dim);
        FloatArray argVal = new FloatArray(outs * ARGMAX_GROUPS);
        IntArray argIdx = new IntArray(outs * ARGMAX_GROUPS);
        out.logits = new FloatArray(outs * c.vocabSize());
        out.result = new IntArray(outs);
        out.hidden = normed;
        TaskGraph lg = new TaskGraph("logits").consumeFromDevice(prev, meta, x);
        DeviceSampling ds = new DeviceSampling(outs, c.vocabSize(), Integer.getInteger("internlm.tornado.penaltyEntries", DeviceSampling.PENALTY_ENTRIES));
        int candidates = Integer.getInteger("internlm.tornado.sampleCandidates", SamplingKernels.CANDIDATES);
        if (candidates < 1 || candidates > SamplingKernels.CANDIDATES) {
            throw new IllegalArgumentException("internlm.tornado.sampleCandidates must be between 1 and " + SamplingKernels.CANDIDATES);
        }
        out.sampling = ds;
        lg.transferToDevice(DataTransferMode.EVERY_EXECUTION, ds.rowInts, ds.rowFloats, ds.penaltyIds, ds.penaltySubs);
        List<Object> consts = new ArrayList<>(List.of(gathered, normed, outNorm, out.logits, argVal, argIdx, out.result));
        if (shape.roundActivations() && head.quantized()) {
            consts.add(rounded);
        }
        consts.addAll(List.of(head.arrays()));
        constants(lg, consts);
        lg.task("gather", BatchKernels::gatherOutputs, lctx, x, gathered, meta, dim);
        grid("logits", "gather", dim, 64);
        lg.task("final_norm", BatchKernels::rmsNorm, lctx, gathered, outNorm, normed, meta, BatchLayout.OUT_ROWS, dim, eps);
        rowGrid("logits", "final_norm", 1, normLocal, true);
        FloatArray headIn = normed;
        if (shape.roundActivations() && head.quantized()) {
            lg.task("head_round", BatchKernels::roundQ8, lctx, normed, rounded, meta, BatchLayout.OUT_ROWS, dim);
            grid("logits", "head_round", dim / 32 + 1, 32);
            headIn = rounded;
        }
        product(lg, "logits", "lm_head", head, lctx, headIn, out.logits, BatchLayout.OUT_ROWS, false);
        lg.task("argmax_partial", BatchKernels::argmaxPartial, lctx, out.logits, argVal, argIdx, meta, c.vocabSize());
        grid("logits", "argmax_partial", ARGMAX_GROUPS * 256, 256);
        lg.task("argmax_final", BatchKernels::argmaxFinal, lctx, argVal, argIdx, out.result, meta, ARGMAX_GROUPS);
        grid("logits", "argmax_final", 64, 64);
        // sampling on the device (rows whose mode says so): penalties applied to their logits, then one work-group per row
        lg.task("sample_penalties", SamplingKernels::samplePenalties, lctx, out.logits, ds.rowInts, ds.rowFloats, ds.penaltyIds, ds.penaltySubs,
                meta, c.vocabSize());
        grid("logits", "sample_penalties", ds.capacity(), 64);
        lg.task("sample", SamplingKernels::sampleTokens, lctx, out.logits, ds.rowInts, ds.rowFloats, out.result, meta, c.vocabSize(), candidates);
        rowGrid("logits", "sample", 1, KernelSupport.MAX_LOCAL, true);
        lg.transferToHost(DataTransferMode.EVERY_EXECUTION, out.result);
        lg.transferToHost(DataTransferMode.UNDER_DEMAND, out.logits, normed);
        out.graphs.add(lg.snapshot());
        progress.update("preparing weights for the device", toPack, toPack);
        return out;
    }
}
