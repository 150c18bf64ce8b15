package internlm.loader.hf;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import internlm.loader.ModelConfig.Family;
import internlm.loader.ModelConfig.RopeScaling;
import internlm.loader.ModelFormatException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * What the engine needs from a Hugging Face {@code config.json} of an InternLM model (spec §2): the family (from
 * {@code model_type}, or {@code architectures} when that is missing), shapes, RoPE base and scaling, norm epsilon,
 * bias flags and special-token ids. RoPE scaling is read from {@code rope_scaling} with either key {@code type} or
 * {@code rope_type}; InternLM v1's later {@code rotary: {base, type, scaling_factor}} block takes precedence when
 * present. Values are type-checked; a missing or malformed field is an error naming it.
 *
 * @param eosIds          {@code eos_token_id} (a number or a list in the file; empty when absent)
 * @param bias            v1: q/k/v/o biases; v2: wqkv/wo biases; v3: o_proj and MLP biases
 * @param qkvBias         v3 only: q/k/v biases ({@code qkv_bias})
 * @param tieEmbeddings   {@code tie_word_embeddings} (null when absent)
 */
public record HfConfig(
        Path file,
        Family family,
        String modelType,
        String name,
        int hidden,
        int layers,
        int heads,
        int kvHeads,
        int headDim,
        int ffn,
        int vocabSize,
        int maxPositions,
        double ropeTheta,
        RopeScaling ropeScaling,
        float rmsEps,
        boolean bias,
        boolean qkvBias,
        Boolean tieEmbeddings,
        int bosId,
        List<Integer> eosIds,
        int padId,
        int unkId) {

    /** Files larger than this are not configs (a real one is about 1 KB). */
    static final long MAX_JSON_BYTES = 16L << 20;

    public static HfConfig read(Path file) {
        JsonNode root = readJson(file, MAX_JSON_BYTES);
        if (!root.isObject()) {
            throw new ModelFormatException(file, "is not a JSON object");
        }
        String modelType = optString(file, root, "model_type");
        Family family = family(file, root, modelType);
        if (modelType == null) {
            modelType = switch (family) {
                case INTERNLM1 -> "internlm";
                case INTERNLM2 -> "internlm2";
                case INTERNLM3 -> "internlm3";
            };
        }
        String act = optString(file, root, "hidden_act");
        if (act != null && !act.equals("silu")) {
            throw new ModelFormatException(file, "hidden_act '" + act + "' is not supported (InternLM models use silu)");
        }
        int hidden = positiveInt(file, root, "hidden_size");
        int layers = positiveInt(file, root, "num_hidden_layers");
        int heads = positiveInt(file, root, "num_attention_heads");
        int kvHeads = root.hasNonNull("num_key_value_heads") ? positiveInt(file, root, "num_key_value_heads") : heads;
        if (heads % kvHeads != 0) {
            throw new ModelFormatException(file, "num_attention_heads " + heads + " is not a multiple of num_key_value_heads " + kvHeads);
        }
        int headDim;
        if (root.hasNonNull("head_dim")) {
            headDim = positiveInt(file, root, "head_dim");
        } else {
            if (hidden % heads != 0) {
                throw new ModelFormatException(file, "hidden_size " + hidden + " is not a multiple of num_attention_heads " + heads + " and head_dim is not given");
            }
            headDim = hidden / heads;
        }
        if (headDim % 2 != 0) {
            throw new ModelFormatException(file, "head dimension " + headDim + " is odd: RoPE rotates pairs");
        }
        int ffn = positiveInt(file, root, "intermediate_size");
        int vocab = positiveInt(file, root, "vocab_size");
        int maxPos = positiveInt(file, root, "max_position_embeddings");
        float eps = root.has("rms_norm_eps") ? (float) positiveDouble(file, root, "rms_norm_eps") : 1e-6f;
        if (!(eps > 0)) {
            throw new ModelFormatException(file, "rms_norm_eps is too small for float32");
        }
        double theta = root.has("rope_theta") && !root.get("rope_theta").isNull() ? positiveDouble(file, root, "rope_theta") : 10000.0;
        RopeScaling scaling = ropeScaling(file, root.get("rope_scaling"), "rope_scaling");
        JsonNode rotary = root.get("rotary");
        if (family == Family.INTERNLM1 && rotary != null && !rotary.isNull()) {
            // the later v1 revision: rotary = {base, type: origin|dynamic, scaling_factor}
            if (!rotary.isObject()) {
                throw new ModelFormatException(file, "rotary must be an object");
            }
            if (rotary.has("base")) {
                theta = positiveDouble(file, rotary, "base", "rotary.base");
            }
            String type = optString(file, rotary, "type", "rotary.type");
            double factor = rotary.has("scaling_factor") ? positiveDouble(file, rotary, "scaling_factor", "rotary.scaling_factor") : 1.0;
            if (type == null || type.equals("origin")) {
                scaling = RopeScaling.NONE;
            } else if (type.equals("dynamic")) {
                scaling = new RopeScaling(RopeScaling.Type.DYNAMIC, factor);
            } else {
                throw new ModelFormatException(file, "rotary.type '" + type + "' is not supported (origin, dynamic)");
            }
        }
        boolean bias = optBool(file, root, "bias", false);
        boolean qkvBias = family == Family.INTERNLM3 ? optBool(file, root, "qkv_bias", false) : bias;
        Boolean tie = root.hasNonNull("tie_word_embeddings") ? optBool(file, root, "tie_word_embeddings", false) : null;
        List<Integer> eos = idList(file, root, "eos_token_id");
        int bos = optId(file, root, "bos_token_id");
        int pad = optId(file, root, "pad_token_id");
        int unk = optId(file, root, "unk_token_id");
        String name = optString(file, root, "_name_or_path");
        if (name == null || name.isBlank()) {
            Path dir = file.toAbsolutePath().getParent();
            name = dir != null && dir.getFileName() != null ? dir.getFileName().toString() : modelType;
        }
        return new HfConfig(file, family, modelType, name, hidden, layers, heads, kvHeads, headDim, ffn, vocab, maxPos, theta,
                scaling, eps, bias, qkvBias, tie, bos, eos, pad, unk);
    }

    private static Family family(Path file, JsonNode root, String modelType) {
        if (modelType != null) {
            return switch (modelType) {
                case "internlm" -> Family.INTERNLM1;
                case "internlm2" -> Family.INTERNLM2;
                case "internlm3" -> Family.INTERNLM3;
                default -> throw new ModelFormatException(file, "model_type '" + modelType
                        + "' is not supported (this engine loads InternLM: 'internlm' (v1), 'internlm2' (InternLM2/2.5), 'internlm3')");
            };
        }
        JsonNode archs = root.get("architectures");
        if (archs != null && archs.isArray()) {
            for (JsonNode a : archs) {
                String s = a.asText("");
                if (s.startsWith("InternLM2")) {
                    return Family.INTERNLM2;
                }
                if (s.startsWith("InternLM3")) {
                    return Family.INTERNLM3;
                }
                if (s.startsWith("InternLM")) {
                    return Family.INTERNLM1;
                }
            }
        }
        throw new ModelFormatException(file, "neither model_type nor architectures names an InternLM model");
    }

    /** {@code rope_scaling}: null, or {type|rope_type: default|linear|dynamic, factor}. */
    static RopeScaling ropeScaling(Path file, JsonNode rs, String field) {
        if (rs == null || rs.isNull()) {
            return RopeScaling.NONE;
        }
        if (!rs.isObject()) {
            throw new ModelFormatException(file, field + " must be an object or null");
        }
        String type = optString(file, rs, "type", field + ".type");
        String ropeType = optString(file, rs, "rope_type", field + ".rope_type");
        if (type != null && ropeType != null && !type.equals(ropeType)) {
            throw new ModelFormatException(file, field + " gives type '" + type + "' and rope_type '" + ropeType + "'");
        }
        String t = type != null ? type : ropeType;
        if (t == null || t.equals("default")) {
            return RopeScaling.NONE;
        }
        return switch (t) {
            case "linear", "dynamic" -> {
                if (!rs.has("factor")) {
                    throw new ModelFormatException(file, field + ".factor is missing (needed for " + t + " scaling)");
                }
                double f = positiveDouble(file, rs, "factor", field + ".factor");
                yield new RopeScaling(t.equals("linear") ? RopeScaling.Type.LINEAR : RopeScaling.Type.DYNAMIC, f);
            }
            default -> throw new ModelFormatException(file, field + " type '" + t + "' is not supported (none, linear, dynamic)");
        };
    }

    // ------------------------------------------------------------------ JSON helpers (shared by the HF readers)

    /** Reads a JSON file of at most maxBytes strictly; errors name the file. */
    static JsonNode readJson(Path file, long maxBytes) {
        try {
            long size = Files.size(file);
            if (size > maxBytes) {
                throw new ModelFormatException(file, "is " + size + " bytes, more than the " + maxBytes + " expected of this file");
            }
            JsonNode n = SafetensorsFile.JSON.readTree(Files.readAllBytes(file));
            if (n == null || n.isMissingNode()) {
                throw new ModelFormatException(file, "is empty");
            }
            return n;
        } catch (NoSuchFileException e) {
            throw new ModelFormatException(file, "no such file");
        } catch (JsonProcessingException e) {
            throw new ModelFormatException(file, "is not valid JSON: " + SafetensorsFile.shortJsonError(e));
        } catch (IOException e) {
            throw new ModelFormatException(file, "cannot read: " + e.getMessage(), e);
        }
    }

    static String optString(Path file, JsonNode o, String key) {
        return optString(file, o, key, key);
    }

    static String optString(Path file, JsonNode o, String key, String field) {
        JsonNode v = o.get(key);
        if (v == null || v.isNull()) {
            return null;
        }
        if (!v.isTextual()) {
            throw new ModelFormatException(file, field + " must be a string, found " + SafetensorsFile.abbreviate(v.toString()));
        }
        return v.asText();
    }

    static boolean optBool(Path file, JsonNode o, String key, boolean def) {
        JsonNode v = o.get(key);
        if (v == null || v.isNull()) {
            return def;
        }
        if (!v.isBoolean()) {
            throw new ModelFormatException(file, key + " must be true or false, found " + SafetensorsFile.abbreviate(v.toString()));
        }
        return v.asBoolean();
    }

    static int positiveInt(Path file, JsonNode o, String key) {
        JsonNode v = o.get(key);
        if (v == null || v.isNull()) {
            throw new ModelFormatException(file, "required field " + key + " is missing");
        }
        if (!v.isIntegralNumber() || !v.canConvertToInt() || v.asInt() <= 0) {
            throw new ModelFormatException(file, key + " must be a positive integer (below 2^31), found " + SafetensorsFile.abbreviate(v.toString()));
        }
        return v.asInt();
    }

    static double positiveDouble(Path file, JsonNode o, String key) {
        return positiveDouble(file, o, key, key);
    }

    static double positiveDouble(Path file, JsonNode o, String key, String field) {
        JsonNode v = o.get(key);
        if (v == null || !v.isNumber() || !(v.asDouble() > 0) || Double.isInfinite(v.asDouble())) {
            throw new ModelFormatException(file, field + " must be a positive number, found " + (v == null ? "nothing" : SafetensorsFile.abbreviate(v.toString())));
        }
        return v.asDouble();
    }

    /** A token id field: absent/null → -1; otherwise a non-negative integer. */
    static int optId(Path file, JsonNode o, String key) {
        JsonNode v = o.get(key);
        if (v == null || v.isNull()) {
            return -1;
        }
        if (v.isArray() && !v.isEmpty()) {
            v = v.get(0);
        }
        if (!v.isIntegralNumber() || !v.canConvertToInt() || v.asInt() < 0) {
            throw new ModelFormatException(file, key + " must be a token id, found " + SafetensorsFile.abbreviate(v.toString()));
        }
        return v.asInt();
    }

    /** A token id or a list of them (eos_token_id); empty when absent. */
    static List<Integer> idList(Path file, JsonNode o, String key) {
        JsonNode v = o.get(key);
        List<Integer> out = new ArrayList<>();
        if (v == null || v.isNull()) {
            return out;
        }
        if (v.isArray()) {
            if (v.size() > 1024) {
                throw new ModelFormatException(file, key + " lists " + v.size() + " ids");
            }
            for (JsonNode x : v) {
                if (!x.isIntegralNumber() || !x.canConvertToInt() || x.asInt() < 0) {
                    throw new ModelFormatException(file, key + " must hold token ids, found " + SafetensorsFile.abbreviate(x.toString()));
                }
                out.add(x.asInt());
            }
            return out;
        }
        if (!v.isIntegralNumber() || !v.canConvertToInt() || v.asInt() < 0) {
            throw new ModelFormatException(file, key + " must be a token id or a list of them, found " + SafetensorsFile.abbreviate(v.toString()));
        }
        out.add(v.asInt());
        return out;
    }
}
