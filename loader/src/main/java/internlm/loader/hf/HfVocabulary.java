package internlm.loader.hf;

import com.fasterxml.jackson.databind.JsonNode;
import internlm.loader.ModelConfig.Family;
import internlm.loader.ModelFormatException;
import internlm.loader.Vocabulary;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The vocabulary of an HF directory, built the way llama.cpp's converters build a GGUF's (spec §7.1, §8), so that an
 * HF directory tokenizes exactly like its conversion:
 * <ul>
 *   <li>pieces, scores and types from {@code tokenizer.model}; SentencePiece's user-defined type becomes normal (the
 *       converter only asks unknown/control/unused/byte); for InternLM2 a piece starting with {@code [UNUSED} is
 *       typed unused and a piece that is a single NUL byte is renamed to 🐉 (as the InternLM2 converter does);</li>
 *   <li>added tokens ({@code added_tokens.json}, {@code tokenizer_config.json} {@code added_tokens_decoder},
 *       {@code tokenizer.json} {@code added_tokens}) overwrite the piece at their id — this is how
 *       {@code [UNUSED_TOKEN_145]} becomes {@code <|im_end|>} — with score −1000 and type control (special) or
 *       user-defined. Entries that only repeat what the SentencePiece model already says (same text, already
 *       control or unknown, like {@code <s>}) keep its score and type;</li>
 *   <li>fewer pieces than {@code vocab_size}: the other ids are unused {@code [PAD<id>]} tokens (score −10000), pieces
 *       past it are dropped, as the converter does;</li>
 *   <li>BOS/EOS/PAD ids from {@code config.json} (else the SentencePiece model), UNK from the SentencePiece model;
 *       when the added tokens define {@code <|im_end|>} it becomes EOS (the converters' rule for chat models);</li>
 *   <li>{@code add_bos_token}/{@code add_eos_token}/{@code chat_template} from {@code tokenizer_config.json};
 *       the space prefix from the SentencePiece normalizer's {@code add_dummy_prefix}, for InternLM3 from
 *       {@code tokenizer_config.json}'s {@code add_prefix_space} when present.</li>
 * </ul>
 *
 * @param stopIds end-of-generation ids from {@code generation_config.json} and {@code config.json} (in range)
 */
public record HfVocabulary(Vocabulary vocabulary, int[] stopIds, List<String> notes) {

    static final String DRAGON = "\uD83D\uDC09";
    static final float ADDED_SCORE = -1000f;
    static final float PAD_SCORE = -10000f;

    public static HfVocabulary read(Path dir, HfConfig cfg) {
        Path spPath = dir.resolve("tokenizer.model");
        if (!Files.isRegularFile(spPath)) {
            throw new ModelFormatException(dir, "has no tokenizer.model (the SentencePiece model InternLM tokenizers use)");
        }
        SentencePieceModel sp = SentencePieceModel.read(spPath);
        if (sp.modelType() != SentencePieceModel.MODEL_BPE) {
            throw new ModelFormatException(spPath, "is a SentencePiece model of type " + sp.modelType()
                    + ", not BPE (2): InternLM tokenizers are BPE and this engine implements only that algorithm");
        }
        int n = cfg.vocabSize();
        List<String> notes = new java.util.ArrayList<>();
        int m = sp.pieces().size();
        if (m > n) {
            notes.add("tokenizer.model has " + m + " pieces; the " + (m - n) + " past vocab_size " + n + " are dropped, as llama.cpp's converter does");
            m = n;
        }
        String[] tokens = new String[n];
        float[] scores = new float[n];
        int[] types = new int[n];
        for (int i = 0; i < m; i++) {
            SentencePieceModel.Piece p = sp.pieces().get(i);
            String text = p.piece();
            int type = switch (p.type()) {
                case SentencePieceModel.TYPE_UNKNOWN -> Vocabulary.TYPE_UNKNOWN;
                case SentencePieceModel.TYPE_CONTROL -> Vocabulary.TYPE_CONTROL;
                case SentencePieceModel.TYPE_UNUSED -> Vocabulary.TYPE_UNUSED;
                case SentencePieceModel.TYPE_BYTE -> Vocabulary.TYPE_BYTE;
                default -> Vocabulary.TYPE_NORMAL; // normal and user-defined, as the converter types them
            };
            if (cfg.family() == Family.INTERNLM2) {
                if (text.equals("\0")) {
                    text = DRAGON;
                    notes.add("piece " + i + " (a NUL byte) renamed to " + DRAGON + " as llama.cpp's converter does");
                }
                if (text.startsWith("[UNUSED")) {
                    type = Vocabulary.TYPE_UNUSED;
                }
            }
            tokens[i] = text;
            scores[i] = p.score();
            types[i] = type;
        }
        for (int i = m; i < n; i++) {
            tokens[i] = "[PAD" + i + "]";
            scores[i] = PAD_SCORE;
            types[i] = Vocabulary.TYPE_UNUSED;
        }
        if (m < n) {
            notes.add("vocabulary padded with " + (n - m) + " unused [PADid] tokens to vocab_size " + n);
        }

        Map<String, Integer> added = new HashMap<>();
        Path addedJson = dir.resolve("added_tokens.json");
        if (Files.isRegularFile(addedJson)) {
            JsonNode a = HfConfig.readJson(addedJson, 64L << 20);
            if (!a.isObject()) {
                throw new ModelFormatException(addedJson, "is not a JSON object of token → id");
            }
            for (Map.Entry<String, JsonNode> e : a.properties()) {
                JsonNode id = e.getValue();
                if (!id.isIntegralNumber() || !id.canConvertToInt() || id.asInt() < 0) {
                    throw new ModelFormatException(addedJson, "id of '" + e.getKey() + "' must be a non-negative integer");
                }
                addToken(tokens, scores, types, id.asInt(), e.getKey(), false, added, notes, addedJson);
            }
        }
        Path tcPath = dir.resolve("tokenizer_config.json");
        JsonNode tc = Files.isRegularFile(tcPath) ? HfConfig.readJson(tcPath, 64L << 20) : null;
        if (tc != null && !tc.isObject()) {
            throw new ModelFormatException(tcPath, "is not a JSON object");
        }
        if (tc != null && tc.hasNonNull("added_tokens_decoder")) {
            JsonNode d = tc.get("added_tokens_decoder");
            if (!d.isObject()) {
                throw new ModelFormatException(tcPath, "added_tokens_decoder must be an object");
            }
            for (Map.Entry<String, JsonNode> e : d.properties()) {
                int id;
                try {
                    id = Integer.parseInt(e.getKey());
                } catch (NumberFormatException x) {
                    throw new ModelFormatException(tcPath, "added_tokens_decoder key '" + SafetensorsFile.abbreviate(e.getKey()) + "' is not a token id");
                }
                addedEntry(tcPath, "added_tokens_decoder['" + e.getKey() + "']", e.getValue(), id, tokens, scores, types, added, notes);
            }
        }
        Path tjPath = dir.resolve("tokenizer.json");
        if (Files.isRegularFile(tjPath)) {
            JsonNode tj = HfConfig.readJson(tjPath, 512L << 20);
            JsonNode at = tj.isObject() ? tj.get("added_tokens") : null;
            if (at != null && !at.isNull()) {
                if (!at.isArray()) {
                    throw new ModelFormatException(tjPath, "added_tokens must be an array");
                }
                for (int i = 0; i < at.size(); i++) {
                    JsonNode e = at.get(i);
                    JsonNode idn = e.get("id");
                    if (idn == null || !idn.isIntegralNumber() || !idn.canConvertToInt()) {
                        throw new ModelFormatException(tjPath, "added_tokens[" + i + "].id must be an integer");
                    }
                    addedEntry(tjPath, "added_tokens[" + i + "]", e, idn.asInt(), tokens, scores, types, added, notes);
                }
            }
        }

        Set<String> seen = new java.util.HashSet<>(n * 2);
        for (int i = 0; i < n; i++) {
            if (tokens[i].isEmpty()) {
                tokens[i] = "[EMPTY_" + i + "]"; // what llama.cpp does with an empty piece
            }
            if (!seen.add(tokens[i])) {
                throw new ModelFormatException(dir, "the vocabulary has the token '" + tokens[i] + "' twice (second at id " + i
                        + "): tokenizer.model and the added tokens disagree");
            }
        }

        int bos = inRange(cfg.bosId(), n) ? cfg.bosId() : inRange(sp.bosId(), n) ? sp.bosId() : -1;
        int eos = !cfg.eosIds().isEmpty() && inRange(cfg.eosIds().getFirst(), n) ? cfg.eosIds().getFirst() : inRange(sp.eosId(), n) ? sp.eosId() : -1;
        int unk = inRange(cfg.unkId(), n) ? cfg.unkId() : inRange(sp.unkId(), n) ? sp.unkId() : -1;
        int pad = inRange(cfg.padId(), n) ? cfg.padId() : inRange(sp.padId(), n) ? sp.padId() : -1;
        Integer imEnd = added.get("<|im_end|>");
        if (imEnd != null && imEnd != eos) {
            notes.add("eos set to <|im_end|> (" + imEnd + ") instead of " + (eos < 0 ? "none" : eos + " '" + tokens[eos] + "'")
                    + ", as llama.cpp's converter does for chat models");
            eos = imEnd;
        }
        boolean addBos = tc != null ? optBool(tcPath, tc, "add_bos_token", true) : true;
        boolean addEos = tc != null && optBool(tcPath, tc, "add_eos_token", false);
        boolean spacePrefix = sp.addDummyPrefix();
        if (cfg.family() == Family.INTERNLM3 && tc != null && tc.hasNonNull("add_prefix_space")) {
            spacePrefix = optBool(tcPath, tc, "add_prefix_space", spacePrefix);
        }
        if (addBos && bos < 0) {
            throw new ModelFormatException(tcPath, "add_bos_token is true but there is no BOS token");
        }
        String template = tc == null ? null : chatTemplate(tcPath, tc.get("chat_template"));

        Set<Integer> stops = new LinkedHashSet<>();
        for (int id : cfg.eosIds()) {
            if (inRange(id, n)) {
                stops.add(id);
            }
        }
        Path gen = dir.resolve("generation_config.json");
        if (Files.isRegularFile(gen)) {
            JsonNode g = HfConfig.readJson(gen, 16L << 20);
            if (!g.isObject()) {
                throw new ModelFormatException(gen, "is not a JSON object");
            }
            for (int id : HfConfig.idList(gen, g, "eos_token_id")) {
                if (inRange(id, n)) {
                    stops.add(id);
                } else {
                    notes.add("generation_config.json eos id " + id + " is outside the vocabulary; ignored");
                }
            }
        }
        Vocabulary v = new Vocabulary(tokens, scores, types, bos, eos, unk, pad, addBos, addEos, spacePrefix, template);
        return new HfVocabulary(v, stops.stream().mapToInt(Integer::intValue).toArray(), List.copyOf(notes));
    }

    private static void addedEntry(Path file, String field, JsonNode e, int id, String[] tokens, float[] scores, int[] types,
                                   Map<String, Integer> added, List<String> notes) {
        if (!e.isObject()) {
            throw new ModelFormatException(file, field + " must be an object");
        }
        JsonNode c = e.get("content");
        if (c == null || !c.isTextual()) {
            throw new ModelFormatException(file, field + ".content must be a string");
        }
        JsonNode sp = e.get("special");
        if (sp != null && !sp.isNull() && !sp.isBoolean()) {
            throw new ModelFormatException(file, field + ".special must be true or false");
        }
        if (id < 0) {
            throw new ModelFormatException(file, field + " has negative id " + id);
        }
        addToken(tokens, scores, types, id, c.asText(), sp != null && sp.asBoolean(), added, notes, file);
    }

    private static void addToken(String[] tokens, float[] scores, int[] types, int id, String content, boolean special,
                                 Map<String, Integer> added, List<String> notes, Path file) {
        if (id >= tokens.length) {
            notes.add(file.getFileName() + ": added token '" + content + "' has id " + id + ", outside the vocabulary; ignored");
            return;
        }
        added.put(content, id);
        boolean alreadySpecial = types[id] == Vocabulary.TYPE_CONTROL || types[id] == Vocabulary.TYPE_UNKNOWN;
        if (tokens[id].equals(content) && alreadySpecial && special) {
            return; // e.g. <s>: the SentencePiece model already says it all
        }
        if (special) {
            types[id] = Vocabulary.TYPE_CONTROL;
        } else {
            content = content.replace("\u2581", " "); // the converter pre-normalizes user-defined spaces
            types[id] = Vocabulary.TYPE_USER_DEFINED;
        }
        tokens[id] = content;
        scores[id] = ADDED_SCORE;
    }

    private static String chatTemplate(Path file, JsonNode t) {
        if (t == null || t.isNull()) {
            return null;
        }
        if (t.isTextual()) {
            return t.asText();
        }
        if (t.isArray()) { // [{name, template}, ...]: the "default" one, else the first
            String first = null;
            for (JsonNode e : t) {
                if (e.isObject() && e.path("template").isTextual()) {
                    if (first == null) {
                        first = e.get("template").asText();
                    }
                    if ("default".equals(e.path("name").asText(null))) {
                        return e.get("template").asText();
                    }
                }
            }
            return first;
        }
        throw new ModelFormatException(file, "chat_template must be a string or a list of {name, template}");
    }

    private static boolean optBool(Path file, JsonNode o, String key, boolean def) {
        return HfConfig.optBool(file, o, key, def);
    }

    private static boolean inRange(int id, int n) {
        return id >= 0 && id < n;
    }
}
