package internlm.engine.cpu;

import org.junit.jupiter.api.Test;

import java.util.concurrent.atomic.AtomicIntegerArray;

import static org.junit.jupiter.api.Assertions.*;

class ParallelTest {
    @Test
    void everyItemRunsExactlyOnceAcrossManyRegions() {
        try (Parallel p = new Parallel(3)) {
            for (int round = 0; round < 2000; round++) {
                int n = 1 + round % 97;
                AtomicIntegerArray hits = new AtomicIntegerArray(n);
                p.forRange(n, 1 + round % 5, (from, to) -> {
                    for (int i = from; i < to; i++) {
                        hits.incrementAndGet(i);
                    }
                });
                for (int i = 0; i < n; i++) {
                    assertEquals(1, hits.get(i), "round " + round + " item " + i);
                }
            }
        }
    }

    @Test
    void failuresReachTheCaller() {
        try (Parallel p = new Parallel(2)) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> p.forRange(10, 1, (f, t) -> {
                if (f == 7) {
                    throw new IllegalStateException("boom");
                }
            }));
            assertEquals("boom", e.getMessage());
            p.forRange(4, (f, t) -> { }); // still usable
        }
    }
}
