package internlm.engine;

import internlm.engine.model.Backend;
import internlm.engine.model.Batch;
import internlm.engine.testing.ForwardingBackend;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * For tests of sampling where the logits are (as the TornadoVM backend does): the CPU backend offering to sample
 * ({@link #samplesOnDevice()}; it samples SAMPLE rows from its own logits), counting the output rows it is asked for.
 */
public final class SamplingBackend extends ForwardingBackend {
    /** SAMPLE rows (only the id comes back) and LOGITS rows (the logits come back) seen so far. */
    public final AtomicInteger sampleRows = new AtomicInteger(), logitRows = new AtomicInteger();

    public SamplingBackend(Backend inner) {
        super(inner);
    }

    @Override
    public boolean samplesOnDevice() {
        return true;
    }

    @Override
    public void forward(Batch batch) {
        for (int i = 0; i < batch.size(); i++) {
            if (batch.output(i) == Batch.Output.SAMPLE) {
                sampleRows.incrementAndGet();
            } else if (batch.output(i) == Batch.Output.LOGITS) {
                logitRows.incrementAndGet();
            }
        }
        inner.forward(batch);
    }

    @Override
    public String name() {
        return "sampling";
    }
}
