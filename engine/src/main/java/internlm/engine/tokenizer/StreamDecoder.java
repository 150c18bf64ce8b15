package internlm.engine.tokenizer;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/**
 * Turns a stream of tokens into text, holding back the bytes of a UTF-8 character that is split across tokens
 * (byte-fallback tokens) until it is complete. Invalid sequences are flushed as U+FFFD.
 */
public final class StreamDecoder {
    private final Tokenizer tokenizer;
    private final boolean renderSpecial;
    private final ByteArrayOutputStream pending = new ByteArrayOutputStream();

    StreamDecoder(Tokenizer tokenizer, boolean renderSpecial) {
        this.tokenizer = tokenizer;
        this.renderSpecial = renderSpecial;
    }

    /** Adds a token; returns the text that became complete (possibly empty). */
    public String accept(int token) {
        byte[] p = tokenizer.pieceBytes(token, renderSpecial);
        pending.write(p, 0, p.length);
        byte[] buf = pending.toByteArray();
        int complete = completePrefix(buf);
        if (complete == 0) {
            return "";
        }
        String s = new String(buf, 0, complete, StandardCharsets.UTF_8);
        pending.reset();
        pending.write(buf, complete, buf.length - complete);
        return s;
    }

    /** Returns whatever is still held back (an incomplete character becomes U+FFFD). */
    public String flush() {
        String s = pending.toString(StandardCharsets.UTF_8);
        pending.reset();
        return s;
    }

    /** Length of the longest prefix that does not end inside an unfinished (but so far valid) UTF-8 sequence. */
    static int completePrefix(byte[] b) {
        int n = b.length;
        // look back at most 3 bytes for the start of a multi-byte sequence
        for (int back = 1; back <= Math.min(4, n); back++) {
            int c = b[n - back] & 0xff;
            if ((c & 0xC0) == 0x80) {
                continue; // continuation byte
            }
            int need = c >= 0xF0 && c <= 0xF7 ? 4 : c >= 0xE0 ? (c <= 0xEF ? 3 : 1) : c >= 0xC0 ? 2 : 1;
            return need > back ? n - back : n;
        }
        return n;
    }
}
