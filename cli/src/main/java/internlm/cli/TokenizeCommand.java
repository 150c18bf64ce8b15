package internlm.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import internlm.engine.tokenizer.Tokenizer;
import internlm.engine.Engine;
import internlm.loader.LoadedModel;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "tokenize", mixinStandardHelpOptions = true,
        description = "Show the token ids and pieces of a text, and the text they decode back to.")
final class TokenizeCommand implements Callable<Integer> {
    @Mixin
    ModelOptions model;

    @Option(names = "--text", required = true, paramLabel = "TEXT", description = "Text to tokenize.")
    String text;

    @Option(names = "--no-special", description = "Treat control tokens written in the text (e.g. <|im_start|>) as plain text.")
    boolean noSpecial;

    @Option(names = "--bos", description = "Add BOS (and EOS) as the model's metadata asks.")
    boolean bos;

    @Option(names = "--json", description = "Print one JSON object.")
    boolean json;

    @Override
    public Integer call() throws Exception {
        // tokenizing needs only the vocabulary: no backend is prepared
        try (LoadedModel m = Engine.loadModel(model.model != null ? model.model : ModelOptions.embedded(), internlm.loader.Progress.NONE)) {
            Tokenizer tok = new Tokenizer(m.vocab());
            int[] ids = tok.encode(text, bos, !noSpecial);
            String roundTrip = tok.decode(ids, true);
            if (json) {
                Map<String, Object> o = new LinkedHashMap<>();
                o.put("ids", ids);
                List<String> pieces = new ArrayList<>();
                for (int id : ids) {
                    pieces.add(tok.piece(id));
                }
                o.put("pieces", pieces);
                o.put("count", ids.length);
                o.put("detokenized", roundTrip);
                o.put("detokenized_plain", tok.decode(ids, false));
                System.out.println(new ObjectMapper().writeValueAsString(o));
            } else {
                for (int id : ids) {
                    System.out.printf("%8d  %s%n", id, visible(tok.piece(id)));
                }
                System.out.println(ids.length + " tokens");
                System.out.println("decoded: " + roundTrip);
                System.out.println("round trip " + (roundTrip.equals(text) ? "identical" : "differs from the input"));
            }
        }
        return 0;
    }

    private static String visible(String piece) {
        return piece.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r");
    }
}
