package internlm.engine.tornado;

import uk.ac.manchester.tornado.api.TornadoExecutionPlan;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;

/**
 * CUDA graphs through TornadoVM: its 5.2 runtime captures the launches, persists and per-execution copies of each
 * graph once and replays them ({@code TornadoExecutionPlan.withCUDAGraph()}); the 1.1.2-dev API this project compiles
 * against does not have the method, so it is looked up by reflection. Used on the PTX backend only (TornadoVM refuses
 * capture on other devices) unless {@code -Dinternlm.tornado.cudaGraphs=false} (CLI: {@code --no-cuda-graphs}). A
 * captured graph replays its launches with the grids it was captured with, so the graph builder then keeps every grid
 * at its largest size (kernels skip the work-groups a batch does not need), and TornadoVM's profiler then has no
 * device kernel times.
 */
final class CudaGraphs {
    private CudaGraphs() {}

    static final String PROPERTY = "internlm.tornado.cudaGraphs";

    /** The runtime's withCUDAGraph() when CUDA graphs are to be used on this device, else null. */
    static Method wanted(DeviceTuning.Facts f) {
        if (!f.backend().equalsIgnoreCase("PTX") || "false".equalsIgnoreCase(System.getProperty(PROPERTY, "true"))) {
            return null;
        }
        return method();
    }

    /** TornadoExecutionPlan.withCUDAGraph() if this runtime has it. */
    static Method method() {
        try {
            return TornadoExecutionPlan.class.getMethod("withCUDAGraph");
        } catch (NoSuchMethodException e) {
            return null;
        }
    }

    static void enable(TornadoExecutionPlan plan, Method withCudaGraph) {
        try {
            withCudaGraph.invoke(plan);
        } catch (IllegalAccessException e) {
            throw new IllegalStateException("TornadoVM's withCUDAGraph() is not accessible: " + e.getMessage(), e);
        } catch (InvocationTargetException e) {
            Throwable cause = e.getCause();
            throw new IllegalStateException("TornadoVM could not enable CUDA graphs (" + cause + "); run with -D" + PROPERTY + "=false", cause);
        }
    }
}
