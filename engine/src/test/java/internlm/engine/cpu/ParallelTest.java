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
    void ownedRunsCoverEveryItemOnceAndStealWhenAThreadIsSlow() {
        try (Parallel p = new Parallel(3)) {
            for (int round = 0; round < 2000; round++) {
                int n = 1 + round % 131;
                AtomicIntegerArray hits = new AtomicIntegerArray(n);
                p.forRangeOwned(n, 1 + round % 7, (from, to) -> {
                    for (int i = from; i < to; i++) {
                        hits.incrementAndGet(i);
                    }
                });
                for (int i = 0; i < n; i++) {
                    assertEquals(1, hits.get(i), "round " + round + " item " + i);
                }
            }
            // the caller's run [0, 10) is slow: the workers, done with theirs, must take most of it from the back
            java.util.Set<String> byOthers = java.util.concurrent.ConcurrentHashMap.newKeySet();
            AtomicIntegerArray hits = new AtomicIntegerArray(30);
            Thread caller = Thread.currentThread();
            p.forRangeOwned(30, 1, (from, to) -> {
                if (Thread.currentThread() == caller) {
                    try {
                        Thread.sleep(from < 10 ? 30 : 0);
                    } catch (InterruptedException e) {
                        throw new IllegalStateException(e);
                    }
                } else if (from < 10) {
                    byOthers.add("item " + from);
                }
                hits.incrementAndGet(from);
            });
            for (int i = 0; i < 30; i++) {
                assertEquals(1, hits.get(i), "item " + i);
            }
            assertTrue(byOthers.size() >= 3, "stolen from the slow run: " + byOthers);
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
