package internlm.engine.cpu;

import internlm.loader.TensorData;
import internlm.loader.quant.Quants;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Q8_0 or Q4_0 blocks repacked once at load into two Java arrays — the quants of every block, and the block scales as
 * f32: the same information, laid out so the vector loops stream two sequential arrays (the JIT compiles array vector
 * loads markedly better than loads from memory segments, and the launcher backs the heap with transparent huge pages).
 *
 * <p>Layout: column tiles of {@link #TILE} columns (tile t holds columns [t·TILE, (t+1)·TILE) of every row), and within
 * a tile the rows in quads, block-interleaved: block j of rows 4g, 4g+1, 4g+2, 4g+3, then block j+1 of the same four.
 * A one-token product of a quad ({@link VectorKernels#dot4Q8}) then reads one sequential run of memory; with the four
 * rows row-major instead (four streams 2 KiB apart), a 8192×2048 Q8_0 product ran at 10 GB/s on one core against
 * 15–20 GB/s for a single row stream. The row count is padded to a multiple of four with zero rows.
 */
abstract sealed class QuantWeight extends Weight permits QuantWeight.Q8, QuantWeight.Q4 {
    private static final int TILE_BLOCKS = TILE / 32;

    private final int blocks;          // blocks per row
    private final int qBytes;          // bytes of quants per block
    private final int blockBytes;      // bytes per block in the file (f16 scale + quants)
    private final int quadRows;        // rows padded to a multiple of 4
    protected final byte[] quants;
    protected final float[] scales;

    QuantWeight(TensorData t, int qBytes) {
        super(t);
        this.blocks = cols / 32;
        this.qBytes = qBytes;
        this.blockBytes = t.type().bytesPerBlock;
        this.quadRows = (rows + 3) / 4 * 4;
        long total = (long) blocks * qBytes * quadRows;
        if (total > Integer.MAX_VALUE - 64) {
            throw new IllegalArgumentException("tensor " + t.name() + " " + t.shapeString() + " is over 2 GiB, more than the CPU backend holds in one matrix");
        }
        this.quants = new byte[(int) total];
        this.scales = new float[blocks * quadRows];
    }

    @Override
    public boolean needsPacking() {
        return true;
    }

    @Override
    public void pack(TensorData t, int from, int to) {
        MemorySegment src = t.data();
        for (int r = from; r < to; r++) {
            long in = (long) r * blocks * blockBytes;
            for (int b = 0; b < blocks; b++) {
                int idx = blockIndex(b / TILE_BLOCKS, r / 4, b % TILE_BLOCKS, r % 4);
                scales[idx] = Quants.f16(src, in);
                MemorySegment.copy(src, ValueLayout.JAVA_BYTE, in + 2, quants, idx * qBytes, qBytes);
                in += blockBytes;
            }
        }
    }

    @Override
    public long bytes() {
        return ((long) qBytes + 4) * blocks * rows;
    }

    /** Blocks of a row segment in tile t. */
    protected final int tileBlocks(int t) {
        return Math.min(TILE_BLOCKS, blocks - t * TILE_BLOCKS);
    }

    /** Index (of the scale; the quants start at qBytes times it) of block j of row 4g+i in tile t. */
    protected final int blockIndex(int t, int g, int j, int i) {
        return quadRows * t * TILE_BLOCKS + (g * tileBlocks(t) + j) * 4 + i;
    }

    /** Q8_0: 32 int8 quants per block. */
    static final class Q8 extends QuantWeight {
        Q8(TensorData t) {
            super(t, 32);
        }

        @Override
        protected void dot4(int k, int quad, float[] x, int xOff, float[] out) {
            int s = blockIndex(k, quad, 0, 0);
            VectorKernels.dot4Q8(quants, scales, 32 * s, s, tileBlocks(k), x, xOff, out);
        }

        @Override
        protected void dequantizeChunk(int k, int r, float[] out, int outOff) {
            for (int j = 0, n = tileBlocks(k); j < n; j++) {
                int s = blockIndex(k, r / 4, j, r % 4);
                VectorKernels.dequantQ8_0(quants, 32 * s, scales, s, out, outOff + 32 * j, 1);
            }
        }

        @Override
        protected boolean fusesSmallBatches() {
            return true;
        }

        @Override
        protected void tile4(int k, int quad, float[] x, int x0, int x1, int x2, int x3, float[] out) {
            int s = blockIndex(k, quad, 0, 0);
            VectorKernels.tile4x4Q8(quants, scales, 32 * s, s, tileBlocks(k), x, x0, x1, x2, x3, out);
        }
    }

    /** Q4_0: 16 bytes of nibbles per block (low nibbles are elements 0–15, high nibbles 16–31). */
    static final class Q4 extends QuantWeight {
        Q4(TensorData t) {
            super(t, 16);
        }

        @Override
        protected void dot4(int k, int quad, float[] x, int xOff, float[] out) {
            int s = blockIndex(k, quad, 0, 0);
            VectorKernels.dot4Q4(quants, scales, 16 * s, s, tileBlocks(k), x, xOff, out);
        }

        @Override
        protected void dequantizeChunk(int k, int r, float[] out, int outOff) {
            for (int j = 0, n = tileBlocks(k); j < n; j++) {
                int s = blockIndex(k, r / 4, j, r % 4);
                VectorKernels.dequantQ4_0(quants, 16 * s, scales, s, out, outOff + 32 * j, 1);
            }
        }
    }
}
