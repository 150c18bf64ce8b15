package internlm.engine.testing;

import internlm.engine.model.Backend;
import internlm.engine.model.Batch;

/** A backend that hands every call to another one: tests extend it to watch or change a few of them. */
public abstract class ForwardingBackend implements Backend {
    protected final Backend inner;

    protected ForwardingBackend(Backend inner) {
        this.inner = inner;
    }

    @Override
    public String name() {
        return inner.name();
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
    public int maxSequences() {
        return inner.maxSequences();
    }

    @Override
    public boolean samplesOnDevice() {
        return inner.samplesOnDevice();
    }

    @Override
    public String report() {
        return inner.report();
    }

    @Override
    public void forward(Batch batch) {
        inner.forward(batch);
    }

    @Override
    public void close() {
        inner.close();
    }
}
