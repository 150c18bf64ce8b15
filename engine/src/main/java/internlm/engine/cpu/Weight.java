package internlm.engine.cpu;

import internlm.loader.TensorData;
import internlm.loader.gguf.GgmlType;
import internlm.loader.quant.Quants;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A 2-D weight matrix [rows × cols] for the CPU backend, kept in its stored type (no expansion to float).
 * F32/F16/BF16 rows are read straight from the mapped file. Q8_0 and Q4_0 blocks are repacked once at load into
 * two arrays — the quants of every block back to back, and the block scales as f32 — in huge-page memory: the same
 * information in the same number of bits per weight, laid out so the vector loop streams two sequential arrays.
 */
public final class Weight {
    public final String name;
    public final GgmlType type;
    public final int rows;
    public final int cols;
    private final int blocks;          // blocks per row (quantized types)
    private final long rowBytes;       // bytes per row in data (plain types) or quants (quantized types)
    private final MemorySegment data;  // plain types: the row-major matrix; quantized: the quants
    private final MemorySegment scales; // quantized types: f32 scale per block

    /** Wraps (plain types) or repacks (Q8_0/Q4_0, rows [from, to) only are filled when packing in parallel). */
    public Weight(TensorData t, Arena arena) {
        if (t.rowLength() > Integer.MAX_VALUE || t.rows() > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("tensor " + t.name() + " " + t.shapeString() + " is too large for a single matrix");
        }
        if (!t.type().runsAsStored()) {
            throw new IllegalArgumentException("tensor " + t.name() + " has type " + t.type() + ", which the CPU backend does not run directly");
        }
        this.name = t.name();
        this.type = t.type();
        this.cols = (int) t.rowLength();
        this.rows = (int) t.rows();
        if (type == GgmlType.Q8_0 || type == GgmlType.Q4_0) {
            this.blocks = cols / 32;
            int qBytes = type == GgmlType.Q8_0 ? 32 : 16;
            this.rowBytes = (long) blocks * qBytes;
            this.data = HugeMemory.allocate(arena, rowBytes * rows);
            this.scales = HugeMemory.allocate(arena, 4L * blocks * rows);
        } else {
            this.blocks = 0;
            this.rowBytes = t.rowBytes();
            this.data = t.data();
            this.scales = null;
        }
    }

    /** True when {@link #pack} must be called for every row before use. */
    public boolean needsPacking() {
        return scales != null;
    }

    /** Copies rows [from, to) of a Q8_0/Q4_0 tensor into the repacked layout. */
    public void pack(TensorData t, int from, int to) {
        MemorySegment src = t.data();
        int blockBytes = type.bytesPerBlock;
        int qBytes = (int) (rowBytes / blocks);
        for (int r = from; r < to; r++) {
            long in = (long) r * blocks * blockBytes;
            long qOut = r * rowBytes;
            long sOut = 4L * blocks * r;
            for (int b = 0; b < blocks; b++) {
                scales.set(ValueLayout.JAVA_FLOAT_UNALIGNED, sOut + 4L * b, Quants.f16(src, in));
                MemorySegment.copy(src, in + 2, data, qOut + (long) b * qBytes, qBytes);
                in += blockBytes;
            }
        }
    }

    /** Σ_c W[row, c] · x[xOff + c]. */
    public float dot(int row, float[] x, int xOff) {
        return switch (type) {
            case Q8_0 -> VectorKernels.dotQ8_0(data, row * rowBytes, scales, 4L * blocks * row, x, xOff, blocks);
            case Q4_0 -> VectorKernels.dotQ4_0(data, row * rowBytes, scales, 4L * blocks * row, x, xOff, blocks);
            case F16 -> VectorKernels.dotF16(data, row * rowBytes, x, xOff, cols);
            case BF16 -> VectorKernels.dotBF16(data, row * rowBytes, x, xOff, cols);
            case F32 -> VectorKernels.dotF32(data, row * rowBytes, x, xOff, cols);
            default -> throw new IllegalStateException(type.name());
        };
    }

    /** Writes row {@code row} as floats into out[0..cols). */
    public void dequantizeRow(int row, float[] out) {
        switch (type) {
            case Q8_0 -> VectorKernels.dequantQ8_0(data, row * rowBytes, scales, 4L * blocks * row, out, blocks);
            case Q4_0 -> VectorKernels.dequantQ4_0(data, row * rowBytes, scales, 4L * blocks * row, out, blocks);
            case F16 -> VectorKernels.dequantF16(data, row * rowBytes, out, cols);
            case BF16 -> VectorKernels.dequantBF16(data, row * rowBytes, out, cols);
            case F32 -> Quants.dequantize(GgmlType.F32, data, (long) row * cols, out, 0, cols);
            default -> throw new IllegalStateException(type.name());
        }
    }

    /**
     * Y[b, r] = Σ_c W[r, c] · X[b, c] for rows r in [from, to) and b &lt; batch. X rows are {@code xStride} apart,
     * Y rows {@code yStride} apart. One token: fused quantized dot products; several: each weight row is
     * dequantized once and reused for every token. {@code scratch} must hold cols floats when batch &gt; 1.
     */
    public void matmul(float[] x, int xStride, int batch, float[] y, int yStride, int yOff, int from, int to, float[] scratch) {
        if (batch == 1) {
            for (int r = from; r < to; r++) {
                y[yOff + r] = dot(r, x, 0);
            }
            return;
        }
        for (int r = from; r < to; r++) {
            dequantizeRow(r, scratch);
            for (int b = 0; b < batch; b++) {
                y[b * yStride + yOff + r] = VectorKernels.dot(scratch, 0, x, b * xStride, cols);
            }
        }
    }

    /** Bytes read per full pass over the matrix. */
    public long bytes() {
        return rowBytes * rows + (scales == null ? 0 : 4L * blocks * rows);
    }
}
