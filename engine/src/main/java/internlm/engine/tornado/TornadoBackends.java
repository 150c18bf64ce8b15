package internlm.engine.tornado;

import internlm.engine.model.Backend;
import internlm.loader.LoadedModel;
import internlm.loader.Progress;

/**
 * Creates the TornadoVM backend. Callers check {@link TornadoSupport#available()} first; this class is the only
 * place outside the backend that names it, so that the TornadoVM API classes load only when it is used.
 */
public final class TornadoBackends {
    private TornadoBackends() {}

    public static Backend create(LoadedModel model, TornadoBackend.Settings settings, Progress progress) {
        return new TornadoBackend(model, settings, progress);
    }
}
