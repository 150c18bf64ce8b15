package internlm.engine.cpu;

import internlm.loader.TensorData;
import internlm.loader.gguf.GgmlType;
import internlm.loader.quant.Quants;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A 2-D weight matrix [rows × cols] for the CPU backend, kept in its stored type (no expansion to float).
 * F32/F16/BF16 rows are read straight from the mapped file. Q8_0 and Q4_0 blocks are repacked once at load into
 * two Java arrays — the quants of every block back to back, and the block scales as f32: the same information,
 * laid out so the vector loop streams two sequential arrays (the JIT compiles array vector loads markedly better than
 * loads from memory segments, and the launcher backs the heap with transparent huge pages).
 *
 * <p>Quantized and (copied) half-precision matrices wider than {@link #TILE} columns are stored in column tiles: tile t holds columns
 * [t·TILE, (t+1)·TILE) of every row, rows back to back. A one-token product walks the tiles one after another, so the
 * slice of x it multiplies (8 KiB) stays in L1 while the weights stream past it. Measured on one Zen 4 core, Q8_0,
 * 8192-column rows: 8.9 GB/s row-major, 19 GB/s tiled — as fast as 2048-column rows (x of 32 KiB fills L1 and is
 * evicted by the weight stream on every row). F16/BF16 matrices are copied to the heap in the same tiles (a short[]
 * of their bits) when the heap has room — tiles read straight from the mapped file, being strided, were slower still —
 * and otherwise read row-major from the mapped file.
 */
public final class Weight {
    /** Columns per pass of the batched product (4 weight rows × 2048 floats; halves the lane sums of 1024-column passes, +15 % in a micro-benchmark). */
    private static final int K_CHUNK = 2048;
    /** Columns per tile of a repacked (quantized or heap-copied half-precision) matrix; a multiple of 32. */
    static final int TILE = 2048;
    private static final int TILE_BLOCKS = TILE / 32;

    public final String name;
    public final GgmlType type;
    public final int rows;
    public final int cols;
    private final int blocks;          // blocks per row (quantized types)
    private final int tiles;           // column tiles of the repacked types (1 for a mapped row-major matrix)
    private final int qBytes;          // bytes of quants per block (quantized types)
    private final long rowBytes;       // bytes per row in data (plain types) or quants (quantized types)
    private final MemorySegment data;  // plain types: the row-major matrix
    private final byte[] quants;       // quantized types: the quants of all blocks
    private final float[] scales;      // quantized types: f32 scale per block
    private final short[] halfs;       // F16/BF16 copied to the heap: the bits of every element (tiled)

    /** As {@link #Weight(TensorData, boolean)} with F16/BF16 copied to the heap. */
    public Weight(TensorData t) {
        this(t, true);
    }

    /**
     * Wraps (F32, and F16/BF16 unless {@code halfOnHeap}) or repacks (Q8_0/Q4_0, and F16/BF16 into a tiled
     * {@code short[]} when {@code halfOnHeap}); repacked rows are filled by {@link #pack}, in parallel if wanted.
     */
    public Weight(TensorData t, boolean halfOnHeap) {
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
            this.qBytes = type == GgmlType.Q8_0 ? 32 : 16;
            this.tiles = (blocks + TILE_BLOCKS - 1) / TILE_BLOCKS;
            this.rowBytes = (long) blocks * qBytes;
            if (rowBytes * rows > Integer.MAX_VALUE - 64) {
                throw new IllegalArgumentException("tensor " + t.name() + " " + t.shapeString() + " is over 2 GiB, more than the CPU backend holds in one matrix");
            }
            this.quants = new byte[(int) (rowBytes * rows)];
            this.scales = new float[blocks * rows];
            this.halfs = null;
            this.data = null;
        } else if (halfOnHeap && (type == GgmlType.F16 || type == GgmlType.BF16) && (long) rows * cols <= Integer.MAX_VALUE - 64) {
            this.blocks = 0;
            this.qBytes = 0;
            this.tiles = (cols + TILE - 1) / TILE;
            this.rowBytes = t.rowBytes();
            this.halfs = new short[rows * cols];
            this.data = null;
            this.quants = null;
            this.scales = null;
        } else {
            this.blocks = 0;
            this.qBytes = 0;
            this.tiles = 1;
            this.rowBytes = t.rowBytes();
            this.data = t.data();
            this.quants = null;
            this.scales = null;
            this.halfs = null;
        }
    }

    /** True when {@link #pack} must be called for every row before use. */
    public boolean needsPacking() {
        return scales != null || halfs != null;
    }

    /** Copies rows [from, to) of a Q8_0/Q4_0 (or heap-copied F16/BF16) tensor into the repacked layout. */
    public void pack(TensorData t, int from, int to) {
        MemorySegment src = t.data();
        if (halfs != null) {
            for (int r = from; r < to; r++) {
                for (int tile = 0; tile < tiles; tile++) {
                    MemorySegment.copy(src, HALF, r * rowBytes + 2L * tile * TILE, halfs, halfOffset(tile, r), tileWidth(tile));
                }
            }
            return;
        }
        int blockBytes = type.bytesPerBlock;
        for (int r = from; r < to; r++) {
            long in = (long) r * blocks * blockBytes;
            for (int b = 0; b < blocks; b++) {
                int tile = b / TILE_BLOCKS, j = b % TILE_BLOCKS;
                int sOut = scaleOffset(tile, r) + j;
                scales[sOut] = Quants.f16(src, in);
                MemorySegment.copy(src, ValueLayout.JAVA_BYTE, in + 2, quants, sOut * qBytes, qBytes);
                in += blockBytes;
            }
        }
    }

    private static final ValueLayout.OfShort HALF = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);

    /** Columns of tile t. */
    private int tileWidth(int t) {
        return Math.min(TILE, cols - t * TILE);
    }

    /** Index in {@code halfs} of row r's segment in tile t. */
    private int halfOffset(int t, int r) {
        return rows * t * TILE + r * tileWidth(t);
    }

    /** Blocks of row segment in tile t. */
    private int tileBlocks(int t) {
        return Math.min(TILE_BLOCKS, blocks - t * TILE_BLOCKS);
    }

    /** Index of the first scale of row r's segment in tile t (its quants start at qBytes times this). */
    private int scaleOffset(int t, int r) {
        return rows * t * TILE_BLOCKS + r * tileBlocks(t);
    }

    /** Σ over the columns of tile t of W[row, c] · x[xOff + c]. */
    private float dotTile(int t, int row, float[] x, int xOff) {
        if (halfs != null) {
            return type == GgmlType.F16
                    ? VectorKernels.dotF16(halfs, halfOffset(t, row), x, xOff + t * TILE, tileWidth(t))
                    : VectorKernels.dotBF16(halfs, halfOffset(t, row), x, xOff + t * TILE, tileWidth(t));
        }
        int s = scaleOffset(t, row), n = tileBlocks(t), xo = xOff + t * TILE;
        return type == GgmlType.Q8_0
                ? VectorKernels.dotQ8_0(quants, s * qBytes, scales, s, x, xo, n)
                : VectorKernels.dotQ4_0(quants, s * qBytes, scales, s, x, xo, n);
    }

    /** Σ_c W[row, c] · x[xOff + c] (tile by tile for the repacked types). */
    public float dot(int row, float[] x, int xOff) {
        if (needsPacking()) {
            float sum = 0;
            for (int t = 0; t < tiles; t++) {
                sum += dotTile(t, row, x, xOff);
            }
            return sum;
        }
        return switch (type) {
            case F16 -> VectorKernels.dotF16(data, row * rowBytes, x, xOff, cols);
            case BF16 -> VectorKernels.dotBF16(data, row * rowBytes, x, xOff, cols);
            case F32 -> VectorKernels.dotF32(data, row * rowBytes, x, xOff, cols);
            default -> throw new IllegalStateException(type.name());
        };
    }

    /** Writes the columns of tile t of row {@code row} as floats into out[outOff + t·TILE ..]. */
    private void dequantizeTile(int t, int row, float[] out, int outOff) {
        int o = outOff + t * TILE;
        if (halfs != null) {
            if (type == GgmlType.F16) {
                VectorKernels.dequantF16(halfs, halfOffset(t, row), out, o, tileWidth(t));
            } else {
                VectorKernels.dequantBF16(halfs, halfOffset(t, row), out, o, tileWidth(t));
            }
            return;
        }
        int s = scaleOffset(t, row);
        if (type == GgmlType.Q8_0) {
            VectorKernels.dequantQ8_0(quants, s * qBytes, scales, s, out, o, tileBlocks(t));
        } else {
            VectorKernels.dequantQ4_0(quants, s * qBytes, scales, s, out, o, tileBlocks(t));
        }
    }

    /** Writes row {@code row} as floats into out[outOff..outOff+cols). */
    public void dequantizeRow(int row, float[] out, int outOff) {
        if (needsPacking()) {
            for (int t = 0; t < tiles; t++) {
                dequantizeTile(t, row, out, outOff);
            }
            return;
        }
        switch (type) {
            case F16 -> VectorKernels.dequantF16(data, row * rowBytes, out, outOff, cols);
            case BF16 -> VectorKernels.dequantBF16(data, row * rowBytes, out, outOff, cols);
            case F32 -> Quants.dequantize(GgmlType.F32, data, (long) row * cols, out, outOff, cols);
            default -> throw new IllegalStateException(type.name());
        }
    }

    /**
     * Y[b, r] = Σ_c W[r, c] · X[b, c] for rows r in [from, to) and b &lt; batch. X rows are {@code xStride} apart,
     * Y rows {@code yStride} apart. One token: fused quantized dot products. Several: four weight rows at a time are
     * dequantized once into {@code scratch} (which must hold 4·cols floats) and multiplied with four tokens at a time.
     */
    public void matmul(float[] x, int xStride, int batch, float[] y, int yStride, int yOff, int from, int to, float[] scratch) {
        if (batch == 1) {
            if (tiles == 1) {
                for (int r = from; r < to; r++) {
                    y[yOff + r] = dot(r, x, 0);
                }
            } else {
                // tile by tile: the same sums as dot(), in the same order
                for (int t = 0; t < tiles; t++) {
                    for (int r = from; r < to; r++) {
                        float p = dotTile(t, r, x, 0);
                        y[yOff + r] = t == 0 ? 0f + p : y[yOff + r] + p;
                    }
                }
            }
            return;
        }
        float[] tile = new float[VectorKernels.TILE_OUT];
        float[] acc = new float[4 * batch];
        int r = from;
        for (; r + 4 <= to; r += 4) {
            for (int i = 0; i < 4; i++) {
                dequantizeRow(r + i, scratch, i * cols);
            }
            int quads = batch / 4 * 4;
            java.util.Arrays.fill(acc, 0f);
            // columns in chunks that keep the four weight rows in L1 while every token passes over them
            for (int c0 = 0; c0 < cols; c0 += K_CHUNK) {
                int c1 = Math.min(cols, c0 + K_CHUNK);
                for (int b = 0; b < quads; b += 4) {
                    VectorKernels.tile4x4(scratch, 0, cols, c0, c1, x, b * xStride, (b + 1) * xStride, (b + 2) * xStride, (b + 3) * xStride, tile);
                    for (int i = 0; i < 4; i++) {
                        for (int j = 0; j < 4; j++) {
                            acc[i * batch + b + j] += tile[4 * i + j];
                        }
                    }
                }
            }
            for (int b = 0; b < quads; b++) {
                for (int i = 0; i < 4; i++) {
                    y[b * yStride + yOff + r + i] = acc[i * batch + b];
                }
            }
            for (int b = quads; b < batch; b++) {
                for (int i = 0; i < 4; i++) {
                    y[b * yStride + yOff + r + i] = VectorKernels.dot(scratch, i * cols, x, b * xStride, cols);
                }
            }
        }
        for (; r < to; r++) {
            dequantizeRow(r, scratch, 0);
            for (int b = 0; b < batch; b++) {
                y[b * yStride + yOff + r] = VectorKernels.dot(scratch, 0, x, b * xStride, cols);
            }
        }
    }

    /** Bytes read per full pass over the matrix. */
    public long bytes() {
        return rowBytes * rows + (scales == null ? 0 : 4L * blocks * rows);  // F16/BF16 on the heap: rowBytes·rows too
    }
}
