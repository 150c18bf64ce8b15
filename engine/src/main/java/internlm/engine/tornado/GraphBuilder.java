package internlm.engine.tornado;

import internlm.kernels.AttentionKernels;
import internlm.kernels.BatchKernels;
import internlm.kernels.BatchLayout;
import internlm.kernels.DeviceLayouts;
import internlm.kernels.GemmKernels;
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
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Builds the task graphs of the transformer from the model description, for every family and weight type: forward
 * graphs of as many layers as TornadoVM's per-graph buffers hold (the embedding in the first, see
 * {@link #layersPerGraph}) and a logits graph, all for batches of up to {@link Shape#rows} rows (the row count is data
 * in {@code meta}, so they compile once). Tasks are named {@code l<layer>_<kernel>}. Weights and KV caches go to the
 * device once (FIRST_EXECUTION); the work buffers are shared by the layers of a graph; the residual stream, meta and
 * the RoPE tables cross from graph to graph on the device (persist/consume); per batch only meta, the RoPE tables and
 * the sampling parameters travel to the device, and back only the argmax or sampled ids, or the logits / hidden states of the rows that ask for them.
 * Execution is {@link TornadoBackend}'s.
 */
final class GraphBuilder {

    /** Sizes fixed at load: rows per batch, output rows per batch, sequence slots, positions per slot, KV precision. */
    record Shape(int rows, int outputs, int slots, int capacity, boolean kvF16, boolean roundActivations) {}

    /** What the builder hands to execution: the graphs, their grids and the host-side arrays execution fills or reads. */
    static final class Graphs {
        final List<ImmutableTaskGraph> graphs = new ArrayList<>();
        /** The graphs' names, in order. */
        final List<String> names = new ArrayList<>();
        /** Tasks (kernel launches) per graph name: every task has its grid. */
        final Map<String, Integer> tasks = new LinkedHashMap<>();
        final GridScheduler grid = new GridScheduler();
        final IntArray meta = new IntArray(BatchLayout.SIZE);
        FloatArray rope, logits, hidden;
        IntArray result;
        /** For the profile: per task name, the bytes a one-row pass reads (weights and activations, all layers together). */
        final Map<String, Long> bytes = new LinkedHashMap<>();
        /** For the profile: bytes the attention tasks read per cached position, all layers together. */
        long kvBytesPerPosition;
        /** Per-pass parameters of the rows sampled on the device (filled by execution before each pass). */
        DeviceSampling sampling;
        /** Grids with one work-group per row (per output row): resized to the batch's bucket before each run. */
        private final List<WorkerGrid1D> perRow = new ArrayList<>(), perOutput = new ArrayList<>();
        private final List<Integer> perRowSize = new ArrayList<>(), perOutputSize = new ArrayList<>();
        private int rowBucket = -1, outBucket = -1;
        /**
         * Product grids: {lane-path work-items, tiled-path work-items, 1 when the count is the output rows}. A pass
         * gets only the groups its path uses: idle groups are not free on CPU devices (PoCL runs every work-item of
         * them; with one group per row, 7 of 8 SwiGLU groups idle in a tiled pass cost 2.8 of 8.2 ms per prompt row,
         * d1024-l8 Q8_0, 2-core Xeon).
         */
        private final List<WorkerGrid1D> products = new ArrayList<>();
        private final List<int[]> productSizes = new ArrayList<>();
        private int rowPath = -1, outPath = -1;

        /**
         * Sizes the per-row grids for {@code rows} rows and {@code outputs} output rows (powers of two, so few sizes
         * occur), and the product grids for the path the pass takes (tiled when more than LANE_BATCH rows or in the
         * batch-invariant mode).
         */
        void size(int rows, int outputs, boolean invariant) {
            int rp = invariant || rows > GemmKernels.LANE_BATCH ? 1 : 0, op = invariant || outputs > GemmKernels.LANE_BATCH ? 1 : 0;
            if (rp != rowPath || op != outPath) {
                for (int i = 0; i < products.size(); i++) {
                    int[] z = productSizes.get(i);
                    products.get(i).setGlobalWork(z[(z[2] == 1 ? op : rp)], 1, 1);
                }
                rowPath = rp;
                outPath = op;
            }
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

    /**
     * Launch shapes and fusion choices for one device (see {@link DeviceTuning}): work-items per work-group of the
     * products and norms ({@code local}) and of attention ({@code attLocal}), work-items per output row of the lane
     * products ({@code lanes}, a power of two ≤ local), context splits of the attention ({@code splits}, 1 = one
     * pass; a pass runs one split per {@code splitPositions} positions of its longest row, at most {@code splits}), whether the lane products normalise the residual stream
     * themselves ({@code fuseNorm}; otherwise an RMSNorm pass runs first), F16 weights as native half, and grids
     * fixed at their largest size (CUDA graphs replay the launches they captured).
     */
    record Tuning(int local, int lanes, int attLocal, int splits, int splitPositions, boolean fuseNorm, boolean nativeHalf, boolean fixedGrids,
                  boolean itemTiles) {}

    /** Offsets in a layer's vector of small constants: [attn_norm, eps | ffn_norm, eps | bias q, k, v | bias o]. */
    private record LayerVec(FloatArray vec, int attnNorm, int ffnNorm, int biasQkv, int biasOut) {}

    private final LoadedModel m;
    private final ModelConfig c;
    private final Shape shape;
    private final Tuning tuning;
    private final Progress progress;
    private final FloatArray pow2 = KernelSupport.halfTable();
    private final int local, attLocal;
    private final Graphs out = new Graphs();
    /** The residual stream [rows × dim]: the activation that flows from graph to graph. */
    private final FloatArray x;
    private long packed, toPack;

    GraphBuilder(LoadedModel m, Shape shape, Tuning tuning, Progress progress) {
        this.m = m;
        this.c = m.config();
        this.shape = shape;
        this.tuning = tuning;
        this.local = tuning.local();
        this.attLocal = tuning.attLocal();
        this.progress = progress;
        this.x = new FloatArray(shape.rows() * c.dim());
        for (TensorData t : m.tensors().values()) {
            if (t.dims().length > 1) {
                toPack += t.data().byteSize();
            }
        }
        out.meta.set(BatchLayout.LANES, tuning.lanes());
        out.meta.set(BatchLayout.TILES, tuning.itemTiles() ? BatchLayout.TILES_ITEMS : BatchLayout.TILES_GROUPS);
    }

    /**
     * Device bytes of the activation buffers (each forward graph has its own work buffers, shared by its layers; the
     * split attention's partial results counted at the most splits), for the memory check before allocation.
     */
    static long activationBytes(ModelConfig c, Shape s) {
        long wide = Math.max(Math.max(c.dim(), c.qDim()), c.ffn());
        long scratch = (long) s.rows() * (Math.max(c.dim(), c.qDim()) + wide + 2L * c.qDim() + 2L * c.kvDim() + c.ffn()
                + (long) c.heads() * DeviceTuning.MAX_SPLITS * (c.headDim() + 2));
        long graphs = (c.layers() + layersPerGraph(c) - 1) / layersPerGraph(c);
        long logits = (long) s.outputs() * (2L * c.dim() + c.vocabSize() + 2L * ARGMAX_GROUPS + SamplingKernels.ROW_INTS
                + SamplingKernels.ROW_FLOATS) + 2L * DeviceSampling.PENALTY_ENTRIES;
        return 4 * (graphs * scratch + logits + (long) s.rows() * (c.dim() + c.headDim()) + BatchLayout.SIZE);
    }

    /** Device bytes of the KV caches of every slot. */
    static long kvBytes(ModelConfig c, Shape s) {
        return 2L * c.layers() * s.slots() * s.capacity() * c.kvDim() * DeviceKvCache.elementBytes(s.kvF16());
    }

    static int pow2AtLeast(int n) {
        return n <= 1 ? 1 : Integer.highestOneBit(n - 1) << 1;
    }

    private static long roundUp(long n, long m) {
        return (n + m - 1) / m * m;
    }

    private DeviceWeight matrix(String name) {
        TensorData t = m.tensor(name);
        DeviceWeight d = DeviceWeight.of(t, tuning.nativeHalf(), pow2);
        packed += t.data().byteSize();
        progress.update("preparing weights for the device", packed, toPack);
        return d;
    }

    /** Matrices stacked row-wise for a fused product. */
    private DeviceWeight stacked(String... names) {
        List<TensorData> parts = new ArrayList<>();
        for (String n : names) {
            parts.add(m.tensor(n));
        }
        DeviceWeight d = DeviceWeight.stacked(parts, tuning.nativeHalf(), pow2);
        for (TensorData t : parts) {
            packed += t.data().byteSize();
        }
        progress.update("preparing weights for the device", packed, toPack);
        return d;
    }

    /** A layer's norms (each followed by eps) and biases in one array. */
    private LayerVec layerVec(String p) {
        List<float[]> parts = new ArrayList<>();
        float[] eps = {c.rmsEps()};
        parts.add(floats(p + "attn_norm.weight"));
        parts.add(eps);
        int ffnNorm = c.dim() + 1;
        parts.add(floats(p + "ffn_norm.weight"));
        parts.add(eps);
        int at = 2 * c.dim() + 2, biasQkv = -1, biasOut = -1;
        if (c.qkvBias()) {
            biasQkv = at;
            parts.add(floats(p + "attn_q.bias"));
            parts.add(floats(p + "attn_k.bias"));
            parts.add(floats(p + "attn_v.bias"));
            at += c.qDim() + 2 * c.kvDim();
        }
        if (c.outBias()) {
            biasOut = at;
            parts.add(floats(p + "attn_output.bias"));
        }
        return new LayerVec(concat(parts), 0, ffnNorm, biasQkv, biasOut);
    }

    private static FloatArray concat(List<float[]> parts) {
        int n = 0;
        for (float[] f : parts) {
            n += f.length;
        }
        float[] all = new float[n];
        int at = 0;
        for (float[] f : parts) {
            System.arraycopy(f, 0, all, at, f.length);
            at += f.length;
        }
        return DeviceLayouts.floats(all);
    }

    private float[] floats(String name) {
        TensorData t = m.tensor(name);
        float[] f = new float[(int) t.elements()];
        Quants.dequantize(t.type(), t.data(), 0, f, 0, f.length);
        return f;
    }

    private void grid(String graph, String task, long global, int localSize) {
        WorkerGrid1D w = new WorkerGrid1D(Math.toIntExact(roundUp(global, localSize)));
        w.setLocalWork(localSize, 1, 1);
        out.grid.addWorkerGrid(graph + "." + task, w);
        out.tasks.merge(graph, 1, Integer::sum);
    }

    /** A grid of one work-group of {@code localSize} per row (or per output row), resized per batch. */
    private void rowGrid(String graph, String task, int groupsPerRow, int localSize, boolean outputs) {
        int perRow = groupsPerRow * localSize;
        WorkerGrid1D w = new WorkerGrid1D((outputs ? shape.outputs() : shape.rows()) * perRow);
        w.setLocalWork(localSize, 1, 1);
        out.grid.addWorkerGrid(graph + "." + task, w);
        out.tasks.merge(graph, 1, Integer::sum);
        if (!tuning.fixedGrids()) {
            (outputs ? out.perOutput : out.perRow).add(w);
            (outputs ? out.perOutputSize : out.perRowSize).add(perRow);
        }
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

    /** One graph's work buffers, shared by its layers (buffers never cross graphs, apart from x, meta and rope). */
    private final class Scratch {
        final FloatArray xn, xr, q, k, v, att, hb, part;

        Scratch(int rows) {
            int wide = Math.max(Math.max(c.dim(), c.qDim()), c.ffn());
            xn = new FloatArray(rows * Math.max(c.dim(), c.qDim()));
            xr = new FloatArray(rows * wide);
            q = new FloatArray(rows * c.qDim());
            k = new FloatArray(rows * c.kvDim());
            v = new FloatArray(rows * c.kvDim());
            att = new FloatArray(rows * c.qDim());
            hb = new FloatArray(rows * c.ffn());
            part = new FloatArray(tuning.splits() > 1 ? rows * c.heads() * tuning.splits() * (c.headDim() + 2) : 1);
        }
    }

    /** in rounded to the Q8_0 grid into xr, llama.cpp's activation quantization (a task added here). */
    private FloatArray round(TaskGraph g, String graph, String task, KernelContext ctx, FloatArray in, FloatArray xr, int width) {
        g.task(task, BatchKernels::roundQ8, ctx, in, xr, out.meta, BatchLayout.ROWS, width);
        grid(graph, task, width / 32 + 1, 32);
        return xr;
    }

    private void product(TaskGraph g, String graph, String task, DeviceWeight w, KernelContext ctx, FloatArray in, FloatArray y, FloatArray vec, int count,
                         boolean residual, int biasOff) {
        w.product(g, task, ctx, in, y, vec, out.meta, count, residual, biasOff);
        productGrid(graph, task, w.rows, GemmKernels.tiles(w.rows), GemmKernels.itemGroups(w.rows), count == BatchLayout.OUT_ROWS);
        reads(task, w.bytes() + 4L * w.cols + (residual ? 4L * w.rows : 0));
    }

    /**
     * A product's grid for {@code rows} output rows: the lane path's groups (lanes items per row) in decode passes,
     * the tiled path's ({@code groupTiles} or {@code itemGroups}, by the tile variant) in longer ones; with fixed grids
     * the larger of the two always. {@code outputs}: the product runs on the output rows (the LM head).
     */
    private void productGrid(String graph, String task, int rows, int groupTiles, int itemGroups, boolean outputs) {
        int lanes = GemmKernels.laneGroups(rows, tuning.lanes(), local), tiled = tuning.itemTiles() ? itemGroups : groupTiles;
        WorkerGrid1D w = new WorkerGrid1D(Math.max(lanes, tiled) * local);
        w.setLocalWork(local, 1, 1);
        out.grid.addWorkerGrid(graph + "." + task, w);
        out.tasks.merge(graph, 1, Integer::sum);
        if (!tuning.fixedGrids()) {
            out.products.add(w);
            out.productSizes.add(new int[] {lanes * local, tiled * local, outputs ? 1 : 0});
        }
    }

    /**
     * The RMSNorm pass before a fused product, and what the product then reads: with llama.cpp's rounding (quantized
     * weights) a norm-and-round pass always runs and the product reads the rounded rows (normOff −1); with
     * {@code fuseNorm} the lane path normalises by itself and the pass runs for tiled passes only; otherwise the pass
     * always runs and the product reads its output.
     */
    private record NormPlan(FloatArray input, int normOff) {}

    private NormPlan norm(TaskGraph g, String graph, String task, KernelContext ctx, DeviceWeight w, Scratch s, LayerVec lv, int off) {
        boolean round = shape.roundActivations() && w.quantized();
        boolean fuse = !round && tuning.fuseNorm();
        int mode = round ? BatchKernels.NORM_ROUND : fuse ? BatchKernels.NORM_SKIP_LANES : 0;
        g.task(task, BatchKernels::rmsNorm, ctx, x, lv.vec(), s.xn, s.xr, out.meta, BatchLayout.ROWS, c.dim(), off, mode);
        rowGrid(graph, task, 1, local, false);
        return new NormPlan(round ? s.xr : s.xn, fuse ? off : -1);
    }

    /** Records for the profile that task {@code task} reads {@code bytes} per one-row pass. */
    private void reads(String task, long bytes) {
        out.bytes.merge(task.replaceFirst("^l\\d+_", ""), bytes, Long::sum);
    }

    /**
     * Layers per forward graph: as many as TornadoVM's buffers for one graph hold, all of them when they fit;
     * {@code internlm.tornado.layersPerGraph} overrides. Fewer graphs mean fewer host round trips per token. Two
     * buffers limit a graph: the high-level code a TaskGraph records as tasks are added (TornadoTaskGraph's
     * {@code highLevelCode}, a fixed 8192 bytes in 5.2: 15 bytes per task plus 5 per argument — about 9 layers of ours)
     * and the bytecode it is compiled to ({@code tornado.tvm.maxbytecodesize}, 4096 bytes by default, which
     * {@link TornadoSupport} raises to 1 MiB before TornadoVM starts: per object an allocation entry, a first-execution
     * copy and a deallocation, per task a launch with its arguments and dependencies).
     */
    static int layersPerGraph(ModelConfig c) {
        Integer forced = Integer.getInteger("internlm.tornado.layersPerGraph");
        if (forced != null) {
            if (forced < 1) {
                throw new IllegalArgumentException("internlm.tornado.layersPerGraph must be at least 1");
            }
            return Math.min(forced, c.layers());
        }
        // at most 11 tasks per layer (norm, Q/K/V, RoPE + KV, attention, merge, output rounding, output projection,
        // norm, SwiGLU, down rounding, down) of at most 15 arguments (TornadoVM 1.1.2-dev's task() limit); the
        // embedding task and some slack first
        long perLayerHighLevel = 11L * (15 + 5 * 15);
        long byHighLevel = (HIGH_LEVEL_BUFFER - 256) / perLayerHighLevel;
        long perLayerBytecode = 40L * 48 + 16L * (40 + 16 * 5 + 40);
        long byBytecode = (TornadoSupport.bytecodeBufferSize() - 4096) / perLayerBytecode;
        return (int) Math.max(1, Math.min(c.layers(), Math.min(byHighLevel, byBytecode)));
    }

    /** TornadoTaskGraph's buffer of high-level code per graph (TornadoVM 5.2: a fixed array, no setting). */
    private static final int HIGH_LEVEL_BUFFER = 8192;

    Graphs build() {
        int dim = c.dim(), qDim = c.qDim(), kvDim = c.kvDim(), hd = c.headDim();
        IntArray meta = out.meta;
        out.rope = new FloatArray(shape.rows() * hd);
        int perGraph = layersPerGraph(c), groups = (c.layers() + perGraph - 1) / perGraph;
        int slotsElements = shape.slots() * shape.capacity() * kvDim;
        String prev = null;
        for (int gi = 0; gi < groups; gi++) {
            String name = groups == 1 ? "forward" : "forward" + gi;
            KernelContext ctx = new KernelContext();
            TaskGraph g = new TaskGraph(name);
            Scratch s = new Scratch(shape.rows());
            List<Object> consts = new ArrayList<>(List.of(s.xn, s.xr, s.q, s.k, s.v, s.att, s.hb));
            if (tuning.splits() > 1) {
                consts.add(s.part);
            }
            DeviceWeight emb = null;
            if (gi == 0) {
                g.transferToDevice(DataTransferMode.EVERY_EXECUTION, meta, out.rope);
                emb = matrix("token_embd.weight");
                consts.addAll(List.of(emb.arrays()));
            } else {
                g.consumeFromDevice(prev, meta, x, out.rope);
            }
            List<Runnable> tasks = new ArrayList<>();
            if (emb != null) {
                // embedding: x[b] = token_embd[token_b]
                DeviceWeight table = emb;
                tasks.add(() -> {
                    table.embedding(g, "embed", ctx, meta, x);
                    grid(name, "embed", dim, 64);
                });
            }
            for (int l = gi * perGraph; l < Math.min(c.layers(), (gi + 1) * perGraph); l++) {
                String t = "l" + l + "_", p = "blk." + l + ".";
                LayerVec lv = layerVec(p);
                DeviceWeight wqkv = stacked(p + "attn_q.weight", p + "attn_k.weight", p + "attn_v.weight");
                DeviceWeight wo = matrix(p + "attn_output.weight");
                DeviceWeight gateUp = stacked(p + "ffn_gate.weight", p + "ffn_up.weight");
                DeviceWeight down = matrix(p + "ffn_down.weight");
                DeviceKvCache cache = DeviceKvCache.create(shape.kvF16(), slotsElements, pow2);
                consts.add(lv.vec());
                consts.addAll(List.of(cache.arrays()));
                for (DeviceWeight w : new DeviceWeight[] {wqkv, wo, gateUp, down}) {
                    consts.addAll(List.of(w.arrays()));
                }
                tasks.add(() -> {
                    // attention block: norm (or nothing, when fused), Q/K/V with biases, RoPE and the KV write, attention
                    NormPlan an = norm(g, name, t + "attn_norm", ctx, wqkv, s, lv, lv.attnNorm());
                    wqkv.qkv(g, t + "qkv", ctx, x, an.input(), lv.vec(), s.q, s.k, s.v, meta, qDim, kvDim, an.normOff(), lv.biasQkv());
                    // the tiled paths run tiles of q, then of k, then of v
                    productGrid(name, t + "qkv", qDim + 2 * kvDim, GemmKernels.tiles(qDim) + 2 * GemmKernels.tiles(kvDim),
                            GemmKernels.itemGroups(qDim) + 2 * GemmKernels.itemGroups(kvDim), false);
                    reads("qkv", wqkv.bytes() + 4L * dim);
                    cache.ropeKv(g, t + "rope_kv", ctx, s.q, s.k, s.v, out.rope, meta, qDim, kvDim, hd);
                    grid(name, t + "rope_kv", Math.max(qDim / 2, kvDim), 64);
                    // llama.cpp rounds the attention output for a quantized Wo: in the attention kernel when the
                    // head dimension holds whole blocks of 32, else in a pass of its own
                    boolean roundOut = shape.roundActivations() && wo.quantized();
                    boolean roundInAttention = roundOut && hd % 32 == 0;
                    if (tuning.splits() > 1) {
                        // flash-decoding: (row, head, chunk) work-groups, then a merge per (row, head)
                        cache.attentionPartial(g, t + "attention", ctx, s.q, s.part, meta, c.heads(), c.kvHeads(), hd, tuning.splits());
                        rowGrid(name, t + "attention", c.heads() * tuning.splits(), attLocal, false);
                        g.task(t + "attn_merge", AttentionKernels::attentionMerge, ctx, s.part, s.att, meta, c.heads(), hd, tuning.splits(), roundInAttention ? 1 : 0);
                        rowGrid(name, t + "attn_merge", c.heads(), attLocal, false);
                    } else {
                        cache.attention(g, t + "attention", ctx, s.q, s.att, meta, c.heads(), c.kvHeads(), hd, roundInAttention);
                        rowGrid(name, t + "attention", c.heads(), attLocal, false);
                    }
                    reads("attention", 4L * qDim);
                    out.kvBytesPerPosition += 2L * kvDim * DeviceKvCache.elementBytes(shape.kvF16());
                    FloatArray attOut = s.att;
                    if (roundOut && !roundInAttention) {
                        attOut = round(g, name, t + "out_round", ctx, s.att, s.xr, qDim);
                    }
                    product(g, name, t + "out_proj", wo, ctx, attOut, x, lv.vec(), BatchLayout.ROWS, true, lv.biasOut());
                    // feed-forward block
                    NormPlan fn = norm(g, name, t + "ffn_norm", ctx, gateUp, s, lv, lv.ffnNorm());
                    gateUp.swiglu(g, t + "swiglu", ctx, x, fn.input(), lv.vec(), s.hb, meta, fn.normOff());
                    // item tiles: half of an item's rows are gate rows, half up rows
                    productGrid(name, t + "swiglu", c.ffn(), GemmKernels.tiles(c.ffn()), GemmKernels.itemGroups(2 * c.ffn()), false);
                    reads("swiglu", gateUp.bytes() + 4L * dim);
                    FloatArray downIn = shape.roundActivations() && down.quantized() ? round(g, name, t + "down_round", ctx, s.hb, s.xr, c.ffn()) : s.hb;
                    product(g, name, t + "down", down, ctx, downIn, x, lv.vec(), BatchLayout.ROWS, true, -1);
                });
            }
            // the first-execution copies go before the tasks that read them
            constants(g, consts);
            tasks.forEach(Runnable::run);
            g.persistOnDevice(meta, x, out.rope);
            out.graphs.add(g.snapshot());
            out.names.add(name);
            prev = name;
        }

        // logits of the output rows only: final norm of the gathered rows (and their Q8_0 rounding for a quantized
        // head in llama.cpp's mode), LM head, argmax, sampling
        KernelContext lctx = new KernelContext();
        DeviceWeight head = matrix(m.optionalTensor("output.weight") != null ? "output.weight" : "token_embd.weight");
        FloatArray outNorm = concat(List.of(floats("output_norm.weight"), new float[] {c.rmsEps()}));
        int outs = shape.outputs();
        boolean roundHead = shape.roundActivations() && head.quantized();
        FloatArray normed = new FloatArray(outs * dim), rounded = new FloatArray(outs * dim);
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
        List<Object> consts = new ArrayList<>(List.of(normed, rounded, outNorm, out.logits, argVal, argIdx, out.result));
        consts.addAll(List.of(head.arrays()));
        constants(lg, consts);
        lg.task("final_norm", BatchKernels::rmsNorm, lctx, x, outNorm, normed, rounded, meta, BatchLayout.OUT_ROWS, dim, 0,
                BatchKernels.NORM_GATHER | (roundHead ? BatchKernels.NORM_ROUND : 0));
        rowGrid("logits", "final_norm", 1, local, true);
        product(lg, "logits", "lm_head", head, lctx, roundHead ? rounded : normed, out.logits, outNorm, BatchLayout.OUT_ROWS, false, -1);
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
        out.names.add("logits");
        progress.update("preparing weights for the device", toPack, toPack);
        return out;
    }
}
