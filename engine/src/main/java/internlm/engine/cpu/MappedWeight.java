package internlm.engine.cpu;

import internlm.loader.TensorData;

import java.lang.foreign.MemorySegment;

/** F32, F16 or BF16 rows read straight from the tensor's (mapped) memory, row-major. */
final class MappedWeight extends Weight {
    private final MemorySegment data;
    private final VectorKernels.GgmlWidth width;
    private final long rowBytes;

    MappedWeight(TensorData t) {
        super(t);
        this.data = t.data();
        this.width = switch (t.type()) {
            case F32 -> VectorKernels.GgmlWidth.F32;
            case F16 -> VectorKernels.GgmlWidth.F16;
            case BF16 -> VectorKernels.GgmlWidth.BF16;
            default -> throw new IllegalArgumentException("tensor " + t.name() + " has type " + t.type() + ", not a float type");
        };
        this.rowBytes = t.rowBytes();
    }

    @Override
    public long bytes() {
        return rowBytes * rows;
    }

    private long offset(int k, int r) {
        return r * rowBytes + (long) width.bytes * k * TILE;
    }

    @Override
    protected void dot4(int k, int quad, float[] x, int xOff, float[] out) {
        int r = 4 * quad, last = rows - 1;
        VectorKernels.dot4Mapped(data, width, offset(k, r), offset(k, Math.min(r + 1, last)), offset(k, Math.min(r + 2, last)),
                offset(k, Math.min(r + 3, last)), chunkWidth(k), x, xOff, out);
    }

    @Override
    protected void dequantizeChunk(int k, int r, float[] out, int outOff) {
        VectorKernels.dequantMapped(data, width, offset(k, r), out, outOff, chunkWidth(k));
    }
}
