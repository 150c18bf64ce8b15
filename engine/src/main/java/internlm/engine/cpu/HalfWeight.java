package internlm.engine.cpu;

import internlm.loader.TensorData;
import internlm.loader.gguf.GgmlType;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * F16 or BF16 bits copied from the mapped file into a {@code short[]} in column tiles (as {@link QuantWeight}): tiles
 * read straight from the mapped file, being strided, were slower than row-major reads, and row-major 8192-column rows
 * evict x from L1 on every row.
 */
final class HalfWeight extends Weight {
    private static final ValueLayout.OfShort HALF = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final boolean bf16;
    private final short[] halfs;

    HalfWeight(TensorData t) {
        super(t);
        this.bf16 = t.type() == GgmlType.BF16;
        this.halfs = new short[rows * cols];
    }

    @Override
    public boolean needsPacking() {
        return true;
    }

    @Override
    public void pack(TensorData t, int from, int to) {
        MemorySegment src = t.data();
        long rowBytes = 2L * cols;
        for (int r = from; r < to; r++) {
            for (int k = 0; k < chunks; k++) {
                MemorySegment.copy(src, HALF, r * rowBytes + 2L * k * TILE, halfs, offset(k, r), chunkWidth(k));
            }
        }
    }

    @Override
    public long bytes() {
        return 2L * rows * cols;
    }

    /** Index in {@code halfs} of row r's segment in tile k. */
    private int offset(int k, int r) {
        return rows * k * TILE + r * chunkWidth(k);
    }

    @Override
    protected void dot4(int k, int quad, float[] x, int xOff, float[] out) {
        int r = 4 * quad, last = rows - 1;
        VectorKernels.dot4Half(halfs, bf16, offset(k, r), offset(k, Math.min(r + 1, last)), offset(k, Math.min(r + 2, last)),
                offset(k, Math.min(r + 3, last)), chunkWidth(k), x, xOff, out);
    }

    @Override
    protected void dequantizeChunk(int k, int r, float[] out, int outOff) {
        if (bf16) {
            VectorKernels.dequantBF16(halfs, offset(k, r), out, outOff, chunkWidth(k));
        } else {
            VectorKernels.dequantF16(halfs, offset(k, r), out, outOff, chunkWidth(k));
        }
    }
}
