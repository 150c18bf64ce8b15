package internlm.loader.hf;

import internlm.loader.ModelFormatException;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A SentencePiece {@code tokenizer.model}: the serialized {@code ModelProto} protocol buffer, decoded by hand (no
 * protobuf library). Only what a tokenizer needs is kept — the pieces with score and type, the trainer's model type,
 * special ids and byte fallback, and the normalizer flags — with the {@code .proto} defaults for absent fields;
 * unknown fields are skipped by wire type. Every length and varint is bounds-checked, so a corrupt file ends in a
 * {@link ModelFormatException} naming the field and byte offset.
 *
 * <p>Field numbers (sentencepiece_model.proto): ModelProto {1 pieces, 2 trainer_spec, 3 normalizer_spec};
 * SentencePiece {1 piece, 2 score (float), 3 type (enum: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused,
 * 6 byte)}; TrainerSpec {3 model_type (1 unigram, 2 BPE, 3 word, 4 char), 4 vocab_size, 35 byte_fallback, 40 unk_id,
 * 41 bos_id, 42 eos_id, 43 pad_id}; NormalizerSpec {1 name, 3 add_dummy_prefix, 4 remove_extra_whitespaces,
 * 5 escape_whitespaces}.
 */
public record SentencePieceModel(
        List<Piece> pieces,
        int modelType,
        boolean byteFallback,
        int unkId,
        int bosId,
        int eosId,
        int padId,
        String normalizerName,
        boolean addDummyPrefix,
        boolean removeExtraWhitespaces,
        boolean escapeWhitespaces) {

    public static final int TYPE_NORMAL = 1, TYPE_UNKNOWN = 2, TYPE_CONTROL = 3, TYPE_USER_DEFINED = 4, TYPE_UNUSED = 5, TYPE_BYTE = 6;
    public static final int MODEL_UNIGRAM = 1, MODEL_BPE = 2, MODEL_WORD = 3, MODEL_CHAR = 4;

    /** A real tokenizer.model is 1-5 MB; refuse anything absurd before reading it. */
    static final long MAX_BYTES = 256L << 20;

    public record Piece(String piece, float score, int type) {}

    public static SentencePieceModel read(Path file) {
        byte[] b;
        try {
            long size = Files.size(file);
            if (size > MAX_BYTES) {
                throw new ModelFormatException(file, "is " + size + " bytes, more than a SentencePiece model can reasonably be");
            }
            b = Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            throw new ModelFormatException(file, "no such file");
        } catch (IOException e) {
            throw new ModelFormatException(file, "cannot read: " + e.getMessage(), e);
        }
        return parse(file, b);
    }

    public static SentencePieceModel parse(Path file, byte[] b) {
        Reader r = new Reader(file, b, 0, b.length, "ModelProto");
        List<Piece> pieces = new ArrayList<>();
        int modelType = MODEL_UNIGRAM;
        boolean byteFallback = false;
        int unk = 0, bos = 1, eos = 2, pad = -1;
        String normName = null;
        boolean dummy = true, removeWs = true, escapeWs = true;
        boolean sawTrainer = false;
        while (r.more()) {
            long tagAt = r.pos;
            long tag = r.varint("field tag");
            int field = (int) (tag >>> 3), wire = (int) (tag & 7);
            if (field == 0 || tag >>> 3 > Integer.MAX_VALUE) {
                throw new ModelFormatException(file, "ModelProto", tagAt, "invalid field number " + Long.toUnsignedString(tag >>> 3) + ": not a SentencePiece model");
            }
            if (field == 1 && wire == 2) {
                Reader p = r.sub("pieces[" + pieces.size() + "]");
                String piece = null;
                float score = 0;
                int type = TYPE_NORMAL;
                while (p.more()) {
                    long t = p.varint("tag");
                    int f = (int) (t >>> 3), w = (int) (t & 7);
                    if (f == 1 && w == 2) {
                        piece = p.string("piece");
                    } else if (f == 2 && w == 5) {
                        score = Float.intBitsToFloat(p.fixed32("score"));
                    } else if (f == 3 && w == 0) {
                        long at = p.pos;
                        long v = p.varint("type");
                        if (v < 1 || v > 6) {
                            throw new ModelFormatException(file, "pieces[" + pieces.size() + "].type", at, "unknown piece type " + v);
                        }
                        type = (int) v;
                    } else {
                        p.skip(f, w);
                    }
                }
                if (piece == null) {
                    throw new ModelFormatException(file, "pieces[" + pieces.size() + "]", tagAt, "has no piece text");
                }
                pieces.add(new Piece(piece, score, type));
            } else if (field == 2 && wire == 2) {
                sawTrainer = true;
                Reader t = r.sub("trainer_spec");
                while (t.more()) {
                    long tg = t.varint("tag");
                    int f = (int) (tg >>> 3), w = (int) (tg & 7);
                    if (w == 0 && (f == 3 || f == 35 || f == 40 || f == 41 || f == 42 || f == 43)) {
                        long v = t.varint("trainer_spec field " + f);
                        int iv = (int) v; // int32 fields are sign-extended to 64 bits on the wire
                        switch (f) {
                            case 3 -> modelType = iv;
                            case 35 -> byteFallback = v != 0;
                            case 40 -> unk = iv;
                            case 41 -> bos = iv;
                            case 42 -> eos = iv;
                            default -> pad = iv;
                        }
                    } else {
                        t.skip(f, w);
                    }
                }
            } else if (field == 3 && wire == 2) {
                Reader n = r.sub("normalizer_spec");
                while (n.more()) {
                    long tg = n.varint("tag");
                    int f = (int) (tg >>> 3), w = (int) (tg & 7);
                    if (f == 1 && w == 2) {
                        normName = n.string("normalizer_spec.name");
                    } else if (w == 0 && f >= 3 && f <= 5) {
                        boolean v = n.varint("normalizer_spec field " + f) != 0;
                        if (f == 3) {
                            dummy = v;
                        } else if (f == 4) {
                            removeWs = v;
                        } else {
                            escapeWs = v;
                        }
                    } else {
                        n.skip(f, w);
                    }
                }
            } else {
                r.skip(field, wire);
            }
        }
        if (pieces.isEmpty()) {
            throw new ModelFormatException(file, "has no pieces: not a SentencePiece model (or an empty one)");
        }
        if (!sawTrainer) {
            throw new ModelFormatException(file, "has no trainer_spec: not a SentencePiece model");
        }
        return new SentencePieceModel(List.copyOf(pieces), modelType, byteFallback, unk, bos, eos, pad, normName, dummy, removeWs, escapeWs);
    }

    /** Bounds-checked protobuf wire reader over b[from, to). */
    private static final class Reader {
        final Path file;
        final byte[] b;
        final int end;
        final String where;
        int pos;

        Reader(Path file, byte[] b, int from, int to, String where) {
            this.file = file;
            this.b = b;
            this.pos = from;
            this.end = to;
            this.where = where;
        }

        boolean more() {
            return pos < end;
        }

        ModelFormatException err(String field, long at, String msg) {
            return new ModelFormatException(file, where + "." + field, at, msg);
        }

        long varint(String field) {
            int at = pos;
            long v = 0;
            for (int shift = 0; shift < 64; shift += 7) {
                if (pos >= end) {
                    throw err(field, at, "varint runs past the end of its message (truncated or corrupt)");
                }
                int x = b[pos++] & 0xff;
                v |= (long) (x & 0x7f) << shift;
                if ((x & 0x80) == 0) {
                    return v;
                }
            }
            throw err(field, at, "varint longer than 10 bytes");
        }

        int fixed32(String field) {
            if (end - pos < 4) {
                throw err(field, pos, "needs 4 bytes, " + (end - pos) + " left (truncated or corrupt)");
            }
            int v = (b[pos] & 0xff) | (b[pos + 1] & 0xff) << 8 | (b[pos + 2] & 0xff) << 16 | (b[pos + 3] & 0xff) << 24;
            pos += 4;
            return v;
        }

        int length(String field) {
            int at = pos;
            long n = varint(field + " length");
            if (n < 0 || n > end - pos) {
                throw err(field, at, "length " + Long.toUnsignedString(n) + " runs past the end of its message (" + (end - pos) + " bytes left)");
            }
            return (int) n;
        }

        Reader sub(String field) {
            int n = length(field);
            Reader r = new Reader(file, b, pos, pos + n, field);
            pos += n;
            return r;
        }

        String string(String field) {
            int n = length(field);
            String s = new String(b, pos, n, StandardCharsets.UTF_8);
            pos += n;
            return s;
        }

        void skip(int field, int wire) {
            int at = pos;
            switch (wire) {
                case 0 -> varint("field " + field);
                case 1 -> {
                    if (end - pos < 8) {
                        throw err("field " + field, at, "needs 8 bytes, " + (end - pos) + " left (truncated or corrupt)");
                    }
                    pos += 8;
                }
                case 2 -> pos += length("field " + field);
                case 5 -> fixed32("field " + field);
                default -> throw err("field " + field, at, "unsupported protobuf wire type " + wire + " (corrupt file?)");
            }
        }
    }
}
