package internlm.engine.grammar;

import java.util.ArrayList;
import java.util.List;

/**
 * Turns a range of code points into byte-range sequences matching exactly their UTF-8 encodings (the classic split at
 * encoding-length and continuation-byte boundaries), surrogates excluded.
 */
final class Utf8Ranges {
    private Utf8Ranges() {}

    static void split(int lo, int hi, List<Grammar.Expr> out) {
        lo = Math.max(lo, 0);
        hi = Math.min(hi, 0x10FFFF);
        if (lo > hi) {
            return;
        }
        if (lo <= 0xDFFF && hi >= 0xD800) {
            split(lo, 0xD7FF, out);
            split(0xE000, hi, out);
            return;
        }
        for (int b : new int[] {0x7F, 0x7FF, 0xFFFF}) {
            if (lo <= b && b < hi) {
                split(lo, b, out);
                split(b + 1, hi, out);
                return;
            }
        }
        if (hi <= 0x7F) {
            out.add(Grammar.byteRange(lo, hi));
            return;
        }
        for (int i = 1; i < 4; i++) {
            int m = (1 << (6 * i)) - 1;
            if ((lo & ~m) != (hi & ~m)) {
                if ((lo & m) != 0) {
                    split(lo, lo | m, out);
                    split((lo | m) + 1, hi, out);
                    return;
                }
                if ((hi & m) != m) {
                    split(lo, (hi & ~m) - 1, out);
                    split(hi & ~m, hi, out);
                    return;
                }
            }
        }
        byte[] a = encode(lo), b = encode(hi);
        List<Grammar.Expr> seq = new ArrayList<>(a.length);
        for (int i = 0; i < a.length; i++) {
            seq.add(Grammar.byteRange(a[i] & 0xff, b[i] & 0xff));
        }
        out.add(new Grammar.Seq(seq));
    }

    static byte[] encode(int cp) {
        return new String(Character.toChars(cp)).getBytes(java.nio.charset.StandardCharsets.UTF_8);
    }
}
