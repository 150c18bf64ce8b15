package internlm.engine.tokenizer;

import internlm.engine.Fixtures;
import internlm.loader.LoadedModel;
import internlm.loader.Progress;
import internlm.loader.gguf.GgufModelLoader;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.*;

/** Tokenizer behaviour beyond the fixtures' three texts. */
class TokenizerTest {
    static LoadedModel m2, m3;
    static Tokenizer t2, t3;

    @BeforeAll
    static void load() {
        m2 = GgufModelLoader.load(Fixtures.fixture("internlm2-tiny-f32.gguf"), Progress.NONE);
        m3 = GgufModelLoader.load(Fixtures.fixture("internlm3-tiny-f32.gguf"), Progress.NONE);
        t2 = new Tokenizer(m2.vocab());
        t3 = new Tokenizer(m3.vocab());
    }

    @AfterAll
    static void close() {
        m2.close();
        m3.close();
    }

    @Test
    void controlTokensAreParsedOnlyWhenAsked() {
        int imEnd = t2.tokenId("<|im_end|>");
        assertTrue(imEnd > 0);
        assertArrayEquals(new int[] {imEnd}, t2.encode("<|im_end|>", false, true));
        int[] plain = t2.encode("<|im_end|>", false, false);
        assertTrue(plain.length > 1, "as text it is split into pieces");
        assertEquals("<|im_end|>", t2.decode(plain, false));
    }

    @Test
    void spacesSurviveARoundTrip() {
        // InternLM's own regression check: outputs must never lose spaces ("Mynameis")
        for (Tokenizer t : new Tokenizer[] {t2, t3}) {
            for (String s : new String[] {"My name is InternLM", "  two  spaces  ", "a\nb\tc", "Iama"}) {
                assertEquals(s, t.decode(t.encode(s, false, false), false), s);
            }
        }
    }

    @Test
    void bytesSplitAcrossTokensAreReassembledWhenStreaming() {
        String text = "你好 🐉 ümlaut";
        int[] ids = t2.encode(text, false, false);
        StreamDecoder d = t2.streamDecoder(false);
        StringBuilder sb = new StringBuilder();
        for (int id : ids) {
            String piece = d.accept(id);
            assertFalse(piece.contains("\uFFFD"), "no broken character may be emitted: " + piece);
            sb.append(piece);
        }
        sb.append(d.flush());
        assertEquals(text, sb.toString());
    }

    @Test
    void incompleteUtf8AtTheEndBecomesAReplacementCharacter() {
        int byteF0 = t2.tokenId("<0xF0>");
        StreamDecoder d = t2.streamDecoder(false);
        assertEquals("", d.accept(byteF0));
        assertEquals("\uFFFD", d.flush());
        assertEquals(4, StreamDecoder.completePrefix("abc\u00e9".getBytes(StandardCharsets.UTF_8)) - 1);
    }

    @Test
    void spacePrefixIsAddedAfterSpecialTokensWhenTheModelAsks() {
        // InternLM3-style vocab (add_space_prefix = true): llama.cpp puts ▁ before text following a special token
        int[] ids = t3.encode("<|im_start|>user", false, true);
        assertEquals(t3.tokenId("<|im_start|>"), ids[0]);
        assertTrue(t3.piece(ids[1]).startsWith("\u2581"), "got " + t3.piece(ids[1]));
        int[] ids2 = t2.encode("<|im_start|>user", false, true);
        assertFalse(t2.piece(ids2[1]).startsWith("\u2581"));
    }

    @Test
    void bosIsAddedOnlyWhenAskedAndTheModelWantsIt() {
        assertEquals(1, t2.encode("hi", true, true)[0]);
        assertNotEquals(1, t2.encode("hi", false, true)[0]);
        assertEquals(0, t2.encode("", false, true).length);
        assertArrayEquals(new int[] {1}, t2.encode("", true, true));
    }
}
