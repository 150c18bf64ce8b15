package internlm.loader;

import internlm.loader.gguf.GgmlType;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * A weight tensor ready for the backends: its type, ggml-order dims (dims[0] = row length = input size) and the bytes
 * (a view of a mapped file, or memory owned by the loaded model when converted at load).
 */
public record TensorData(String name, GgmlType type, long[] dims, MemorySegment data) {

    public long rowLength() {
        return dims[0];
    }

    public long rows() {
        long n = 1;
        for (int i = 1; i < dims.length; i++) {
            n *= dims[i];
        }
        return n;
    }

    public long elements() {
        return rowLength() * rows();
    }

    /** Bytes of one row. */
    public long rowBytes() {
        return type.byteSize(rowLength());
    }

    public String shapeString() {
        return Arrays.toString(dims);
    }
}
