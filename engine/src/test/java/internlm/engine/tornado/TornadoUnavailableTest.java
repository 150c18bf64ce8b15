package internlm.engine.tornado;

import internlm.engine.Engine;
import internlm.engine.Fixtures;
import internlm.loader.Progress;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

/** Without TornadoVM the tornado backend refuses with a clear message and "auto" falls back to the CPU. */
class TornadoUnavailableTest {
    @Test
    void refusesCleanlyWithoutTornadoVm() {
        assumeFalse(TornadoSupport.available());
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> Engine.load(Fixtures.fixture("internlm2-tiny-q8_0.gguf"), new Engine.Options("tornado", 1, null, true), Progress.NONE));
        assertTrue(e.getMessage().contains("TornadoVM is not installed"), e.getMessage());
        assertTrue(e.getMessage().contains("--backend cpu"), e.getMessage());
        try (Engine auto = Engine.load(Fixtures.fixture("internlm2-tiny-q8_0.gguf"), new Engine.Options("auto", 1, null, true), Progress.NONE)) {
            assertEquals("cpu", auto.backend().name());
        }
        assertThrows(IllegalArgumentException.class, () -> TornadoSupport.parseDevice("zero:one"));
        assertArrayEquals(new int[] {1, 0}, TornadoSupport.parseDevice("1:0"));
    }
}
