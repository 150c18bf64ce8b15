package internlm.cli;

import internlm.engine.Engine;
import internlm.engine.tokenizer.Tokenizer;
import internlm.loader.LoadedModel;
import internlm.loader.ModelConfig;
import internlm.loader.TensorData;
import internlm.loader.Vocabulary;
import internlm.loader.gguf.GgmlType;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;

@Command(name = "info", mixinStandardHelpOptions = true, description = "Describe a model: architecture, shapes, tensor types and sizes, tokenizer.")
final class InfoCommand implements Callable<Integer> {
    @Mixin
    ModelOptions model;

    @Override
    public Integer call() {
        try (LoadedModel m = Engine.loadModel(model.model != null ? model.model : ModelOptions.embedded(), model.quantizeType(), internlm.loader.Progress.NONE)) {
            ModelConfig c = m.config();
            Vocabulary v = m.vocab();
            Tokenizer tok = new Tokenizer(v);
            System.out.println("file:            " + model.modelName() + " (" + m.format() + ")");
            System.out.println("name:            " + c.name());
            System.out.println("architecture:    " + c.architecture() + " -> " + c.family().label);
            System.out.println("shape:           dim " + c.dim() + ", layers " + c.layers() + ", heads " + c.heads() + ", kv heads " + c.kvHeads()
                    + " (GQA " + c.groupSize() + ":1), head dim " + c.headDim() + ", ffn " + c.ffn());
            System.out.println("vocabulary:      " + c.vocabSize() + " tokens");
            System.out.println("context:         " + c.contextLength() + " tokens (trained)");
            System.out.println("rope:            base " + c.ropeTheta() + ", scaling " + c.ropeScaling());
            System.out.println("rms eps:         " + c.rmsEps());
            System.out.println("biases:          qkv " + c.qkvBias() + ", output " + c.outBias() + "; tied embeddings " + c.tiedEmbeddings());
            Map<GgmlType, long[]> byType = new TreeMap<>();
            long params = 0, bytes = 0;
            for (TensorData t : m.tensors().values()) {
                long[] a = byType.computeIfAbsent(t.type(), k -> new long[3]);
                a[0]++;
                a[1] += t.elements();
                a[2] += t.data().byteSize();
                params += t.elements();
                bytes += t.data().byteSize();
            }
            System.out.printf("tensors:         %d, %.3f B parameters, %s%n", m.tensors().size(), params / 1e9, size(bytes));
            for (Map.Entry<GgmlType, long[]> e : byType.entrySet()) {
                System.out.printf("  %-6s         %4d tensors, %s%n", e.getKey(), e.getValue()[0], size(e.getValue()[2]));
            }
            System.out.println("tokenizer:       SentencePiece BPE; add_bos " + v.addBos() + ", add_eos " + v.addEos() + ", add_space_prefix " + v.addSpacePrefix());
            System.out.println("special tokens:  bos " + name(tok, v.bos()) + ", eos " + name(tok, v.eos()) + ", unk " + name(tok, v.unk()) + ", pad " + name(tok, v.pad()));
            for (String s : new String[] {"<|im_start|>", "<|im_end|>", "<|action_start|>", "<|action_end|>", "<|plugin|>", "<|interpreter|>"}) {
                int id = tok.tokenId(s);
                if (id >= 0) {
                    System.out.println("                 " + s + " = " + id);
                }
            }
            System.out.println("chat template:   " + (v.chatTemplate() == null ? "none" : v.chatTemplate().length() + " characters"
                    + (v.chatTemplate().contains("<|im_start|>") ? " (ChatML)" : "")));
            for (String note : m.notes()) {
                System.out.println("note:            " + note);
            }
        }
        return 0;
    }

    private static String name(Tokenizer tok, int id) {
        return id < 0 ? "none" : id + " '" + tok.piece(id) + "'";
    }

    static String size(long bytes) {
        if (bytes >= 1L << 30) {
            return String.format("%.2f GiB", bytes / (double) (1L << 30));
        }
        if (bytes >= 1L << 20) {
            return String.format("%.2f MiB", bytes / (double) (1L << 20));
        }
        return String.format("%.1f KiB", bytes / 1024.0);
    }
}
