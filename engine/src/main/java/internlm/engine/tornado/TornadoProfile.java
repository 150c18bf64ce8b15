package internlm.engine.tornado;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import uk.ac.manchester.tornado.api.TornadoExecutionResult;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * What {@code --profile} reports: per pass kind (one-row passes — decoding one sequence — and passes of several
 * rows) the wall time, the device kernel and transfer times from TornadoVM's profiler, and what is left of the wall
 * time (the host: TornadoVM's interpreter, launches, waits, our own code); graphs executed and kernels launched per
 * pass; and per kernel (all layers together) its time and, where the graph builder knows the bytes it must read, its
 * bandwidth in GB/s. Task names {@code l<layer>_<kernel>} are counted under {@code <kernel>}.
 */
final class TornadoProfile {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final boolean DEBUG = Boolean.getBoolean("internlm.tornado.profileDebug");
    private static final Pattern LAYER_PREFIX = Pattern.compile("^l\\d+_");

    /** Sums for one kind of pass. */
    private static final class Kind {
        long passes, rows, wall, kernel, transfer, graphs, launches, kvPositions;
        final Map<String, long[]> tasks = new LinkedHashMap<>();
    }

    private final Map<String, Kind> kinds = new LinkedHashMap<>();
    /** Per kernel name: the bytes one one-row pass must read (weights, norms, scales), all layers together. */
    private final Map<String, Long> bytes;
    /** Bytes the attention kernels read per cached position, all layers together (keys and values). */
    private final long kvBytesPerPosition;
    private Kind current;

    TornadoProfile(Map<String, Long> bytes, long kvBytesPerPosition) {
        this.bytes = bytes;
        this.kvBytesPerPosition = kvBytesPerPosition;
    }

    void clear() {
        kinds.clear();
        current = null;
    }

    private static String kindOf(int rows) {
        return rows == 1 ? "1-row passes (decode)" : "passes of several rows";
    }

    /** Starts a pass of {@code rows} rows that attend over {@code kvPositions} cached positions in all. */
    void begin(int rows, long kvPositions) {
        current = kinds.computeIfAbsent(kindOf(rows), k -> new Kind());
        current.passes++;
        current.rows += rows;
        current.kvPositions += kvPositions;
    }

    /** Ends the pass begun last; {@code wallNanos} is its time from the first execute() to the last one's return. */
    void end(long wallNanos) {
        current.wall += wallNanos;
    }

    /** The graph {@code graph} of {@code launches} tasks just executed: its result's profile. */
    void record(String graph, int launches, TornadoExecutionResult r) {
        var pr = r.getProfilerResult();
        record(graph, launches, pr.getDeviceKernelTime(), pr.getDataTransfersTime(), pr.getProfileLog());
    }

    /**
     * One executed graph: TornadoVM's kernel and transfer times and its JSON profile log ({graph: {"graph.task":
     * {"TASK_KERNEL_TIME": ns, …}}}, one object per execution of a graph, appended until the plan's profiles are
     * cleared): the last object for {@code graph} is counted, and the kernel time is the sum of its tasks' times
     * (TornadoVM's total, {@code kernelNanos}, when the log cannot be read). (The profile before this change read the
     * first object, i.e. the per-kernel table showed the first execution's times.)
     */
    void record(String graph, int launches, long kernelNanos, long transferNanos, String log) {
        Kind k = current;
        k.graphs++;
        k.launches += launches;
        k.transfer += transferNanos;
        long sum = 0;
        boolean read = false;
        try {
            JsonNode g = lastExecution(graph, log);
            if (g != null) {
                read = true;
                for (var it = g.properties().iterator(); it.hasNext(); ) {
                    var e = it.next();
                    if (e.getValue().isObject() && e.getValue().has("TASK_KERNEL_TIME")) {
                        String task = LAYER_PREFIX.matcher(e.getKey().substring(e.getKey().indexOf('.') + 1)).replaceFirst("");
                        long ns = e.getValue().get("TASK_KERNEL_TIME").asLong();
                        long[] t = k.tasks.computeIfAbsent(task, x -> new long[2]);
                        t[0] += ns;
                        t[1]++;
                        sum += ns;
                    }
                }
            }
        } catch (Exception e) {
            if (DEBUG) {
                System.err.println("profile: the log of " + graph + " could not be read: " + e);
            }
        }
        k.kernel += read ? sum : kernelNanos;
    }

    /**
     * The object of {@code graph} in the last execution TornadoVM appended to the profile log (the log is a series of
     * JSON objects, one per execution, never cleared by {@code clearProfiles()} on PoCL): only that object is parsed,
     * so an earlier object TornadoVM wrote badly cannot hide this one. Null when the log has none.
     */
    static JsonNode lastExecution(String graph, String log) throws java.io.IOException {
        int key = log.lastIndexOf("\"" + graph + "\"");
        if (key < 0) {
            return null;
        }
        int start = log.lastIndexOf('{', key);
        if (start < 0) {
            return null;
        }
        try (var objects = JSON.readerFor(JsonNode.class).<JsonNode>readValues(log.substring(start))) {
            return objects.hasNext() ? objects.next().get(graph) : null;
        }
    }

    String summary() {
        StringBuilder sb = new StringBuilder();
        for (Map.Entry<String, Kind> e : kinds.entrySet()) {
            Kind k = e.getValue();
            if (k.rows == 0) {
                continue;
            }
            double per = k.rows;
            sb.append(String.format("TornadoVM profile, %s: %d passes, %d rows; per row:%n", e.getKey(), k.passes, k.rows));
            sb.append(String.format("  wall %.3f ms = kernels %.3f ms + transfers %.3f ms + host %.3f ms; %.1f graphs and %.1f kernel launches per pass%n",
                    k.wall / 1e6 / per, k.kernel / 1e6 / per, k.transfer / 1e6 / per, (k.wall - k.kernel - k.transfer) / 1e6 / per,
                    (double) k.graphs / k.passes, (double) k.launches / k.passes));
            long all = k.tasks.values().stream().mapToLong(a -> a[0]).sum();
            if (all == 0) {
                continue;
            }
            boolean oneRow = k.rows == k.passes;
            sb.append("  kernels (all layers together, per row)").append(oneRow ? "; GB/s = bytes a pass must read / kernel time" : "").append(":\n");
            k.tasks.entrySet().stream().sorted((x, y) -> Long.compare(y.getValue()[0], x.getValue()[0])).forEach(t -> {
                long ns = t.getValue()[0];
                sb.append(String.format("    %-15s %8.3f ms  %5.1f %%", t.getKey(), ns / 1e6 / per, 100.0 * ns / all));
                long b = oneRow ? passBytes(t.getKey(), k) : 0;
                if (b > 0 && ns > 0) {
                    sb.append(String.format("  %8.2f GB/s", (double) b / ns));
                }
                sb.append('\n');
            });
        }
        return sb.toString();
    }

    /** Bytes all passes of this kind read in kernel {@code name} (0 when unknown). */
    private long passBytes(String name, Kind k) {
        long b = bytes.getOrDefault(name, 0L) * k.passes;
        if (name.startsWith("attention")) {
            b += kvBytesPerPosition * k.kvPositions;
        }
        return b;
    }
}
