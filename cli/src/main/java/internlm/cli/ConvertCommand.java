package internlm.cli;

import internlm.loader.gguf.GgmlType;
import internlm.loader.hf.HfModelLoader;
import internlm.loader.hf.HfToGguf;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "convert", mixinStandardHelpOptions = true,
        description = {"Convert a Hugging Face InternLM directory (v1, InternLM2/2.5, InternLM3; safetensors) to a GGUF file "
                + "that llama.cpp and this engine load, with the tensors and metadata llama.cpp's converter writes.",
                "InternLM v1 becomes a 'llama' GGUF with q/k/v/o biases (llama.cpp has no v1 converter but runs such files); "
                        + "dynamic NTK RoPE scaling is kept in an extra key only this engine reads."})
final class ConvertCommand implements Callable<Integer> {
    @Option(names = {"-m", "--model"}, required = true, paramLabel = "HF_DIR", description = "Hugging Face model directory (config.json, *.safetensors, tokenizer.model).")
    Path model;

    @Option(names = {"-o", "--out"}, required = true, paramLabel = "FILE", description = "GGUF file to write.")
    Path out;

    @Option(names = "--type", paramLabel = "TYPE", defaultValue = "f16",
            description = "Type of the 2-D weights: f32, f16, bf16, q8_0 or q4_0 (norms stay f32; rows that are not whole 32-value blocks become f16). Default: ${DEFAULT-VALUE}.")
    String type;

    @Option(names = {"-f", "--force"}, description = "Overwrite the output file if it exists.")
    boolean force;

    @Option(names = {"-q", "--quiet"}, description = "No progress on stderr.")
    boolean quiet;

    @Override
    public Integer call() throws Exception {
        GgmlType t = ModelOptions.weightType(type, "--type", true);
        if (!Files.isDirectory(model)) {
            throw new IllegalArgumentException(model + " is not a directory: convert reads a Hugging Face model directory");
        }
        if (!HfModelLoader.isModelDirectory(model)) {
            throw new IllegalArgumentException(model + " has no config.json: not a Hugging Face model directory");
        }
        if (Files.exists(out) && !force) {
            throw new IllegalArgumentException(out + " exists (use --force to overwrite it)");
        }
        if (Files.isDirectory(out)) {
            throw new IllegalArgumentException(out + " is a directory; give the GGUF file to write");
        }
        long t0 = System.nanoTime();
        HfToGguf.Result r = HfToGguf.convert(model, out, t, new ProgressBar(System.err, quiet));
        if (!quiet) {
            for (String n : r.notes()) {
                System.err.println("note: " + n);
            }
        }
        System.out.printf("wrote %s: %d tensors, %s, weights %s (%.1f s)%n", r.out(), r.tensors(), InfoCommand.size(r.bytes()),
                t.name(), (System.nanoTime() - t0) / 1e9);
        return 0;
    }
}
