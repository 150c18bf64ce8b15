package internlm.loader.gguf;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * A tensor of a GGUF file. {@code dims} are in ggml order: dims[0] is the contiguous (input) dimension, so a
 * PyTorch weight of shape [out, in] has dims {in, out}. {@code data} is a read-only view of the mapped file.
 */
public record GgufTensor(String name, GgmlType type, long[] dims, long fileOffset, long byteSize, MemorySegment data) {

    public long elements() {
        long n = 1;
        for (long d : dims) {
            n *= d;
        }
        return n;
    }

    /** Length of one row (ggml dims[0]). */
    public long rowLength() {
        return dims[0];
    }

    /** Number of rows (product of dims[1..]). */
    public long rows() {
        return elements() / dims[0];
    }

    public String shapeString() {
        return Arrays.toString(dims);
    }
}
