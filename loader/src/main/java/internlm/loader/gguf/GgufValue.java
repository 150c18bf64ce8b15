package internlm.loader.gguf;

import java.util.Arrays;

/**
 * One metadata value with its GGUF type. Scalars are boxed (unsigned 8/16-bit and signed types up to 32 bits as
 * Integer, UINT32 and 64-bit integers as Long, floats as Float/Double); arrays hold a primitive Java array
 * (byte[], short[], int[], long[], float[], double[], boolean[], String[]) or, for nested arrays, GgufValue[].
 */
public record GgufValue(GgufValueType type, GgufValueType elementType, Object value) {

    public static GgufValue scalar(GgufValueType type, Object value) {
        return new GgufValue(type, null, value);
    }

    public static GgufValue array(GgufValueType elementType, Object array) {
        return new GgufValue(GgufValueType.ARRAY, elementType, array);
    }

    public boolean isArray() {
        return type == GgufValueType.ARRAY;
    }

    /** Number of elements of an array value (1 for a scalar). */
    public int length() {
        if (!isArray()) {
            return 1;
        }
        return switch (value) {
            case byte[] a -> a.length;
            case short[] a -> a.length;
            case int[] a -> a.length;
            case long[] a -> a.length;
            case float[] a -> a.length;
            case double[] a -> a.length;
            case boolean[] a -> a.length;
            case Object[] a -> a.length;
            default -> throw new IllegalStateException("not an array: " + value);
        };
    }

    /** Short human-readable rendering (long arrays abbreviated). */
    public String describe(int maxElements) {
        if (!isArray()) {
            return type == GgufValueType.STRING ? quote((String) value, 200) : String.valueOf(value);
        }
        int n = length();
        StringBuilder sb = new StringBuilder(elementType.name().toLowerCase()).append('[').append(n).append("] ");
        int shown = Math.min(n, maxElements);
        sb.append('[');
        for (int i = 0; i < shown; i++) {
            if (i > 0) {
                sb.append(", ");
            }
            sb.append(elementString(i));
        }
        if (shown < n) {
            sb.append(", ...");
        }
        return sb.append(']').toString();
    }

    private String elementString(int i) {
        return switch (value) {
            case byte[] a -> elementType == GgufValueType.UINT8 ? String.valueOf(a[i] & 0xff) : String.valueOf(a[i]);
            case short[] a -> elementType == GgufValueType.UINT16 ? String.valueOf(a[i] & 0xffff) : String.valueOf(a[i]);
            case int[] a -> elementType == GgufValueType.UINT32 ? String.valueOf(a[i] & 0xffffffffL) : String.valueOf(a[i]);
            case long[] a -> elementType == GgufValueType.UINT64 ? Long.toUnsignedString(a[i]) : String.valueOf(a[i]);
            case float[] a -> String.valueOf(a[i]);
            case double[] a -> String.valueOf(a[i]);
            case boolean[] a -> String.valueOf(a[i]);
            case String[] a -> quote(a[i], 40);
            case GgufValue[] a -> a[i].describe(4);
            default -> "?";
        };
    }

    private static String quote(String s, int max) {
        String t = s.length() > max ? s.substring(0, max) + "..." : s;
        return '"' + t.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\"", "\\\"") + '"';
    }

    @Override
    public String toString() {
        return describe(8);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof GgufValue v && v.type == type && v.elementType == elementType
                && Arrays.deepEquals(new Object[] {value}, new Object[] {v.value});
    }

    @Override
    public int hashCode() {
        return Arrays.deepHashCode(new Object[] {type, elementType, value});
    }
}
