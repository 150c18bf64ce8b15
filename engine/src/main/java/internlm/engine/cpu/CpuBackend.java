package internlm.engine.cpu;

import internlm.engine.model.Backend;
import internlm.engine.model.Batch;
import internlm.engine.model.Rope;

import internlm.loader.LoadedModel;
import internlm.loader.ModelConfig;
import internlm.loader.Progress;
import internlm.loader.TensorData;
import internlm.loader.quant.Quants;

/**
 * The reference backend: the whole forward pass on the CPU with the Java Vector API and all cores. Weights stay in
 * their stored type (Q8_0/Q4_0 blocks are multiplied as blocks); activations, the KV cache and logits are float.
 * Several tokens (a prompt) go through together so each weight row is read once per batch.
 */
public final class CpuBackend implements Backend {
    private final ModelConfig c;
    private final Parallel par;
    private final TensorData tokenEmbedding;
    private final float[] outputNorm;
    private final Weight output;
    private final Layer[] layers;

    /** One decoder layer's weights. Biases are null when the model has none. */
    private record Layer(float[] attnNorm, Weight wq, Weight wk, Weight wv, Weight wo,
                         float[] bq, float[] bk, float[] bv, float[] bo,
                         float[] ffnNorm, Weight gate, Weight up, Weight down) {}

    public CpuBackend(LoadedModel model, int threads, Progress progress) {
        this(model, threads, true, progress);
    }

    /**
     * @param roundActivations round matmul inputs like llama.cpp does (see {@link ActivationRounding}); false keeps
     *                         them exact
     */
    public CpuBackend(LoadedModel model, int threads, boolean roundActivations, Progress progress) {
        this(model, threads, roundActivations, false, progress);
    }

    /**
     * @param roundActivations round matmul inputs like llama.cpp does (see {@link ActivationRounding}); false keeps
     *                         them exact
     * @param kvF16            keep the KV caches in half precision (half the memory and cache traffic; see {@link KvCache})
     */
    public CpuBackend(LoadedModel model, int threads, boolean roundActivations, boolean kvF16, Progress progress) {
        this.c = model.config();
        this.kvF16 = kvF16;
        this.roundActivations = roundActivations;
        this.par = new Parallel(threads);
        this.halfOnHeap = halfFitsOnHeap(model);
        int mb = MAX_BATCH;
        this.x = new float[mb * c.dim()];
        this.xb = new float[mb * Math.max(c.dim(), c.qDim())];
        this.q = new float[mb * c.qDim()];
        this.k = new float[mb * c.kvDim()];
        this.v = new float[mb * c.kvDim()];
        this.att = new float[mb * c.qDim()];
        this.hb = new float[mb * c.ffn()];
        this.hb2 = new float[mb * c.ffn()];
        this.rope = new float[mb * c.headDim()];
        this.logitsScratch = new float[LOGIT_ROWS * c.vocabSize()];
        try {
            this.tokenEmbedding = model.tensor("token_embd.weight");
            this.outputNorm = vector(model.tensor("output_norm.weight"));
            TensorData out = model.optionalTensor("output.weight");
            this.output = weight(out != null ? out : tokenEmbedding);
            this.layers = new Layer[c.layers()];
            for (int l = 0; l < c.layers(); l++) {
                String p = "blk." + l + ".";
                layers[l] = new Layer(
                        vector(model.tensor(p + "attn_norm.weight")),
                        weight(model.tensor(p + "attn_q.weight")),
                        weight(model.tensor(p + "attn_k.weight")),
                        weight(model.tensor(p + "attn_v.weight")),
                        weight(model.tensor(p + "attn_output.weight")),
                        optionalVector(model, p + "attn_q.bias"),
                        optionalVector(model, p + "attn_k.bias"),
                        optionalVector(model, p + "attn_v.bias"),
                        optionalVector(model, p + "attn_output.bias"),
                        vector(model.tensor(p + "ffn_norm.weight")),
                        weight(model.tensor(p + "ffn_gate.weight")),
                        weight(model.tensor(p + "ffn_up.weight")),
                        weight(model.tensor(p + "ffn_down.weight")));
            }
            packAll(progress);
        } catch (RuntimeException | Error e) {
            par.close();
            throw e;
        }
    }

    private final boolean roundActivations;
    private final boolean kvF16;
    private final float[][] rounded = {new float[0], new float[0], new float[0]};
    /** A weight to repack and the tensor it comes from. */
    private record Packing(Weight weight, TensorData tensor) {}

    private final java.util.List<Packing> toPack = new java.util.ArrayList<>();

    private final boolean halfOnHeap;

    /**
     * Whether the file-mapped F16/BF16 matrices can be copied to the heap (tiled: faster decode) next to the repacked
     * quantized ones, leaving 40 % of the free heap; otherwise they are read from the mapped file (the launcher's heap
     * is 75 % of RAM: a 1.8B F16 model is copied on a 24 GiB machine, a 7B one is not). Matrices the loader already
     * holds in native memory (converted from a Hugging Face checkpoint) are never copied: that would hold them twice.
     */
    private static boolean halfFitsOnHeap(LoadedModel model) {
        long half = 0, quant = 0;
        for (TensorData t : model.tensors().values()) {
            if (t.dims().length == 2) {
                switch (t.type()) {
                    case F16, BF16 -> half += t.data().isMapped() ? t.data().byteSize() : 0;
                    // repacked: the quants of each block, its f16 scale widened to f32
                    case Q8_0, Q4_0 -> quant += t.data().byteSize() / t.type().bytesPerBlock * (t.type().bytesPerBlock + 2);
                    default -> { }
                }
            }
        }
        Runtime rt = Runtime.getRuntime();
        long free = rt.maxMemory() - (rt.totalMemory() - rt.freeMemory());
        // leave 40 % of the heap for KV caches (they grow with the context) and activations
        return half > 0 && half + quant < 0.6 * free;
    }

    private Weight weight(TensorData t) {
        Weight w = Weight.of(t, halfOnHeap && t.data().isMapped());
        if (w.needsPacking()) {
            toPack.add(new Packing(w, t));
        }
        return w;
    }

    /** Repacks the quantized tensors (all cores), showing progress. */
    private void packAll(Progress progress) {
        long total = 0;
        for (Packing e : toPack) {
            total += e.weight().bytes();
        }
        long done = 0;
        for (Packing e : toPack) {
            Weight w = e.weight();
            TensorData t = e.tensor();
            par.forRange(w.rows, 256, (from, to) -> w.pack(t, from, to));
            done += w.bytes();
            progress.update("preparing weights for the CPU", done, total);
        }
        toPack.clear();
    }

    private static float[] vector(TensorData t) {
        float[] v = new float[(int) t.elements()];
        Quants.dequantize(t.type(), t.data(), 0, v, 0, v.length);
        return v;
    }

    private static float[] optionalVector(LoadedModel m, String name) {
        TensorData t = m.optionalTensor(name);
        return t == null ? null : vector(t);
    }

    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public int vocabularySize() {
        return c.vocabSize();
    }

    @Override
    public String description() {
        return "CPU, " + par.threads() + " thread" + (par.threads() == 1 ? "" : "s") + ", " + VectorKernels.describe() + (kvF16 ? ", f16 KV cache" : "");
    }

    /**
     * Largest number of rows pushed through the layers at once (larger batches are split, in order). Each weight row
     * is dequantized once per batch: 128 rather than 32 took pp128 on the 1.8B Q8_0 model from ~36 to ~45 tok/s.
     */
    public static final int MAX_BATCH = 128;

    /**
     * A sequence on the CPU: its KV cache, which grows with the positions used, and what each cached position holds
     * (the token and the RoPE base it was evaluated with), so sequences holding the same prefix can be recognised.
     */
    private static final class CpuSequence implements Sequence {
        final KvCache kv;
        int[] tokens = new int[0];
        double[] bases = new double[0];
        boolean closed;

        CpuSequence(ModelConfig c, boolean kvF16, int capacity) {
            kv = KvCache.create(kvF16, c.layers(), c.kvHeads(), c.headDim(), capacity);
        }

        /** Makes room for position pos and records what it will hold. */
        void record(int pos, int token, double base) {
            kv.ensure(pos + 1);
            if (tokens.length < kv.allocated) {
                int old = tokens.length;
                tokens = java.util.Arrays.copyOf(tokens, kv.allocated);
                bases = java.util.Arrays.copyOf(bases, kv.allocated);
                java.util.Arrays.fill(bases, old, bases.length, Double.NaN); // never written: equal to nothing
            }
            tokens[pos] = token;
            bases[pos] = base;
        }

        /** How many leading positions (up to limit) hold the same tokens with the same RoPE bases as another sequence. */
        int commonPrefix(CpuSequence o, int limit) {
            int n = 0;
            while (n < limit && tokens[n] == o.tokens[n] && bases[n] == o.bases[n]) {
                n++;
            }
            return n;
        }

        @Override
        public int capacity() {
            return kv.capacity;
        }

        @Override
        public void close() {
            closed = true;
        }
    }

    /** Activations of up to MAX_BATCH rows (one set per backend: forward passes run one at a time). */
    private final float[] x, xb, q, k, v, att, hb, hb2, rope, logitsScratch;
    private final CpuSequence[] rowSeq = new CpuSequence[MAX_BATCH];
    private final int[] rowPos = new int[MAX_BATCH];
    /** Per row: an earlier row's sequence holding the same cached prefix, and how many positions of it are read there. */
    private final CpuSequence[] rowPrefix = new CpuSequence[MAX_BATCH];
    private final int[] rowShared = new int[MAX_BATCH];

    @Override
    public Sequence openSequence(int capacity) {
        if (capacity <= 0) {
            throw new IllegalArgumentException("a sequence needs a positive capacity, got " + capacity);
        }
        return new CpuSequence(c, kvF16, capacity);
    }

    @Override
    public int hiddenSize() {
        return c.dim();
    }

    @Override
    public synchronized void forward(Batch batch) {
        batch.validate(c.vocabSize(), c.dim());
        for (int i = 0; i < batch.size(); i++) {
            if (!(batch.sequence(i) instanceof CpuSequence s) || s.closed) {
                throw new IllegalArgumentException("row " + i + " belongs to a sequence that is closed or was not opened on this backend");
            }
        }
        for (int from = 0; from < batch.size(); from += MAX_BATCH) {
            forwardRows(batch, from, Math.min(batch.size(), from + MAX_BATCH));
        }
    }

    /**
     * The transformer over rows [from, to) of the batch. Reads like the model's definition:
     * x = embed(token); per layer: x += Wo·attention(rope(Wq·norm(x)), rope(Wk·norm(x)), Wv·norm(x));
     * x += Wdown·(silu(Wgate·norm(x)) ⊙ Wup·norm(x)); logits = Wout·norm(x) (or norm(x) itself for a hidden row).
     * Products run over all rows at once; attention runs per row against its own sequence's cache.
     */
    private void forwardRows(Batch batch, int from, int to) {
        final int B = to - from, dim = c.dim(), qd = c.qDim(), kvd = c.kvDim(), ffn = c.ffn(), hd = c.headDim();
        for (int b = 0; b < B; b++) {
            int row = from + b;
            rowSeq[b] = (CpuSequence) batch.sequence(row);
            rowPos[b] = batch.position(row);
            rowSeq[b].record(rowPos[b], batch.token(row), batch.ropeBase(row));
            Quants.dequantize(tokenEmbedding.type(), tokenEmbedding.data(), (long) batch.token(row) * dim, x, b * dim, dim);
            Rope.table(c, rowPos[b], batch.ropeBase(row), rope, b * hd);
        }
        sharedPrefixes(B);
        for (int l = 0; l < layers.length; l++) {
            Layer w = layers[l];
            // attention block
            for (int b = 0; b < B; b++) {
                rmsnorm(xb, b * dim, x, b * dim, w.attnNorm, dim, c.rmsEps());
            }
            matmul3(w.wq, q, qd, w.wk, k, kvd, w.wv, v, kvd, xb, dim, B);
            for (int b = 0; b < B; b++) {
                addBias(q, b * qd, w.bq);
                addBias(k, b * kvd, w.bk);
                addBias(v, b * kvd, w.bv);
                Rope.rotate(q, b * qd, c.heads(), hd, rope, b * hd);
                Rope.rotate(k, b * kvd, c.kvHeads(), hd, rope, b * hd);
                rowSeq[b].kv.store(l, rowPos[b], k, b * kvd, v, b * kvd);
            }
            attention(l, B);
            matmul(w.wo, att, qd, B, xb, dim);
            for (int b = 0; b < B; b++) {
                addBias(xb, b * dim, w.bo);
                add(x, b * dim, xb, b * dim, dim);
            }
            // feed-forward block (SwiGLU)
            for (int b = 0; b < B; b++) {
                rmsnorm(xb, b * dim, x, b * dim, w.ffnNorm, dim, c.rmsEps());
            }
            matmul3(w.gate, hb, ffn, w.up, hb2, ffn, null, null, 0, xb, dim, B);
            for (int b = 0; b < B; b++) {
                VectorKernels.swiglu(hb, hb2, b * ffn, ffn);
            }
            matmul(w.down, hb, ffn, B, xb, dim);
            for (int b = 0; b < B; b++) {
                add(x, b * dim, xb, b * dim, dim);
            }
        }
        outputs(batch, from, to);
        java.util.Arrays.fill(rowSeq, null);
        java.util.Arrays.fill(rowPrefix, null);
    }

    /** Final norm and LM head for the rows that ask for an output; the products run over those rows together. */
    private void outputs(Batch batch, int from, int to) {
        final int dim = c.dim(), vocab = c.vocabSize();
        int n = 0;
        int[] rows = new int[to - from];
        for (int row = from; row < to; row++) {
            Batch.Output o = batch.output(row);
            if (o == Batch.Output.NONE) {
                continue;
            }
            rmsnorm(xb, n * dim, x, (row - from) * dim, outputNorm, dim, c.rmsEps());
            if (o == Batch.Output.HIDDEN) {
                System.arraycopy(xb, n * dim, batch.destination(row), 0, dim);
            } else {
                rows[n] = row;
                n++;
            }
        }
        // n rows need the LM head (their normalised states were written at xb[0..n·dim) in order; hidden rows were
        // written over by the next one, which is fine: they are done)
        for (int i = 0; i < n; i += LOGIT_ROWS) {
            int m = Math.min(LOGIT_ROWS, n - i);
            float[] in = i == 0 ? xb : java.util.Arrays.copyOfRange(xb, i * dim, (i + m) * dim);
            matmul(output, in, dim, m, logitsScratch, vocab);
            for (int j = 0; j < m; j++) {
                int row = rows[i + j];
                int best = argmax(logitsScratch, j * vocab, vocab);
                batch.setArgmax(row, best);
                if (batch.output(row) == Batch.Output.LOGITS) {
                    System.arraycopy(logitsScratch, j * vocab, batch.destination(row), 0, vocab);
                } else if (batch.output(row) == Batch.Output.SAMPLE) {
                    // the logits are on the host already: sampled here, as the generation would (samplesOnDevice() is false)
                    batch.setSampled(row, batch.sampling(row).sample(java.util.Arrays.copyOfRange(logitsScratch, j * vocab, (j + 1) * vocab)));
                }
            }
        }
    }

    /** Rows of logits computed at once (the scratch holds this many vocabulary-sized rows). */
    private static final int LOGIT_ROWS = 8;

    private static int argmax(float[] l, int off, int n) {
        int best = 0;
        for (int i = 1; i < n; i++) {
            if (l[off + i] > l[off + best]) {
                best = i;
            }
        }
        return best;
    }

    /** Each pool thread's attention scores for two heads (grown to the longest sequence seen). */
    private final ThreadLocal<float[][]> scoresBuffer = ThreadLocal.withInitial(() -> new float[][] {new float[256], new float[256]});

    /**
     * Finds, for each row, an earlier row's sequence that holds the same prefix (the same tokens at the same positions
     * with the same RoPE bases — as concurrent chats with one system prompt do), so attention reads that prefix's
     * cache once for all of them (see {@link KvCache#attend}). Both sequences' caches are valid up to their rows'
     * positions in this batch (every row's keys and values are stored before the layer's attention), and because the
     * backend is batch-invariant the two copies of the prefix hold the same bits: a row's result does not change.
     */
    private void sharedPrefixes(int B) {
        for (int b = 0; b < B; b++) {
            rowPrefix[b] = null;
            rowShared[b] = 0;
            for (int a = 0; a < b; a++) {
                if (rowSeq[a] == rowSeq[b] || (a > 0 && rowSeq[a] == rowSeq[a - 1])) {
                    continue; // a sequence's own rows, or a later row of a sequence already compared
                }
                int shared = rowSeq[b].commonPrefix(rowSeq[a], Math.min(lastPosition(a, B), rowPos[b]) + 1) / KvCache.BLOCK * KvCache.BLOCK;
                if (shared > rowShared[b]) {
                    rowShared[b] = shared;
                    rowPrefix[b] = rowSeq[a];
                }
            }
        }
    }

    /** The last position of row a's sequence among the batch's rows (its rows of one sequence are consecutive). */
    private int lastPosition(int a, int B) {
        int p = rowPos[a];
        for (int i = a + 1; i < B && rowSeq[i] == rowSeq[a]; i++) {
            p = Math.max(p, rowPos[i]);
        }
        return p;
    }

    /**
     * Causal grouped-query attention of each row's queries against its own sequence's cache; result in att. A task is
     * (KV head, row): the query heads that share that KV head run together ({@link KvCache#attend}: two at a time,
     * each cache vector read once for both; scores q·k_t / √hd as vector FMAs over transposed key blocks, softmax with
     * the exponentials summed in a fixed order, then Σ_t p_t·v_t accumulated in registers). Consecutive tasks are the
     * rows of one KV head, so rows reading a shared prefix find it in the cache of the core that just read it. A row's
     * result depends only on its own sequence's tokens, never on the other rows of the batch.
     */
    private void attention(int layer, int B) {
        final int hd = c.headDim(), qd = c.qDim(), group = c.groupSize(), kvHeads = c.kvHeads();
        int longest = 0;
        for (int b = 0; b < B; b++) {
            longest = Math.max(longest, rowPos[b] + 1);
        }
        final int room = (longest + KvCache.BLOCK - 1) / KvCache.BLOCK * KvCache.BLOCK;
        int chunk = Math.max(1, Math.min(B, B * kvHeads / (4 * par.threads())));
        par.forRange(B * kvHeads, chunk, (from, to) -> {
            float[][] s = scoresBuffer.get();
            if (s[0].length < room) {
                int n = Math.max(room, 2 * s[0].length);
                s[0] = new float[n];
                s[1] = new float[n];
            }
            for (int task = from; task < to; task++) {
                int g = task / B, b = task % B;
                int qOff = b * qd + g * group * hd;
                KvCache prefix = rowPrefix[b] == null ? null : rowPrefix[b].kv;
                rowSeq[b].kv.attend(layer, g, q, qOff, group, rowPos[b] + 1, prefix, rowShared[b], s[0], s[1], att, qOff);
            }
        });
    }

    /**
     * Each pool thread's buffer for a batched product's dequantized weights, allocated once. (A fresh 32 KiB array per
     * parallel chunk was ~90 MB of garbage per decode step of four sequences on the 1.8B model, and young-generation
     * pauses of 0.3–0.9 s every few seconds.)
     */
    private final ThreadLocal<float[]> scratch = ThreadLocal.withInitial(() -> new float[Weight.MAX_SCRATCH]);

    /** y[b, 0..rows) = W · x[b] for b &lt; B. */
    private void matmul(Weight w, float[] x, int xStride, int B, float[] y, int yStride) {
        float[] xin = input(w, x, xStride, B, 0);
        forRows(w.rows, B, (from, to) -> w.matmul(xin, xStride, B, y, yStride, 0, from, to, w.needsScratch(B) ? scratch.get() : null));
    }

    /**
     * The input a matrix sees: x itself, or (llama.cpp-compatible mode) x rounded to the grid of the weight type's
     * dot-product type, in one of two per-backend buffers.
     */
    private float[] input(Weight w, float[] x, int xStride, int B, int slot) {
        if (!roundActivations || !ActivationRounding.applies(w.type)) {
            return x;
        }
        float[] buf = rounded[slot];
        if (buf.length < B * xStride) {
            buf = rounded[slot] = new float[B * xStride];
        }
        for (int b = 0; b < B; b++) {
            ActivationRounding.round(w.type, x, b * xStride, w.cols, buf);
        }
        return buf;
    }

    /** Up to three products sharing the same input, in one parallel region (Q/K/V, or gate/up). */
    private void matmul3(Weight w1, float[] y1, int s1, Weight w2, float[] y2, int s2, Weight w3, float[] y3, int s3,
                         float[] x, int xStride, int B) {
        int r1 = w1.rows, r2 = w2.rows, r3 = w3 == null ? 0 : w3.rows;
        float[] x1 = input(w1, x, xStride, B, 0);
        float[] x2 = w2.type == w1.type ? x1 : input(w2, x, xStride, B, 1);
        float[] x3 = w3 == null ? null : w3.type == w1.type ? x1 : w3.type == w2.type ? x2 : input(w3, x, xStride, B, 2);
        int total = r1 + r2 + r3;
        forRows(total, B, (from, to) -> {
            if (from < r1) {
                w1.matmul(x1, xStride, B, y1, s1, 0, from, Math.min(to, r1), w1.needsScratch(B) ? scratch.get() : null);
            }
            if (to > r1 && from < r1 + r2) {
                w2.matmul(x2, xStride, B, y2, s2, 0, Math.max(from, r1) - r1, Math.min(to, r1 + r2) - r1, w2.needsScratch(B) ? scratch.get() : null);
            }
            if (to > r1 + r2) {
                w3.matmul(x3, xStride, B, y3, s3, 0, Math.max(from, r1 + r2) - r1 - r2, to - r1 - r2, w3.needsScratch(B) ? scratch.get() : null);
            }
        });
    }

    /**
     * Splits the rows of a product over the threads. One token is memory-bound: each thread walks its own contiguous
     * share of the rows in order (long sequential runs let the hardware prefetchers stream the weights; measured on the
     * 1.8B model: 64-row chunks from a shared queue 8.8 tok/s, two long chunks per thread 11.7 tok/s) and steals small
     * chunks from the others' ends when it finishes first (so a thread slowed by the OS does not stall the region). A
     * batch is compute-bound: chunks from a shared queue balance better.
     */
    private void forRows(int rows, int B, Parallel.Range body) {
        int perThread = (rows + par.threads() - 1) / par.threads();
        if (B == 1) {
            par.forRangeOwned(rows, Math.max(16, perThread / 16) & ~3, body); // quads stay whole (see Weight.matmul)
        } else {
            par.forRange(rows, Math.max(16, Math.min(256, perThread / 8)) & ~3, body);
        }
    }

    /** out[outOff + i] = x[xOff + i] · weight[i] / √(mean(x²) + eps), i &lt; n (the mean in double). */
    public static void rmsnorm(float[] out, int outOff, float[] x, int xOff, float[] weight, int n, float eps) {
        double ss = 0;
        for (int i = 0; i < n; i++) {
            ss += (double) x[xOff + i] * x[xOff + i];
        }
        float scale = (float) (1.0 / Math.sqrt(ss / n + eps));
        for (int i = 0; i < n; i++) {
            out[outOff + i] = x[xOff + i] * scale * weight[i];
        }
    }

    private static void addBias(float[] y, int off, float[] bias) {
        if (bias != null) {
            for (int i = 0; i < bias.length; i++) {
                y[off + i] += bias[i];
            }
        }
    }

    private static void add(float[] y, int yOff, float[] x, int xOff, int n) {
        for (int i = 0; i < n; i++) {
            y[yOff + i] += x[xOff + i];
        }
    }

    @Override
    public void close() {
        par.close();
    }
}
