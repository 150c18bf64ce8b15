package internlm.engine.tokenizer;

import internlm.loader.Vocabulary;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;

/**
 * SentencePiece-BPE tokenizer over a model file's vocabulary, with llama.cpp's semantics (the reference our tests
 * compare against, token for token):
 * <ul>
 *   <li>special tokens are split out of the text first, longest first: user-defined tokens always, control and
 *       unknown tokens only when {@code parseSpecial} is set;</li>
 *   <li>with {@code add_space_prefix}, a space is put in front of the text and after every special token (legacy
 *       SentencePiece behaviour); spaces become {@code ▁};</li>
 *   <li>pieces are merged pairwise by score (highest first, leftmost on ties) over UTF-8 characters; a character no
 *       piece covers falls back to {@code <0xNN>} byte tokens;</li>
 *   <li>decoding maps {@code ▁} back to spaces, byte tokens to raw bytes (multi-byte UTF-8 split across tokens is
 *       reassembled), control tokens to their text only when asked, unused tokens to nothing.</li>
 * </ul>
 * Strings are handled as UTF-8 bytes throughout (internally as Latin-1 strings, one char per byte) so that byte
 * fallback and matching are exact.
 */
public final class Tokenizer {
    private static final String SPACE_MARK = "\u2581";
    private static final int ATTR_UNDEFINED = 0, ATTR_UNKNOWN = 1, ATTR_UNUSED = 2, ATTR_NORMAL = 4, ATTR_CONTROL = 8,
            ATTR_USER_DEFINED = 16, ATTR_BYTE = 32;

    /** Texts llama.cpp treats as end-of-generation markers; forced to control type when a file types them otherwise. */
    private static final List<String> EOG_TEXTS = List.of("<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
            "<|endoftext|>", "<|end_of_text|>", "<EOT>", "_<EOT>", "<|eom_id|>");

    private final Vocabulary vocab;
    private final String[] bytesText;           // token text as Latin-1-of-UTF-8
    private final float[] scores;
    private final int[] attrs;
    private final Map<String, Integer> tokenToId;
    private final int[] specialCache;           // control / user-defined / unknown ids, longest text first
    private final byte[][] pieceSpecial;        // token → bytes when special tokens are rendered
    private final byte[][] piecePlain;          // token → bytes when they are not
    private final int[] byteTokens = new int[256];

    public Tokenizer(Vocabulary vocab) {
        this.vocab = vocab;
        int n = vocab.size();
        bytesText = new String[n];
        scores = vocab.scores();
        attrs = new int[n];
        tokenToId = new HashMap<>(n * 2);
        for (int i = 0; i < n; i++) {
            bytesText[i] = latin1(vocab.tokens()[i]);
            tokenToId.put(bytesText[i], i);
            attrs[i] = switch (vocab.types()[i]) {
                case Vocabulary.TYPE_UNKNOWN -> ATTR_UNKNOWN;
                case Vocabulary.TYPE_UNUSED -> ATTR_UNUSED;
                case Vocabulary.TYPE_NORMAL -> ATTR_NORMAL;
                case Vocabulary.TYPE_CONTROL -> ATTR_CONTROL;
                case Vocabulary.TYPE_USER_DEFINED -> ATTR_USER_DEFINED;
                case Vocabulary.TYPE_BYTE -> ATTR_BYTE;
                default -> ATTR_UNDEFINED;
            };
        }
        for (String t : EOG_TEXTS) {
            Integer id = tokenToId.get(latin1(t));
            if (id != null) {
                attrs[id] |= ATTR_CONTROL;
            }
        }
        List<Integer> special = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            if ((attrs[i] & (ATTR_CONTROL | ATTR_USER_DEFINED | ATTR_UNKNOWN)) != 0) {
                special.add(i);
            }
        }
        special.sort(Comparator.comparingInt((Integer id) -> -bytesText[id].length()).thenComparingInt(id -> id));
        specialCache = special.stream().mapToInt(Integer::intValue).toArray();
        for (int b = 0; b < 256; b++) {
            Integer id = tokenToId.get(String.format("<0x%02X>", b));
            if (id == null) {
                id = tokenToId.get(String.valueOf((char) b));
            }
            byteTokens[b] = id != null ? id : vocab.unk();
        }
        pieceSpecial = new byte[n][];
        piecePlain = new byte[n][];
        for (int i = 0; i < n; i++) {
            pieceSpecial[i] = computePiece(i, true);
            piecePlain[i] = computePiece(i, false);
        }
    }

    public Vocabulary vocabulary() {
        return vocab;
    }

    public int size() {
        return bytesText.length;
    }

    /** The raw vocabulary piece of a token (e.g. "▁the", "&lt;0x0A&gt;", "&lt;|im_end|&gt;"). */
    public String piece(int id) {
        return vocab.tokens()[id];
    }

    /** The id of the token whose piece is exactly {@code text}, or -1. */
    public int tokenId(String text) {
        Integer id = tokenToId.get(latin1(text));
        return id == null ? -1 : id;
    }

    public boolean isControl(int id) {
        return (attrs[id] & ATTR_CONTROL) != 0;
    }

    public boolean isSpecial(int id) {
        return (attrs[id] & (ATTR_CONTROL | ATTR_USER_DEFINED | ATTR_UNKNOWN)) != 0;
    }

    // ------------------------------------------------------------------ encoding

    /**
     * Tokenizes text.
     *
     * @param addBos       prepend BOS when the model asks for it (and EOS at the end when it asks for that)
     * @param parseSpecial recognise control tokens (e.g. {@code <|im_start|>}) written in the text
     */
    public int[] encode(String text, boolean addBos, boolean parseSpecial) {
        String raw = latin1(text);
        IntList out = new IntList(raw.length() / 2 + 4);
        if (addBos && vocab.addBos() && vocab.bos() >= 0) {
            out.add(vocab.bos());
        }
        List<Object> fragments = partition(raw, parseSpecial);
        boolean prevSpecial = true;
        for (Object f : fragments) {
            if (f instanceof Integer id) {
                out.add(id);
                prevSpecial = true;
            } else {
                String s = (String) f;
                if (vocab.addSpacePrefix() && prevSpecial) {
                    s = " " + s;
                }
                spm(s.replace(" ", latin1(SPACE_MARK)), out);
                prevSpecial = false;
            }
        }
        if (addBos && vocab.addEos() && vocab.eos() >= 0) {
            out.add(vocab.eos());
        }
        return out.toArray();
    }

    /** Splits the text around special tokens: a list of String (raw text, Latin-1) and Integer (token id). */
    private List<Object> partition(String raw, boolean parseSpecial) {
        List<Object> frags = new ArrayList<>();
        if (raw.isEmpty()) {
            return frags;
        }
        frags.add(raw);
        for (int id : specialCache) {
            if (!parseSpecial && (attrs[id] & (ATTR_CONTROL | ATTR_UNKNOWN)) != 0) {
                continue;
            }
            String tok = bytesText[id];
            List<Object> next = new ArrayList<>(frags.size() + 4);
            for (Object f : frags) {
                if (!(f instanceof String s)) {
                    next.add(f);
                    continue;
                }
                int from = 0;
                int at;
                while ((at = s.indexOf(tok, from)) >= 0) {
                    if (at > from) {
                        next.add(s.substring(from, at));
                    }
                    next.add(id);
                    from = at + tok.length();
                }
                if (from < s.length()) {
                    next.add(s.substring(from));
                }
            }
            frags = next;
        }
        return frags;
    }

    private static int utf8Len(char firstByte) {
        int hi = (firstByte & 0xff) >> 4;
        return hi < 12 ? 1 : hi < 14 ? 2 : hi == 14 ? 3 : 4;
    }

    /** One SentencePiece BPE session over a fragment (Latin-1-of-UTF-8 text with spaces already escaped). */
    private void spm(String text, IntList out) {
        int n = 0;
        int[] start = new int[text.length()];
        int[] len = new int[text.length()];
        for (int offs = 0; offs < text.length(); ) {
            int l = Math.min(utf8Len(text.charAt(offs)), text.length() - offs);
            start[n] = offs;
            len[n] = l;
            n++;
            offs += l;
        }
        int[] prev = new int[n], next = new int[n];
        for (int i = 0; i < n; i++) {
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
        }
        PriorityQueue<long[]> queue = new PriorityQueue<>((a, b) -> {
            float sa = Float.intBitsToFloat((int) a[2]), sb = Float.intBitsToFloat((int) b[2]);
            if (sa != sb) {
                return sa > sb ? -1 : 1;
            }
            return Long.compare(a[0], b[0]);
        });
        Map<String, int[]> revMerge = new HashMap<>();
        for (int i = 1; i < n; i++) {
            tryBigram(text, start, len, i - 1, i, queue, revMerge);
        }
        while (!queue.isEmpty()) {
            long[] bg = queue.poll();
            int left = (int) bg[0], right = (int) bg[1];
            if (len[left] == 0 || len[right] == 0 || len[left] + len[right] != bg[3]) {
                continue;
            }
            len[left] += len[right];
            len[right] = 0;
            next[left] = next[right];
            if (next[right] >= 0) {
                prev[next[right]] = left;
            }
            tryBigram(text, start, len, prev[left], left, queue, revMerge);
            tryBigram(text, start, len, left, next[left], queue, revMerge);
        }
        if (n == 0) {
            return;
        }
        int[] stack = new int[n + 1];
        for (int i = 0; i != -1; i = next[i]) {
            int sp = 0;
            stack[sp++] = i;
            while (sp > 0) {
                int sym = stack[--sp];
                String s = text.substring(start[sym], start[sym] + len[sym]);
                Integer id = tokenToId.get(s);
                if (id != null) {
                    out.add(id);
                    continue;
                }
                int[] pair = revMerge.get(s);
                if (pair == null) {
                    for (int j = 0; j < s.length(); j++) {
                        out.add(byteTokens[s.charAt(j) & 0xff]);
                    }
                    continue;
                }
                stack[sp++] = pair[1];
                stack[sp++] = pair[0];
            }
        }
    }

    private void tryBigram(String text, int[] start, int[] len, int left, int right, PriorityQueue<long[]> queue, Map<String, int[]> revMerge) {
        if (left == -1 || right == -1) {
            return;
        }
        String s = text.substring(start[left], start[left] + len[left] + len[right]);
        Integer id = tokenToId.get(s);
        if (id == null) {
            return;
        }
        queue.add(new long[] {left, right, Float.floatToRawIntBits(scores[id]) & 0xffffffffL, s.length()});
        revMerge.put(s, new int[] {left, right});
    }

    // ------------------------------------------------------------------ decoding

    private byte[] computePiece(int id, boolean special) {
        int a = attrs[id];
        if (!special && (a & (ATTR_UNKNOWN | ATTR_CONTROL)) != 0) {
            return new byte[0];
        }
        if ((a & (ATTR_UNKNOWN | ATTR_CONTROL | ATTR_USER_DEFINED)) != 0) {
            return bytesOf(bytesText[id]);
        }
        if ((a & ATTR_NORMAL) != 0) {
            return vocab.tokens()[id].replace(SPACE_MARK, " ").getBytes(StandardCharsets.UTF_8);
        }
        if ((a & ATTR_BYTE) != 0) {
            String t = bytesText[id];
            return new byte[] {(byte) Integer.parseInt(t.substring(3, 5), 16)};
        }
        return new byte[0];
    }

    /** The bytes a token decodes to (llama.cpp's token_to_piece without left-stripping). */
    public byte[] pieceBytes(int id, boolean renderSpecial) {
        return (renderSpecial ? pieceSpecial : piecePlain)[id];
    }

    /**
     * Detokenizes a whole sequence like llama.cpp's {@code llama_detokenize(remove_special=false)}: with
     * add_space_prefix, one leading space of the first token is dropped.
     */
    public String decode(int[] ids, boolean renderSpecial) {
        ByteArrayOutputStream bos = new ByteArrayOutputStream();
        boolean strip = vocab.addSpacePrefix();
        for (int id : ids) {
            byte[] p = pieceBytes(id, renderSpecial);
            int from = 0;
            if (strip && p.length > 0 && p[0] == ' ') {
                from = 1;
            }
            strip = false;
            bos.write(p, from, p.length - from);
        }
        return bos.toString(StandardCharsets.UTF_8);
    }

    /** An incremental decoder for streaming: emits text only once complete UTF-8 characters are available. */
    public StreamDecoder streamDecoder(boolean renderSpecial) {
        return new StreamDecoder(this, renderSpecial);
    }

    static String latin1(String s) {
        return new String(s.getBytes(StandardCharsets.UTF_8), StandardCharsets.ISO_8859_1);
    }

    private static byte[] bytesOf(String latin1) {
        return latin1.getBytes(StandardCharsets.ISO_8859_1);
    }

    /** Minimal growable int list. */
    static final class IntList {
        private int[] a;
        private int n;

        IntList(int cap) {
            a = new int[Math.max(4, cap)];
        }

        void add(int v) {
            if (n == a.length) {
                a = Arrays.copyOf(a, a.length * 2);
            }
            a[n++] = v;
        }

        int[] toArray() {
            return Arrays.copyOf(a, n);
        }
    }
}
