package internlm.loader;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * A model ready to be given to a backend: its description, vocabulary and weights under canonical (GGUF) names,
 * e.g. {@code token_embd.weight}, {@code blk.3.attn_q.weight}, {@code output.weight}. Q/K rows are in GGUF order
 * (adjacent RoPE pairs), whatever the source. Closing it releases the mapped files and converted tensors.
 *
 * @param notes      facts about the load worth showing to a user (conversions done, defaults assumed)
 * @param stopTokens end-of-generation ids the model's files name besides the vocabulary's EOS (an HF directory's
 *                   generation_config.json); empty for GGUF files
 */
public record LoadedModel(
        Path source,
        String format,
        ModelConfig config,
        Vocabulary vocab,
        Map<String, TensorData> tensors,
        List<String> notes,
        AutoCloseable resources,
        int[] stopTokens) implements AutoCloseable {

    public LoadedModel(Path source, String format, ModelConfig config, Vocabulary vocab, Map<String, TensorData> tensors,
                       List<String> notes, AutoCloseable resources) {
        this(source, format, config, vocab, tensors, notes, resources, new int[0]);
    }

    public TensorData tensor(String name) {
        TensorData t = tensors.get(name);
        if (t == null) {
            throw new ModelFormatException(source, "tensor '" + name + "' is missing");
        }
        return t;
    }

    public TensorData optionalTensor(String name) {
        return tensors.get(name);
    }

    public static String layerTensor(int layer, String suffix) {
        return "blk." + layer + "." + suffix;
    }

    @Override
    public void close() {
        try {
            resources.close();
        } catch (Exception e) {
            throw new IllegalStateException("closing " + source + ": " + e.getMessage(), e);
        }
    }
}
