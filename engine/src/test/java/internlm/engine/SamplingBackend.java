package internlm.engine;

import internlm.engine.model.Backend;
import internlm.engine.model.Batch;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * For tests of sampling where the logits are (as the TornadoVM backend does): the CPU backend offering to sample
 * ({@link #samplesOnDevice()}; it samples SAMPLE rows from its own logits), counting the output rows it is asked for.
 */
public final class SamplingBackend implements Backend {
    private final Backend inner;
    /** SAMPLE rows (only the id comes back) and LOGITS rows (the logits come back) seen so far. */
    public final AtomicInteger sampleRows = new AtomicInteger(), logitRows = new AtomicInteger();

    public SamplingBackend(Backend inner) {
        this.inner = inner;
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

    @Override
    public String description() {
        return inner.description();
    }

    @Override
    public int vocabularySize() {
        return inner.vocabularySize();
    }

    @Override
    public int hiddenSize() {
        return inner.hiddenSize();
    }

    @Override
    public Sequence openSequence(int capacity) {
        return inner.openSequence(capacity);
    }

    @Override
    public void close() {
        inner.close();
    }
}
