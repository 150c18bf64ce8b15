package internlm.engine.tornado;

import internlm.engine.model.Backend;
import internlm.engine.model.Batch;
import internlm.engine.model.Rope;
import internlm.kernels.BatchLayout;
import internlm.kernels.KernelSupport;
import internlm.loader.LoadedModel;
import internlm.loader.ModelConfig;
import internlm.loader.Progress;
import internlm.loader.TensorData;
import uk.ac.manchester.tornado.api.TornadoExecutionPlan;
import uk.ac.manchester.tornado.api.TornadoExecutionResult;
import uk.ac.manchester.tornado.api.common.TornadoDevice;
import uk.ac.manchester.tornado.api.enums.ProfilerMode;

/**
 * The GPU backend: runs batches of rows — prompt chunks and decode tokens of several sequences mixed — through the
 * task graphs {@link GraphBuilder} makes from the model (the forward graph — embedding and layers — and the logits graph),
 * with the KV caches of {@link Settings#sequences} slots of {@link Settings#context} positions on the device. Batches
 * of up to {@code internlm.tornado.batch} rows (default and most {@value BatchLayout#MAX_ROWS}) run in one pass: the
 * products then read each weight once per batch; larger batches run in consecutive passes. A one-row batch (decode
 * of one sequence) runs the one-row-per-work-group products, as fast as the single-token graphs were.
 *
 * <p>Batch invariance: a row's result does not depend on the other rows of its batch, for batches of two rows or
 * more (products sum each output over the columns in one fixed order; norms, RoPE, attention and argmax work per row
 * exactly as alone). One-row batches use the one-row products, which sum in another order (lanes, then a tree), so
 * their results differ from the batched ones by float rounding; {@code -Dinternlm.tornado.batchInvariant=true} sends
 * one-row batches through the batched products as well (slower decode, results independent of the batch size).
 */
public final class TornadoBackend implements Backend {

    /**
     * Settings: context each sequence slot holds, sequence slots on the device (the server's --parallel), device "B:D"
     * (null = TornadoVM's default), KV cache in F16, round activations like llama.cpp, profile kernels.
     */
    public record Settings(int context, int sequences, String device, boolean kvCacheF16, boolean roundActivations, boolean profile) {}

    private final ModelConfig c;
    private final Settings settings;
    private final GraphBuilder.Shape shape;
    private final GraphBuilder.Graphs graphs;
    private final TornadoExecutionPlan plan;
    private final String deviceName;
    private final DeviceTuning.Facts facts;
    private final GraphBuilder.Tuning tuning;
    /** TornadoVM's withCUDAGraph() when it is used (PTX backend, runtime that has it, not turned off), else null. */
    private final java.lang.reflect.Method cudaGraphs;
    private final boolean invariant = Boolean.getBoolean("internlm.tornado.batchInvariant");
    private final TornadoSequence[] slots;
    private final float[] ropeScratch;
    private final TornadoProfile profile;
    /** Sample SAMPLE rows on the device ({@code -Dinternlm.tornado.sampling=host}: copy the logits back and sample on the host). */
    private final boolean deviceSampling = !"host".equalsIgnoreCase(System.getProperty("internlm.tornado.sampling", "device"));
    private final boolean[] sampledHere;
    private float[] hostLogits;

    public TornadoBackend(LoadedModel model, Settings settings, Progress progress) {
        String why = TornadoSupport.unavailableReason();
        if (why != null) {
            throw new IllegalStateException(why);
        }
        this.c = model.config();
        this.settings = settings;
        if (c.headDim() > KernelSupport.MAX_HEAD_DIM) {
            throw new IllegalArgumentException("head dimension " + c.headDim() + " exceeds the TornadoVM kernels' limit of " + KernelSupport.MAX_HEAD_DIM);
        }
        if (settings.sequences() < 1 || settings.context() < 1) {
            throw new IllegalArgumentException("the TornadoVM backend needs at least one sequence slot and a context of at least one token");
        }
        this.shape = shape(settings);
        long need = deviceBytes(model, shape);
        TornadoSupport.prepareRuntime(need);
        int[] dev = TornadoSupport.parseDevice(settings.device());
        TornadoDevice device = dev == null ? null : TornadoExecutionPlan.getDevice(dev[0], dev[1]);
        TornadoDevice probe = device != null ? device : TornadoExecutionPlan.getDevice(0, 0);
        this.deviceName = probe.getPhysicalDevice().getDeviceName();
        long available = probe.getMaxGlobalMemory();
        if (available > 0 && need > available) {
            throw new IllegalArgumentException(String.format("the model needs %.2f GiB on the device (weights, KV caches for %d sequence(s) of %d tokens, buffers for "
                    + "%d-row batches) but %s has %.2f GiB: use a smaller --ctx or --parallel, --kv-cache f16, a smaller quantization, or --backend cpu",
                    need / 1073741824.0, settings.sequences(), settings.context(), shape.rows(), deviceName, available / 1073741824.0));
        }
        this.slots = new TornadoSequence[settings.sequences()];
        this.ropeScratch = new float[shape.rows() * c.headDim()];
        this.facts = DeviceTuning.facts(probe);
        this.cudaGraphs = CudaGraphs.wanted(facts);
        this.tuning = DeviceTuning.choose(facts, c.headDim(), c.heads(), settings.context(), cudaGraphs != null || Boolean.getBoolean("internlm.tornado.fixedGrids"));
        this.sampledHere = new boolean[shape.outputs()];
        this.graphs = new GraphBuilder(model, shape, tuning, progress).build();
        this.profile = new TornadoProfile(graphs.bytes, graphs.kvBytesPerPosition);
        TornadoExecutionPlan p = new TornadoExecutionPlan(graphs.graphs.toArray(new uk.ac.manchester.tornado.api.ImmutableTaskGraph[0]));
        if (device != null) {
            p.withDevice(device);
        }
        if (settings.profile()) {
            p.withProfiler(ProfilerMode.SILENT);
        }
        if (cudaGraphs != null) {
            CudaGraphs.enable(p, cudaGraphs);
        }
        this.plan = p;
        progress.update("compiling the kernels for " + deviceName, 0, 1);
        plan.withPreCompilation();
        progress.update("compiling the kernels for " + deviceName, 1, 1);
        // warm-up: one row at position 0 of slot 0 pushes the weights to the device (FIRST_EXECUTION) and JIT-compiles
        // everything (the position is rewritten by the first sequence that uses the slot before it is read)
        progress.update("copying the weights to the device", 0, 1);
        graphs.meta.set(BatchLayout.OUT_ROW, 0);
        run(new int[] {Math.max(0, model.vocab().bos())}, new int[] {0}, new int[] {0}, new double[] {c.ropeTheta()}, 1, 1);
        progress.update("copying the weights to the device", 1, 1);
        profile.clear();
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
    public int hiddenSize() {
        return c.dim();
    }

    @Override
    public int maxSequences() {
        return slots.length;
    }

    @Override
    public boolean samplesOnDevice() {
        return deviceSampling;
    }

    /**
     * Sampled rows so far: {on the device, on the host because the penalty window did not fit the pass, on the host
     * after the device found no bounded candidate set}.
     */
    public synchronized long[] samplingCounts() {
        return graphs.sampling.counts();
    }

    @Override
    public String report() {
        if (!settings.profile()) {
            return "";
        }
        long[] n = graphs.sampling.counts();
        String sampling = n[0] + n[1] + n[2] == 0 ? "" : String.format("sampled rows: %d on the device, %d on the host (penalty window too large), "
                + "%d on the host after a device fallback (no bounded candidate set)%n", n[0], n[1], n[2]);
        return profile.summary() + sampling;
    }

    @Override
    public String description() {
        return "TornadoVM on " + deviceName + " (" + slots.length + " sequence slot(s) of " + settings.context() + " tokens, KV cache "
                + (settings.kvCacheF16() ? "F16" : "F32") + ", batches of up to " + shape.rows() + " rows; " + facts.describe() + "; work-groups of "
                + tuning.local() + ", " + tuning.lanes() + " per output row, attention in " + tuning.splits() + " split(s), RMSNorm " + (tuning.fuseNorm() ? "fused into the products" : "as a pass")
                + ", F16 weights " + (tuning.nativeHalf() ? "as native half" : "as raw bits") + ", " + (tuning.itemTiles() ? "item" : "work-group")
                + " tiles, CUDA graphs " + (cudaGraphs != null ? "on" : "off") + ", sampling on the " + (deviceSampling ? "device" : "host") + ")";
    }

    // ------------------------------------------------------------------ sizes

    /** The graphs' shape for these settings: batch rows (internlm.tornado.batch, at most BatchLayout.MAX_ROWS), output rows, slots. */
    static GraphBuilder.Shape shape(Settings settings) {
        int rows = Integer.getInteger("internlm.tornado.batch", BatchLayout.MAX_ROWS);
        if (rows < 1 || rows > BatchLayout.MAX_ROWS) {
            throw new IllegalArgumentException("internlm.tornado.batch must be between 1 and " + BatchLayout.MAX_ROWS);
        }
        int outputs = Math.min(rows, Math.max(8, settings.sequences()));
        return new GraphBuilder.Shape(rows, outputs, settings.sequences(), settings.context(), settings.kvCacheF16(), settings.roundActivations());
    }

    /** Device bytes the model takes with these settings (weights, KV caches of every slot, activations). */
    public static long deviceBytes(LoadedModel m, Settings settings) {
        return deviceBytes(m, shape(settings));
    }

    static long deviceBytes(LoadedModel m, GraphBuilder.Shape s) {
        ModelConfig c = m.config();
        long total = 0;
        for (TensorData t : m.tensors().values()) {
            total += t.dims().length == 1 ? 4 * t.elements() : DeviceWeight.deviceBytes(t);
        }
        if (m.optionalTensor("output.weight") == null) {
            total += DeviceWeight.deviceBytes(m.tensor("token_embd.weight"));
        }
        return total + GraphBuilder.kvBytes(c, s) + GraphBuilder.activationBytes(c, s);
    }

    // ------------------------------------------------------------------ sequences

    private static final class TornadoSequence implements Sequence {
        private final TornadoBackend owner;
        private final int slot, capacity;
        private boolean closed;

        TornadoSequence(TornadoBackend owner, int slot, int capacity) {
            this.owner = owner;
            this.slot = slot;
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
                    owner.slots[slot] = null;
                }
            }
        }
    }

    @Override
    public synchronized Sequence openSequence(int capacity) {
        if (capacity > settings.context()) {
            throw new IllegalArgumentException("the TornadoVM backend was prepared for a context of " + settings.context()
                    + " tokens per sequence (--ctx at load); a sequence of " + capacity + " does not fit");
        }
        for (int i = 0; i < slots.length; i++) {
            if (slots[i] == null) {
                slots[i] = new TornadoSequence(this, i, capacity);
                return slots[i];
            }
        }
        throw new IllegalStateException("the TornadoVM backend holds " + slots.length + " sequence(s) on the device and all are open "
                + "(close one first, or load with more sequence slots: --parallel)");
    }

    // ------------------------------------------------------------------ execution

    /** Runs the batch in passes of consecutive rows, each within the graphs' row and output-row limits. */
    @Override
    public synchronized void forward(Batch batch) {
        batch.validate(c.vocabSize(), c.dim());
        for (int i = 0; i < batch.size(); i++) {
            if (!(batch.sequence(i) instanceof TornadoSequence s) || s.owner != this || s.closed) {
                throw new IllegalArgumentException("row " + i + " belongs to a sequence that is closed or was not opened on this backend");
            }
        }
        int from = 0;
        while (from < batch.size()) {
            int to = from, outs = 0;
            while (to < batch.size() && to - from < shape.rows() && (batch.output(to) == Batch.Output.NONE || outs < shape.outputs())) {
                outs += batch.output(to) == Batch.Output.NONE ? 0 : 1;
                to++;
            }
            pass(batch, from, to, outs);
            from = to;
        }
    }

    private void pass(Batch batch, int from, int to, int outs) {
        int n = to - from;
        int[] tokens = new int[n], positions = new int[n], bases = new int[n];
        double[] ropeBases = new double[n];
        int j = 0;
        DeviceSampling sampling = graphs.sampling;
        sampling.clear();
        for (int i = from; i < to; i++) {
            int b = i - from;
            tokens[b] = batch.token(i);
            positions[b] = batch.position(i);
            bases[b] = ((TornadoSequence) batch.sequence(i)).slot * settings.context();
            ropeBases[b] = batch.ropeBase(i);
            if (batch.output(i) != Batch.Output.NONE) {
                sampledHere[j] = batch.output(i) == Batch.Output.SAMPLE && deviceSampling && sampling.device(j, batch.sampling(i));
                if (!sampledHere[j]) {
                    sampling.none(j);
                }
                graphs.meta.set(BatchLayout.OUT_ROW + j++, b);
            }
        }
        TornadoExecutionResult r = run(tokens, positions, bases, ropeBases, n, outs);
        boolean logitsCopied = false, hiddenCopied = false;
        j = 0;
        for (int i = from; i < to; i++) {
            Batch.Output o = batch.output(i);
            if (o == Batch.Output.NONE) {
                continue;
            }
            switch (o) {
                case ARGMAX -> batch.setArgmax(i, graphs.result.get(j));
                case LOGITS -> {
                    if (!logitsCopied) {
                        r.transferToHost(graphs.logits);
                        logitsCopied = true;
                    }
                    float[] dest = batch.destination(i);
                    int off = j * c.vocabSize();
                    for (int t = 0; t < c.vocabSize(); t++) {
                        dest[t] = graphs.logits.get(off + t);
                    }
                    batch.setArgmax(i, graphs.result.get(j));
                }
                case SAMPLE -> {
                    int id = graphs.result.get(j);
                    // (an id outside the vocabulary, as from logits that are all NaN, is treated as a fallback too)
                    boolean device = sampledHere[j] && id >= 0 && id < c.vocabSize();
                    if (!device) {
                        // sampled on the host: from the raw logits, or from the logits the device has penalized
                        if (!logitsCopied) {
                            r.transferToHost(graphs.logits);
                            logitsCopied = true;
                        }
                        if (hostLogits == null) {
                            hostLogits = new float[c.vocabSize()];
                        }
                        int off = j * c.vocabSize();
                        for (int t = 0; t < c.vocabSize(); t++) {
                            hostLogits[t] = graphs.logits.get(off + t);
                        }
                        id = sampledHere[j] ? batch.sampling(i).samplePenalized(hostLogits) : batch.sampling(i).sample(hostLogits);
                    }
                    sampling.count(device, sampledHere[j]);
                    batch.setSampled(i, id);
                }
                case HIDDEN -> {
                    if (!hiddenCopied) {
                        r.transferToHost(graphs.hidden);
                        hiddenCopied = true;
                    }
                    float[] dest = batch.destination(i);
                    int off = j * c.dim();
                    for (int t = 0; t < c.dim(); t++) {
                        dest[t] = graphs.hidden.get(off + t);
                    }
                }
                default -> throw new IllegalStateException();
            }
            j++;
        }
    }

    /**
     * One pass: meta (rows, their tokens, positions and cache slots; the output rows are set by the caller) and the
     * RoPE table of every row, then the embedding and layer graphs, and the logits graph when a row wants an output.
     */
    private TornadoExecutionResult run(int[] tokens, int[] positions, int[] cacheBases, double[] ropeBases, int n, int outs) {
        var meta = graphs.meta;
        meta.set(BatchLayout.ROWS, n);
        meta.set(BatchLayout.OUT_ROWS, outs);
        meta.set(BatchLayout.MODE, invariant ? BatchLayout.MODE_INVARIANT : 0);
        int hd = c.headDim(), longest = 0;
        for (int b = 0; b < n; b++) {
            longest = Math.max(longest, positions[b] + 1);
            meta.set(BatchLayout.TOKEN + b, tokens[b]);
            meta.set(BatchLayout.POSITION + b, positions[b]);
            meta.set(BatchLayout.CACHE_BASE + b, cacheBases[b]);
            Rope.table(c, positions[b], ropeBases[b], ropeScratch, b * hd);
        }
        for (int i = 0; i < n * hd; i++) {
            graphs.rope.set(i, ropeScratch[i]);
        }
        // context splits of the attention this pass needs: one per splitPositions positions of its longest row
        meta.set(BatchLayout.SPLITS, Math.max(1, Math.min(tuning.splits(), (longest + tuning.splitPositions() - 1) / tuning.splitPositions())));
        graphs.size(n, outs, invariant);
        int count = graphs.graphs.size();
        int last = outs > 0 ? count : count - 1;
        if (settings.profile()) {
            long cached = 0;
            for (int b = 0; b < n; b++) {
                cached += positions[b] + 1L;
            }
            profile.begin(n, cached);
        }
        long t0 = System.nanoTime();
        TornadoExecutionResult r = null;
        for (int i = 0; i < last; i++) {
            r = plan.withGraph(i).withGridScheduler(graphs.grid).execute();
            if (settings.profile()) {
                profile.record(graphs.names.get(i), graphs.tasks.get(graphs.names.get(i)), r);
                plan.clearProfiles(); // TornadoVM appends every execution to the log: keep it to this one
            }
        }
        if (settings.profile()) {
            profile.end(System.nanoTime() - t0);
        }
        return r;
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
