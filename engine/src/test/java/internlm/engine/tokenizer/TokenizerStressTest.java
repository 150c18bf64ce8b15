package internlm.engine.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import internlm.engine.Fixtures;
import internlm.loader.LoadedModel;
import internlm.loader.Progress;
import internlm.loader.gguf.GgufModelLoader;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/** Harder texts, tokenized by llama.cpp (testdata/tokenizer-stress): ids and detokenization must be identical. */
class TokenizerStressTest {
    @ParameterizedTest
    @ValueSource(strings = {"internlm2-tiny-f32", "internlm3-tiny-f32"})
    void identicalToLlamaCpp(String name) throws Exception {
        ObjectMapper om = new ObjectMapper();
        Path expected = Fixtures.testdata().resolve("tokenizer-stress").resolve(name + ".expected.json");
        try (LoadedModel m = GgufModelLoader.load(Fixtures.fixture(name + ".gguf"), Progress.NONE)) {
            Tokenizer t = new Tokenizer(m.vocab());
            int texts = 0;
            for (JsonNode x : om.readTree(expected.toFile()).get("tokenize")) {
                String text = x.get("text").asText();
                String what = " for " + om.writeValueAsString(text);
                assertArrayEquals(om.convertValue(x.get("no_special"), int[].class), t.encode(text, false, false), "no_special" + what);
                assertArrayEquals(om.convertValue(x.get("special"), int[].class), t.encode(text, false, true), "special" + what);
                assertArrayEquals(om.convertValue(x.get("with_bos"), int[].class), t.encode(text, true, true), "with_bos" + what);
                int[] sp = om.convertValue(x.get("special"), int[].class);
                assertEquals(x.get("detok").asText(), t.decode(sp, false), "detok" + what);
                assertEquals(x.get("detok_special").asText(), t.decode(sp, true), "detok_special" + what);
                texts++;
            }
            assertEquals(12, texts);
        }
    }
}
