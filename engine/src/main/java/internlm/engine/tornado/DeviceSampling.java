package internlm.engine.tornado;

import internlm.engine.sampling.RowSampling;
import internlm.engine.sampling.SamplerConfig;
import internlm.kernels.SamplingKernels;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;

/**
 * The per-pass sampling data of the logits graph (see {@link SamplingKernels}): per output row its mode and
 * parameters, and the penalty entries of every sampled row in one shared list of {@link #PENALTY_ENTRIES}. Filled by
 * the host before each pass; copied to the device with the pass.
 *
 * <p>Where a row is sampled is decided per row: on the device, unless its penalty window has more distinct tokens
 * than the list has room left for in this pass (decided here, before the pass), or the kernel finds no bounded
 * candidate set ({@link SamplingKernels#FALLBACK}, decided on the device); those rows are sampled on the host from
 * their logits, copied back for them.
 */
final class DeviceSampling {
    /**
     * Penalty entries (distinct tokens of the windows) of all rows of one pass, by default; {@code
     * -Dinternlm.tornado.penaltyEntries} overrides.
     */
    static final int PENALTY_ENTRIES = 4096;

    final IntArray rowInts, penaltyIds;
    final FloatArray rowFloats, penaltySubs;
    private final int vocabulary;
    private final int capacity;
    private final int[] ids;
    private final float[] subs;
    private int used;
    private long onDevice, onHost, deviceFallbacks;

    DeviceSampling(int outputs, int vocabulary, int penaltyEntries) {
        if (penaltyEntries < 1) {
            throw new IllegalArgumentException("internlm.tornado.penaltyEntries must be at least 1");
        }
        this.vocabulary = vocabulary;
        this.capacity = penaltyEntries;
        ids = new int[penaltyEntries];
        subs = new float[penaltyEntries];
        rowInts = new IntArray(outputs * SamplingKernels.ROW_INTS);
        rowFloats = new FloatArray(outputs * SamplingKernels.ROW_FLOATS);
        penaltyIds = new IntArray(penaltyEntries);
        penaltySubs = new FloatArray(penaltyEntries);
    }

    /** Penalty entries per pass. */
    int capacity() {
        return capacity;
    }

    /** Starts a pass: no penalty entries used. */
    void clear() {
        used = 0;
    }

    /** Output row j is not sampled on the device. */
    void none(int j) {
        rowInts.set(j * SamplingKernels.ROW_INTS + SamplingKernels.MODE, SamplingKernels.MODE_NONE);
    }

    /**
     * Output row j is to be sampled with {@code s}: sets it up for the device and returns true, or returns false (and
     * marks it as not sampled on the device) when its penalty entries do not fit in what this pass has left.
     */
    boolean device(int j, RowSampling s) {
        int room = capacity - used;
        int count = s.penalties(vocabulary, ids, subs);
        if (count > room) {
            none(j);
            return false;
        }
        for (int e = 0; e < count; e++) {
            penaltyIds.set(used + e, ids[e]);
            penaltySubs.set(used + e, subs[e]);
        }
        SamplerConfig c = s.config();
        int ri = j * SamplingKernels.ROW_INTS, rf = j * SamplingKernels.ROW_FLOATS;
        rowInts.set(ri + SamplingKernels.MODE, SamplingKernels.MODE_DEVICE);
        rowInts.set(ri + SamplingKernels.TOP_K, c.topK());
        rowInts.set(ri + SamplingKernels.PENALTY_FROM, used);
        rowInts.set(ri + SamplingKernels.PENALTY_COUNT, count);
        rowFloats.set(rf + SamplingKernels.TEMPERATURE, c.greedy() ? 0f : c.temperature());
        rowFloats.set(rf + SamplingKernels.TOP_P, c.topP());
        rowFloats.set(rf + SamplingKernels.LOG_MIN_P, c.minP() > 0f ? (float) Math.log(c.minP()) : SamplingKernels.NO_MIN_P);
        rowFloats.set(rf + SamplingKernels.UNIFORM, (float) s.uniform());
        rowFloats.set(rf + SamplingKernels.REPEAT_PENALTY, c.repeatPenalty());
        used += count;
        return true;
    }

    /** Counts where a row was sampled: on the device, on the host by choice before the pass, on the host after a device fallback. */
    void count(boolean device, boolean fallback) {
        if (device) {
            onDevice++;
        } else if (fallback) {
            deviceFallbacks++;
        } else {
            onHost++;
        }
    }

    /** Rows sampled on the device, on the host (decided before the pass), on the host after the device gave up. */
    long[] counts() {
        return new long[] {onDevice, onHost, deviceFallbacks};
    }
}
