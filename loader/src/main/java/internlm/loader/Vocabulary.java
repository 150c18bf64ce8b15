package internlm.loader;

/**
 * The tokenizer's data as a model file stores it: pieces, scores and token types (llama.cpp/SentencePiece numbering:
 * 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte), special ids and the flags that change how text
 * is encoded. Ids of -1 mean "not set".
 */
public record Vocabulary(
        String[] tokens,
        float[] scores,
        int[] types,
        int bos,
        int eos,
        int unk,
        int pad,
        boolean addBos,
        boolean addEos,
        boolean addSpacePrefix,
        String chatTemplate) {

    public static final int TYPE_UNDEFINED = 0;
    public static final int TYPE_NORMAL = 1;
    public static final int TYPE_UNKNOWN = 2;
    public static final int TYPE_CONTROL = 3;
    public static final int TYPE_USER_DEFINED = 4;
    public static final int TYPE_UNUSED = 5;
    public static final int TYPE_BYTE = 6;

    public int size() {
        return tokens.length;
    }

    /** The id of the piece with exactly this text, or -1. Linear scan: use a Tokenizer for repeated look-ups. */
    public int find(String piece) {
        for (int i = 0; i < tokens.length; i++) {
            if (tokens[i].equals(piece)) {
                return i;
            }
        }
        return -1;
    }
}
