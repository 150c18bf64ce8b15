package internlm.engine.bench;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class StatsTest {
    @Test
    void evenCount() {
        Stats s = Stats.of(new double[] {4, 1, 3, 2});
        assertEquals(4, s.n());
        assertEquals(2.5, s.mean(), 1e-12);
        assertEquals(2.5, s.median(), 1e-12);
        assertEquals(1.2909944487358056, s.stddev(), 1e-12); // sample standard deviation (n - 1)
        assertEquals(1, s.min());
        assertEquals(4, s.max());
    }

    @Test
    void oddCountAndOutlier() {
        Stats s = Stats.of(new double[] {17, 10, 12});
        assertEquals(13, s.mean(), 1e-12);
        assertEquals(12, s.median(), 1e-12);
        assertEquals(3.605551275463989, s.stddev(), 1e-12);
    }

    @Test
    void oneSampleHasNoSpread() {
        Stats s = Stats.of(new double[] {5});
        assertEquals(0, s.stddev());
        assertEquals(5, s.median());
        assertThrows(IllegalArgumentException.class, () -> Stats.of(new double[0]));
    }
}
