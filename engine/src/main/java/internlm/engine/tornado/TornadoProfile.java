package internlm.engine.tornado;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import uk.ac.manchester.tornado.api.TornadoExecutionResult;

import java.util.LinkedHashMap;
import java.util.Map;

/** Device times per graph group and per kernel, from TornadoVM's profiler, summed over the batches run. */
final class TornadoProfile {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final Map<String, long[]> groups = new LinkedHashMap<>();
    private final Map<String, long[]> tasks = new LinkedHashMap<>();
    private long rows, batches;

    void clear() {
        groups.clear();
        tasks.clear();
        rows = 0;
        batches = 0;
    }

    void batch(int n) {
        rows += n;
        batches++;
    }

    void record(String group, TornadoExecutionResult r) {
        long[] acc = groups.computeIfAbsent(group, x -> new long[3]);
        var pr = r.getProfilerResult();
        acc[0] += pr.getDeviceKernelTime();
        acc[1] += pr.getDataTransfersTime();
        acc[2] += pr.getTotalTime();
        // per-kernel times from the profiler's JSON log: {graph: {"graph.task": {"TASK_KERNEL_TIME": ns, ...}}}
        try {
            for (JsonNode g : JSON.readTree(pr.getProfileLog())) {
                for (var it = g.properties().iterator(); it.hasNext(); ) {
                    var e = it.next();
                    if (e.getValue().isObject() && e.getValue().has("TASK_KERNEL_TIME")) {
                        String task = e.getKey().substring(e.getKey().indexOf('.') + 1);
                        long[] t = tasks.computeIfAbsent(task, x -> new long[2]);
                        t[0] += e.getValue().get("TASK_KERNEL_TIME").asLong();
                        t[1]++;
                    }
                }
            }
        } catch (Exception e) {
            // a profile log we cannot read only loses the per-kernel table
        }
    }

    String summary() {
        if (rows == 0) {
            return "";
        }
        StringBuilder sb = new StringBuilder(String.format("TornadoVM profile over %d rows in %d batches (per row):%n", rows, batches));
        for (Map.Entry<String, long[]> e : groups.entrySet()) {
            long[] a = e.getValue();
            sb.append(String.format("  %-7s kernels %8.3f ms, transfers %8.3f ms, total %8.3f ms%n", e.getKey(),
                    a[0] / 1e6 / rows, a[1] / 1e6 / rows, a[2] / 1e6 / rows));
        }
        long all = tasks.values().stream().mapToLong(a -> a[0]).sum();
        if (all > 0) {
            sb.append("  kernels (all layers together, per row):\n");
            tasks.entrySet().stream().sorted((x, y) -> Long.compare(y.getValue()[0], x.getValue()[0])).forEach(e ->
                    sb.append(String.format("    %-15s %8.3f ms  %5.1f %%%n", e.getKey(), e.getValue()[0] / 1e6 / rows, 100.0 * e.getValue()[0] / all)));
        }
        return sb.toString();
    }
}
