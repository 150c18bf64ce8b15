package internlm.engine.generate;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class StopStringsTest {
    @Test
    void stopStringSpanningPiecesIsCutAndHeldTextReleased() {
        StopStrings s = new StopStrings(List.of("</answer>", "STOP"));
        StringBuilder out = new StringBuilder();
        for (String piece : new String[] {"The result is 4", " </ans", "wer> and more"}) {
            out.append(s.push(piece));
        }
        assertTrue(s.stopped());
        assertEquals("The result is 4 ", out.toString());
    }

    @Test
    void partialMatchesAreHeldBackThenReleased() {
        StopStrings s = new StopStrings(List.of("STOP"));
        assertEquals("go ", s.push("go ST"));
        assertEquals("STand", s.push("and"));
        assertEquals("", s.push("S"));
        assertEquals("S", s.flush());
        assertFalse(s.stopped());
    }

    @Test
    void noStopsPassEverything() {
        StopStrings s = new StopStrings(List.of());
        assertEquals("abc", s.push("abc"));
    }
}
