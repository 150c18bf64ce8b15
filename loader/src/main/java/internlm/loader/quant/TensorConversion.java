package internlm.loader.quant;

import internlm.loader.TensorData;
import internlm.loader.gguf.GgmlType;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.function.LongUnaryOperator;
import java.util.stream.LongStream;

/**
 * Row-by-row conversion of tensors between the types the engine runs (F32, F16, BF16, Q8_0, Q4_0), optionally
 * gathering the rows in another order on the way (the HF loader's Q/K permutation and wqkv split). Used for
 * conversions at load ({@code --quantize}) and by {@code convert}. Large tensors are converted on all cores.
 */
public final class TensorConversion {
    private TensorConversion() {}

    /** Types a tensor can be converted to. */
    public static boolean isTarget(GgmlType t) {
        return t == GgmlType.F32 || t == GgmlType.F16 || t == GgmlType.BF16 || t == GgmlType.Q8_0 || t == GgmlType.Q4_0;
    }

    /**
     * The type a 2-D weight with rows of {@code rowLength} gets when {@code target} is asked for: the target, or F16
     * when the rows are not whole quantization blocks (what llama-quantize does with such tensors).
     */
    public static GgmlType matrixType(GgmlType target, long rowLength) {
        return rowLength % target.blockSize == 0 ? target : GgmlType.F16;
    }

    /** Writes n floats of x[off..] as {@code to} at dst[dstOff] (n a multiple of the block size). */
    public static void encode(float[] x, int off, int n, GgmlType to, MemorySegment dst, long dstOff) {
        switch (to) {
            case F32 -> MemorySegment.copy(x, off, dst, Quants.F32, dstOff, n);
            case F16 -> {
                for (int i = 0; i < n; i++) {
                    dst.set(Quants.F16, dstOff + 2L * i, Float.floatToFloat16(x[off + i]));
                }
            }
            case BF16 -> {
                for (int i = 0; i < n; i++) {
                    dst.set(Quants.F16, dstOff + 2L * i, Quants.floatToBf16(x[off + i]));
                }
            }
            case Q8_0 -> Quants.quantizeQ8_0(x, off, n, dst, dstOff);
            case Q4_0 -> Quants.quantizeQ4_0(x, off, n, dst, dstOff);
            default -> throw new IllegalArgumentException("cannot convert to " + to);
        }
    }

    /**
     * A tensor of {@code rows} rows of {@code rowLength} values of type {@code to}, whose row r is row
     * {@code sourceRow(r)} of {@code src} (a tensor of type {@code from} with rows of the same length). A null
     * sourceRow means the identity.
     */
    public static MemorySegment gather(MemorySegment src, GgmlType from, long rowLength, long rows, LongUnaryOperator sourceRow,
                                       GgmlType to, Arena arena) {
        if (rowLength > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("rows of " + rowLength + " values are too long to convert");
        }
        long inRow = from.byteSize(rowLength);
        long outRow = to.byteSize(rowLength);
        MemorySegment dst = arena.allocate(Math.max(1, Math.multiplyExact(outRow, rows)), 64);
        LongUnaryOperator map = sourceRow == null ? LongUnaryOperator.identity() : sourceRow;
        int len = (int) rowLength;
        long chunk = Math.max(1, (1L << 20) / Math.max(1, rowLength));
        LongStream chunks = LongStream.range(0, (rows + chunk - 1) / chunk);
        if (rows * rowLength >= (1L << 20)) {
            chunks = chunks.parallel();
        }
        chunks.forEach(c -> {
            float[] buf = from == to ? null : new float[len];
            long end = Math.min(rows, (c + 1) * chunk);
            for (long r = c * chunk; r < end; r++) {
                long s = map.applyAsLong(r);
                if (from == to) {
                    MemorySegment.copy(src, s * inRow, dst, r * outRow, inRow);
                } else {
                    Quants.dequantize(from, src, s * rowLength, buf, 0, len);
                    encode(buf, 0, len, to, dst, r * outRow);
                }
            }
        });
        return dst;
    }

    /** The tensor converted to {@code to} (itself when it already has that type). */
    public static TensorData convert(TensorData t, GgmlType to, Arena arena) {
        if (t.type() == to) {
            return t;
        }
        MemorySegment out = gather(t.data(), t.type(), t.rowLength(), t.rows(), null, to, arena);
        return new TensorData(t.name(), to, t.dims(), out);
    }

    /** All values of a tensor as floats (tests, small tensors). */
    public static float[] toFloats(TensorData t) {
        long n = t.elements();
        if (n > Integer.MAX_VALUE - 16) {
            throw new IllegalArgumentException(t.name() + " is too large to expand");
        }
        float[] v = new float[(int) n];
        Quants.dequantize(t.type(), t.data(), 0, v, 0, v.length);
        return v;
    }
}
