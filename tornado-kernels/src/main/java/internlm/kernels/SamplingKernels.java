package internlm.kernels;

import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.math.TornadoMath;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;

/**
 * Sampling on the device, so that a sampled token costs one int back to the host, as greedy decoding does. The chain
 * is llama.cpp's (the CPU {@code Sampler}'s): penalties → top-k → top-p → min-p → temperature → draw, candidates in
 * order of decreasing logit (ties: lower id first), the draw {@code r = u · total} walking the kept candidates in that
 * order with the uniform {@code u} the host drew from the request's seeded generator. Same candidates and the same walk
 * as the host, so the ids match except where float rounding (the host computes in double) moves a boundary.
 *
 * <p>Per output row j (row of {@code meta}'s output list) the parameters are {@link #ROW_INTS} ints and
 * {@link #ROW_FLOATS} floats at {@code j·ROW_INTS} / {@code j·ROW_FLOATS}; rows whose mode is not {@link #MODE_DEVICE}
 * are left alone. Penalties are entries (token, subtrahend) of a shared list, {@code count · frequency + presence}
 * computed on the host exactly as the CPU sampler computes it.
 *
 * <p>{@link #sampleTokens} runs one work-group per output row and never copies the vocabulary into local memory: it
 * finds a threshold τ such that the tokens above it contain every token the chain can keep and number at most
 * {@link #CANDIDATES}, by histograms of count and probability mass over {@link #BINS} value bins between the row's
 * smallest and largest logit, narrowed into one bin per level (a pass over the logits each, {@link #LEVELS} at most);
 * then it gathers those tokens into local memory, sorts them (bitonic) and runs the chain on them. Where no such τ
 * exists (a flat distribution under top-p near 1, top-k above {@link #CANDIDATES} with top-p, thousands of tied
 * logits) the row's result is {@link #FALLBACK} and the host samples it from the logits.
 */
public final class SamplingKernels {
    private SamplingKernels() {}

    /** Ints per output row: mode, top-k (≤ 0: off), first penalty entry, number of penalty entries. */
    public static final int ROW_INTS = 4;
    public static final int MODE = 0;
    public static final int TOP_K = 1;
    public static final int PENALTY_FROM = 2;
    public static final int PENALTY_COUNT = 3;
    /** Floats per output row: temperature (≤ 0: greedy), top-p (≥ 1: off), log(min-p) ({@link #NO_MIN_P}: off), u, repetition penalty. */
    public static final int ROW_FLOATS = 5;
    public static final int TEMPERATURE = 0;
    public static final int TOP_P = 1;
    public static final int LOG_MIN_P = 2;
    public static final int UNIFORM = 3;
    public static final int REPEAT_PENALTY = 4;

    /** Mode of a row that is not sampled on the device. */
    public static final int MODE_NONE = 0;
    /** Mode of a row sampled by these kernels. */
    public static final int MODE_DEVICE = 1;
    /** log(min-p) of a row without min-p. */
    public static final float NO_MIN_P = -3.0e38f;
    /** Result of a row the device could not sample: the host samples it from the (penalized) logits. */
    public static final int FALLBACK = -1;

    /** Value bins per level of the threshold search. */
    public static final int BINS = 16;
    /** Most candidates sorted in local memory (the histogram columns of a 256-item group reuse the same arrays). */
    public static final int CANDIDATES = BINS * KernelSupport.MAX_LOCAL;
    /** Levels of the threshold search (each narrows the bin that holds the boundary 16-fold). */
    public static final int LEVELS = 8;
    /**
     * Mass margin of the top-p criterion in the threshold search: the candidates hold at least top-p · (1 + margin) of
     * the mass, so that the exact crossing, computed on the sorted candidates with sums in another order, lies inside.
     */
    public static final float TOP_P_MARGIN = 1e-4f;

    private static final int SEARCHING = 0, FOUND = 1, GIVE_UP = 2;
    // local state: floats after the BINS + 1 edges, ints
    private static final int F_HI = BINS + 1, F_LO = BINS + 2, F_ABOVE = BINS + 3, F_Z = BINS + 4, F_TAU = BINS + 5, F_TOTAL = BINS + 6, STATE_FLOATS = BINS + 8;
    private static final int S_STATE = 0, S_OPEN = 1, S_ABOVE = 2, S_ALL = 3, S_COUNT = 4, S_KEEP = 5, STATE_INTS = 8;
    private static final int NONE_YET = 2147483647;

    /**
     * Applies the penalties of every {@link #MODE_DEVICE} output row to its logits, in place: item i takes entry i of
     * each row ({@code l = l ≤ 0 ? l · penalty : l / penalty; l −= subtrahend}, as the CPU sampler). Launch at least as
     * many items as the largest per-row entry count.
     */
    public static void samplePenalties(KernelContext ctx, FloatArray logits, IntArray rowInts, FloatArray rowFloats, IntArray penaltyIds,
                                       FloatArray penaltySubs, IntArray meta, int n) {
        int i = ctx.globalIdx, m = meta.get(BatchLayout.OUT_ROWS);
        for (int j = 0; j < m; j++) {
            boolean mine = (rowInts.get(j * ROW_INTS + MODE) == MODE_DEVICE) & (i < rowInts.get(j * ROW_INTS + PENALTY_COUNT));
            if (mine) {
                int e = rowInts.get(j * ROW_INTS + PENALTY_FROM) + i;
                int idx = j * n + penaltyIds.get(e);
                float rp = rowFloats.get(j * ROW_FLOATS + REPEAT_PENALTY);
                float x = logits.get(idx);
                float y = x <= 0f ? x * rp : x / rp;
                logits.set(idx, y - penaltySubs.get(e));
            }
        }
    }

    /**
     * One work-group (a power of two, at most {@link KernelSupport#MAX_LOCAL} items) per output row j: writes the
     * sampled id of each {@link #MODE_DEVICE} row to {@code result[j]}, or {@link #FALLBACK}. Temperature ≤ 0 gives the
     * first largest logit (greedy with penalties). {@code candidates}: the most tokens to sort, at most
     * {@link #CANDIDATES}. All local arrays stay in this method (see {@link KernelSupport}).
     */
    public static void sampleTokens(KernelContext ctx, FloatArray logits, IntArray rowInts, FloatArray rowFloats, IntArray result, IntArray meta, int n,
                                    int candidates) {
        float[] fl = ctx.allocateFloatLocalArray(CANDIDATES);
        int[] il = ctx.allocateIntLocalArray(CANDIDATES);
        float[] fr = ctx.allocateFloatLocalArray(KernelSupport.MAX_LOCAL);
        int[] ir = ctx.allocateIntLocalArray(2 * KernelSupport.MAX_LOCAL);
        float[] fs = ctx.allocateFloatLocalArray(STATE_FLOATS);
        int[] is = ctx.allocateIntLocalArray(STATE_INTS);
        int lid = ctx.localIdx, wg = ctx.localGroupSizeX, j = ctx.groupIdx;
        // BINS, but not a compile-time constant (wg < 2^30): the loops over the bins stay loops instead of being
        // unrolled 16-fold, which made the OpenCL source several times longer and PoCL's compilation ~40 s
        int bins = BINS + (wg >> 30);
        // (conditions are written with non-short-circuit & and |: TornadoVM 5.2's OpenCL code generation turned an
        // `if (a && (b || c))` of this kernel into C whose else-path fell through into the then-block)
        int mode = j < meta.get(BatchLayout.OUT_ROWS) ? rowInts.get(j * ROW_INTS + MODE) : MODE_NONE;
        if (mode == MODE_DEVICE) {
            int o = j * n;
            int k = rowInts.get(j * ROW_INTS + TOP_K);
            if ((k <= 0) | (k > n)) {
                k = n;
            }
            float temp = rowFloats.get(j * ROW_FLOATS + TEMPERATURE);
            float topP = rowFloats.get(j * ROW_FLOATS + TOP_P);
            float logMinP = rowFloats.get(j * ROW_FLOATS + LOG_MIN_P);
            float u = rowFloats.get(j * ROW_FLOATS + UNIFORM);

            // ---- the largest logit (first on ties) and the smallest
            float best = -3.4e38f, least = 3.4e38f;
            int bi = NONE_YET;
            for (int i = lid; i < n; i += wg) {
                float x = logits.get(o + i);
                if (x > best) {
                    best = x;
                    bi = i;
                }
                least = TornadoMath.min(least, x);
            }
            fr[lid] = best;
            ir[lid] = bi;
            fl[lid] = least;
            ctx.localBarrier();
            for (int s = wg >> 1; s > 0; s >>= 1) {
                if (lid < s) {
                    float ov = fr[lid + s];
                    int oi = ir[lid + s];
                    if ((ov > fr[lid]) | ((ov == fr[lid]) & (oi < ir[lid]))) {
                        fr[lid] = ov;
                        ir[lid] = oi;
                    }
                    fl[lid] = TornadoMath.min(fl[lid], fl[lid + s]);
                }
                ctx.localBarrier();
            }
            float max = fr[0], min = fl[0];
            int arg = ir[0];
            ctx.localBarrier();

            if (temp <= 0f) {
                if (lid == 0) {
                    result.set(j, arg);
                }
            } else {
                // ---- threshold search: level by level, a histogram of count and mass over BINS value bins of (lo, hi]
                // (the first level, "open", has no lower bound: its last bin takes everything below)
                if (lid == 0) {
                    // more than `candidates` kept by top-k alone, or a top-k mass over more than that: no bounded set
                    boolean hopeless = (k > candidates) & (((k < n) & (topP < 1f)) | ((topP >= 1f) & (logMinP <= NO_MIN_P)));
                    is[S_STATE] = hopeless ? GIVE_UP : SEARCHING;
                    is[S_OPEN] = 1;
                    is[S_ABOVE] = 0;
                    fs[F_HI] = max;
                    fs[F_LO] = min;
                    fs[F_ABOVE] = 0f;
                }
                ctx.localBarrier();
                for (int level = 0; level < LEVELS; level++) {
                    if (is[S_STATE] == SEARCHING) {
                        float hi = fs[F_HI], lo = fs[F_LO];
                        boolean open = is[S_OPEN] == 1;
                        float w = (hi - lo) / BINS;
                        if (lid == 0) {
                            // edges e(0) = hi ≥ e(1) ≥ … ≥ e(BINS) = lo: bin g holds e(g+1) < x ≤ e(g)
                            fs[0] = hi;
                            for (int g = 1; g < bins; g++) {
                                float e = TornadoMath.min(hi - g * w, fs[g - 1]);
                                fs[g] = open ? e : TornadoMath.max(e, lo);
                            }
                            fs[BINS] = lo;
                        }
                        for (int g = 0; g < bins; g++) {
                            il[g * wg + lid] = 0;
                            fl[g * wg + lid] = 0f;
                        }
                        ctx.localBarrier();
                        float inv = w > 0f ? 1f / w : 0f;
                        for (int i = lid; i < n; i += wg) {
                            float x = logits.get(o + i);
                            boolean inside = (x <= hi) & (open | (x > lo));
                            if (inside) {
                                float guess = (hi - x) * inv;
                                int g = guess < BINS - 1 ? (int) guess : BINS - 1;
                                while (g > 0 && x > fs[g]) {
                                    g--;
                                }
                                while (g < BINS - 1 && x <= fs[g + 1]) {
                                    g++;
                                }
                                il[g * wg + lid] += 1;
                                fl[g * wg + lid] += TornadoMath.exp(x - max);
                            }
                        }
                        // bin totals in two steps without a loop of barriers (PoCL compiles barriers inside loops
                        // inside loops slowly): 16 partial sums per bin (every 16th item's entry), then the partials
                        ctx.localBarrier();
                        for (int t = lid; t < KernelSupport.MAX_LOCAL; t += wg) {
                            int g = t >> 4, c0 = 0;
                            float m0 = 0f;
                            for (int i = t & 15; i < wg; i += 16) {
                                c0 += il[g * wg + i];
                                m0 += fl[g * wg + i];
                            }
                            ir[t] = c0;
                            fr[t] = m0;
                        }
                        ctx.localBarrier();
                        for (int g = lid; g < bins; g += wg) {
                            int c0 = 0;
                            float m0 = 0f;
                            for (int t = 0; t < 16; t++) {
                                c0 += ir[g * 16 + t];
                                m0 += fr[g * 16 + t];
                            }
                            il[g * wg] = c0;
                            fl[g * wg] = m0;
                        }
                        ctx.localBarrier();
                        if (lid == 0) {
                            if (level == 0) {
                                float z = 0f;
                                for (int g = 0; g < bins; g++) {
                                    z += fl[g * wg];
                                }
                                fs[F_Z] = z;
                            }
                            float target = topP * fs[F_Z] * (1f + TOP_P_MARGIN);
                            // the first bin down to which the candidates surely hold every token the chain keeps
                            int cum = is[S_ABOVE], before = 0, chosen = -1;
                            float mass = fs[F_ABOVE], massBefore = 0f;
                            for (int g = 0; g < bins; g++) {
                                if (chosen < 0) {
                                    before = cum;
                                    massBefore = mass;
                                    cum += il[g * wg];
                                    mass += fl[g * wg];
                                    // top-p under top-k needs the whole top-k (its mass); else top-p's mass or min-p may settle it
                                    boolean byK = (k < n) & (cum >= k);
                                    boolean byMass = (topP < 1f) & (k == n) & (mass >= target);
                                    boolean byMinP = fs[g + 1] - max < logMinP;
                                    boolean massOrMinP = !((topP < 1f) & (k < n));
                                    boolean enough = (g == BINS - 1) | byK | (massOrMinP & (byMass | byMinP));
                                    if (enough) {
                                        chosen = g;
                                    }
                                }
                            }
                            boolean all = open & (chosen == BINS - 1);
                            if (cum <= candidates) {
                                is[S_STATE] = FOUND;
                                is[S_ALL] = all ? 1 : 0;
                                fs[F_TAU] = fs[chosen + 1];
                            } else if (level + 1 < LEVELS) {
                                is[S_OPEN] = all ? 1 : 0;
                                is[S_ABOVE] = before;
                                fs[F_ABOVE] = massBefore;
                                fs[F_HI] = fs[chosen];
                                fs[F_LO] = all ? min : fs[chosen + 1];
                            } else {
                                is[S_STATE] = GIVE_UP;
                            }
                        }
                        ctx.localBarrier();
                    }
                }

                // ---- gather the candidates (x > τ, or all) into local memory: per-item counts, offsets, writes
                boolean all = is[S_ALL] == 1;
                float tau = fs[F_TAU];
                if (is[S_STATE] == FOUND) {
                    int mine = 0;
                    for (int i = lid; i < n; i += wg) {
                        float x = logits.get(o + i);
                        boolean take = all | (x > tau);
                        if (take) {
                            mine++;
                        }
                    }
                    ir[lid] = mine;
                    ctx.localBarrier();
                    if (lid == 0) {
                        int run = 0;
                        for (int t = 0; t < wg; t++) {
                            int c = ir[t];
                            ir[t] = run;
                            run += c;
                        }
                        is[S_COUNT] = run;
                        if (run > candidates) {
                            is[S_STATE] = GIVE_UP;
                        }
                    }
                    ctx.localBarrier();
                }
                if (is[S_STATE] == FOUND) {
                    int c = is[S_COUNT];
                    int p2 = 1;
                    while (p2 < c) {
                        p2 <<= 1;
                    }
                    int at = ir[lid];
                    for (int i = lid; i < n; i += wg) {
                        float x = logits.get(o + i);
                        boolean take = all | (x > tau);
                        if (take) {
                            fl[at] = x;
                            il[at] = i;
                            at++;
                        }
                    }
                    for (int t = c + lid; t < p2; t += wg) {
                        fl[t] = -3.4e38f;
                        il[t] = NONE_YET;
                    }
                    ctx.localBarrier();
                    // ---- bitonic sort of p2 entries: decreasing logit, lower id first on ties; the (size, stride)
                    // stages run as one loop (one barrier per stage, no loop of barriers inside a loop)
                    int stages = 0;
                    for (int size = 2; size <= p2; size <<= 1) {
                        for (int stride = size >> 1; stride > 0; stride >>= 1) {
                            stages++;
                        }
                    }
                    int size = 2, stride = 1;
                    for (int stage = 0; stage < stages; stage++) {
                        for (int t = lid; t < (p2 >> 1); t += wg) {
                            int a = ((t & ~(stride - 1)) << 1) | (t & (stride - 1));
                            int b = a + stride;
                            float xa = fl[a], xb = fl[b];
                            int ia = il[a], ib = il[b];
                            boolean aFirst = (xa > xb) | ((xa == xb) & (ia < ib));
                            boolean ascending = (a & size) == 0;
                            if (aFirst != ascending) {
                                fl[a] = xb;
                                fl[b] = xa;
                                il[a] = ib;
                                il[b] = ia;
                            }
                        }
                        ctx.localBarrier();
                        boolean last = stride == 1;
                        size = last ? size << 1 : size;
                        stride = last ? size >> 1 : stride >> 1;
                    }

                    // ---- top-p: mass of the first min(k, c) candidates (chunked sums, offsets by item 0), then the
                    // first index where the running mass reaches top-p of the total; min-p: the first index ≥ 1 below
                    int limit = TornadoMath.min(k, c);
                    int q = (limit + wg - 1) / wg;
                    int from = TornadoMath.min(limit, lid * q), to = TornadoMath.min(limit, from + q);
                    float s0 = 0f;
                    for (int i = from; i < to; i++) {
                        s0 += TornadoMath.exp(fl[i] - max);
                    }
                    fr[lid] = s0;
                    ctx.localBarrier();
                    if (lid == 0) {
                        float run = 0f;
                        for (int t = 0; t < wg; t++) {
                            float v = fr[t];
                            fr[t] = run;
                            run += v;
                        }
                        fs[F_TOTAL] = run;
                    }
                    ctx.localBarrier();
                    float target = topP * (k == n ? fs[F_Z] : fs[F_TOTAL]);
                    int firstP = NONE_YET, firstM = NONE_YET;
                    if (topP < 1f) {
                        float run = fr[lid];
                        for (int i = from; i < to; i++) {
                            run += TornadoMath.exp(fl[i] - max);
                            boolean crossed = (run >= target) & (firstP == NONE_YET);
                            if (crossed) {
                                firstP = i;
                            }
                        }
                    }
                    for (int t = lid; t < c; t += wg) {
                        boolean below = (t >= 1) & (fl[t] - max < logMinP) & (t < firstM);
                        if (below) {
                            firstM = t;
                        }
                    }
                    ir[lid] = firstP;
                    ir[KernelSupport.MAX_LOCAL + lid] = firstM;
                    ctx.localBarrier();
                    for (int s = wg >> 1; s > 0; s >>= 1) {
                        if (lid < s) {
                            ir[lid] = TornadoMath.min(ir[lid], ir[lid + s]);
                            ir[KernelSupport.MAX_LOCAL + lid] = TornadoMath.min(ir[KernelSupport.MAX_LOCAL + lid], ir[KernelSupport.MAX_LOCAL + lid + s]);
                        }
                        ctx.localBarrier();
                    }
                    if (lid == 0) {
                        // keep = min(k, top-p count, min-p count); decided only if one of them is known to be ≤ c
                        // (a count not known from the candidates is larger than c, or at least c for min-p)
                        int keep = k <= c ? k : NONE_YET;
                        boolean crossedP = (topP < 1f) & (ir[0] < limit);
                        keep = crossedP ? TornadoMath.min(keep, ir[0] + 1) : keep;
                        int fm = ir[KernelSupport.MAX_LOCAL];
                        // every token outside the candidates fails min-p: the min-p count is known to be at most c
                        boolean outsideFail = all | (tau - max < logMinP);
                        keep = fm < c ? TornadoMath.min(keep, fm) : (outsideFail ? TornadoMath.min(keep, c) : keep);
                        // top-p under top-k needs the mass of the whole top-k
                        boolean unknownMass = (topP < 1f) & (k < n) & (c < k);
                        boolean decided = (keep <= c) & !unknownMass;
                        if (decided) {
                            is[S_KEEP] = keep;
                        } else {
                            is[S_STATE] = GIVE_UP;
                        }
                    }
                    ctx.localBarrier();
                }
                if (is[S_STATE] == FOUND) {
                    // ---- temperature and the draw: the first kept candidate whose running weight exceeds u · total
                    int keep = is[S_KEEP];
                    int q = (keep + wg - 1) / wg;
                    int from = TornadoMath.min(keep, lid * q), to = TornadoMath.min(keep, from + q);
                    float s0 = 0f;
                    for (int i = from; i < to; i++) {
                        s0 += TornadoMath.exp((fl[i] - max) / temp);
                    }
                    fr[lid] = s0;
                    ctx.localBarrier();
                    if (lid == 0) {
                        float run = 0f;
                        for (int t = 0; t < wg; t++) {
                            float v = fr[t];
                            fr[t] = run;
                            run += v;
                        }
                        fs[F_TOTAL] = run;
                    }
                    ctx.localBarrier();
                    float r = u * fs[F_TOTAL];
                    float run = fr[lid];
                    int first = NONE_YET;
                    for (int i = from; i < to; i++) {
                        run += TornadoMath.exp((fl[i] - max) / temp);
                        boolean past = (run > r) & (first == NONE_YET);
                        if (past) {
                            first = i;
                        }
                    }
                    ir[lid] = first;
                    ctx.localBarrier();
                    for (int s = wg >> 1; s > 0; s >>= 1) {
                        if (lid < s) {
                            ir[lid] = TornadoMath.min(ir[lid], ir[lid + s]);
                        }
                        ctx.localBarrier();
                    }
                    if (lid == 0) {
                        result.set(j, il[ir[0] < keep ? ir[0] : keep - 1]);
                    }
                } else if (lid == 0) {
                    result.set(j, FALLBACK);
                }
            }
        }
    }
}
