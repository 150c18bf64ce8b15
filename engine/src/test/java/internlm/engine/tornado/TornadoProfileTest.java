package internlm.engine.tornado;

import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** The --profile arithmetic: host time, graphs and launches per pass, layer prefixes folded, GB/s from known bytes. */
class TornadoProfileTest {
    private static final String LOG = """
            {"forward": {"forward.l0_qkv": {"TASK_KERNEL_TIME": 2000000}, "forward.l1_qkv": {"TASK_KERNEL_TIME": 2000000},
                         "forward.l0_attention": {"TASK_KERNEL_TIME": 1000000}, "TOTAL_KERNEL_TIME": 5000000}}
            """;
    /** A log with two executions of the logits graph: the last one counts. */
    private static final String BOTH = "{\"logits\": {\"logits.lm_head\": {\"TASK_KERNEL_TIME\": 7000000}}}\n"
            + "{\"logits\": {\"logits.lm_head\": {\"TASK_KERNEL_TIME\": 1000000}}}";

    /** TornadoVM's log has every graph of the plan; the total it reports (9 ms here) counts them all: both ignored. */
    @Test
    void summarisesOneRowPasses() {
        TornadoProfile p = new TornadoProfile(Map.of("qkv", 8_000_000L), 1000);
        for (int i = 0; i < 2; i++) {
            p.begin(1, 100);
            p.record("forward", 3, 9_000_000, 500_000, LOG);
            p.record("logits", 1, 9_000_000, 0, BOTH);
            p.end(10_000_000);
        }
        String s = p.summary();
        // per row: wall 10 ms = kernels 6 + transfers 0.5 + host 3.5; 2 graphs and 4 launches per pass
        assertTrue(s.contains("wall 10.000 ms = kernels 6.000 ms + transfers 0.500 ms + host 3.500 ms; 2.0 graphs and 4.0 kernel launches per pass"), s);
        // qkv of both layers under one name: 4 ms per row, 8 MB per pass → 2.00 GB/s
        assertTrue(s.matches("(?s).*qkv +4\\.000 ms .* 2\\.00 GB/s.*"), s);
        // attention: 100 positions × 1000 bytes per pass in 1 ms → 0.10 GB/s
        assertTrue(s.matches("(?s).*attention +1\\.000 ms .* 0\\.10 GB/s.*"), s);
        // lm_head: bytes unknown, no GB/s
        assertTrue(s.matches("(?s).*lm_head +1\\.000 ms +[0-9.]+ %\\n.*"), s);
    }

    @Test
    void keepsSeveralRowPassesApart() {
        TornadoProfile p = new TornadoProfile(Map.of(), 0);
        p.begin(4, 10);
        p.record("forward", 5, 4_000_000, 0, "not json");
        p.end(8_000_000);
        String s = p.summary();
        assertTrue(s.contains("passes of several rows: 1 passes, 4 rows"), s);
        assertTrue(s.contains("wall 2.000 ms = kernels 1.000 ms"), s);
        assertFalse(s.contains("1-row passes"), s);
        p.clear();
        assertEquals("", p.summary());
    }

    /** An earlier execution's object that does not parse (seen with 24-layer models on PoCL) must not hide the last one. */
    @Test
    void readsTheLastExecutionPastABadEarlierObject() throws Exception {
        String log = "{\"logits\": {\"logits.lm_head\": {\"TASK_KERNEL_TIME\": 7000000}, \"X\": [1, }}\n" + BOTH;
        assertEquals(1_000_000, TornadoProfile.lastExecution("logits", log).get("logits.lm_head").get("TASK_KERNEL_TIME").asLong());
        assertNull(TornadoProfile.lastExecution("forward", BOTH));
        TornadoProfile p = new TornadoProfile(Map.of(), 0);
        p.begin(1, 1);
        p.record("logits", 1, 9_000_000, 0, log);
        p.end(2_000_000);
        String s = p.summary();
        assertTrue(s.contains("kernels 1.000 ms"), s);
        assertTrue(s.contains("lm_head"), s);
    }
}
