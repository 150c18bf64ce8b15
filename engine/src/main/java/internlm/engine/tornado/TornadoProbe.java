package internlm.engine.tornado;

import internlm.kernels.ProbeKernels;
import internlm.loader.LoadedModel;
import uk.ac.manchester.tornado.api.GridScheduler;
import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.TaskGraph;
import uk.ac.manchester.tornado.api.TornadoExecutionPlan;
import uk.ac.manchester.tornado.api.TornadoExecutionResult;
import uk.ac.manchester.tornado.api.WorkerGrid1D;
import uk.ac.manchester.tornado.api.common.TornadoDevice;
import uk.ac.manchester.tornado.api.enums.DataTransferMode;
import uk.ac.manchester.tornado.api.enums.ProfilerMode;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;

import java.lang.reflect.Method;
import java.util.ArrayList;
import java.util.List;

/**
 * What the benchmark asks TornadoVM about a device: its description (backend, name, platform/driver, versions, as
 * far as TornadoVM exposes them), the device memory a model needs, and the device's memory bandwidth measured with a
 * streaming-read kernel. Only call when {@link TornadoSupport#available()}.
 */
public final class TornadoProbe {
    private TornadoProbe() {}

    /** A device: "B:D", backend (OpenCL, PTX, SPIR-V), name, driver/platform, version, global memory in bytes. */
    public record Device(String id, String backend, String name, String driver, String version, long memory) {}

    public static List<Device> devices() {
        List<Device> out = new ArrayList<>();
        for (TornadoSupport.DeviceInfo d : TornadoSupport.devices()) {
            out.add(device(d.id()));
        }
        return out;
    }

    public static Device device(String id) {
        int[] bd = TornadoSupport.parseDevice(id);
        TornadoDevice dev = TornadoExecutionPlan.getDevice(bd[0], bd[1]);
        String backend = switch (String.valueOf(dev.getTornadoVMBackend()).toUpperCase()) {
            case "OPENCL" -> "OpenCL";
            case "PTX" -> "PTX";
            case "SPIRV" -> "SPIR-V";
            default -> String.valueOf(dev.getTornadoVMBackend());
        };
        Object phys = dev.getPhysicalDevice();
        String driver = firstString(phys, "getDriverVersion", "getDeviceDriverVersion");
        String platform = safe(dev::getPlatformName);
        String version = firstString(phys, "getDeviceVersion", "getVersion");
        if (version.isEmpty()) {
            version = safe(dev::getDeviceOpenCLCVersion);
        }
        return new Device(id, backend, safe(() -> dev.getPhysicalDevice().getDeviceName()),
                (platform + (driver.isEmpty() ? "" : " " + driver)).trim(), version, dev.getMaxGlobalMemory());
    }

    private static String safe(java.util.function.Supplier<String> s) {
        try {
            String v = s.get();
            return v == null ? "" : v.trim();
        } catch (RuntimeException | LinkageError e) {
            return "";
        }
    }

    /** The first of the named no-argument methods the runtime's device object has (newer runtimes have more). */
    private static String firstString(Object o, String... names) {
        for (String n : names) {
            try {
                Method m = o.getClass().getMethod(n);
                m.setAccessible(true);
                Object v = m.invoke(o);
                if (v != null && !v.toString().isBlank()) {
                    return v.toString().trim();
                }
            } catch (ReflectiveOperationException | RuntimeException e) {
                // not there on this runtime
            }
        }
        return "";
    }

    /** The TornadoVM runtime's version, from the name of the jar its API classes came from (e.g. 5.2.0-jdk25). */
    public static String version() {
        try {
            var src = TornadoExecutionPlan.class.getProtectionDomain().getCodeSource();
            String f = src == null ? "" : java.nio.file.Path.of(src.getLocation().toURI()).getFileName().toString();
            var m = java.util.regex.Pattern.compile("tornado-api-(.+)\\.jar").matcher(f);
            if (m.matches()) {
                return m.group(1);
            }
            var d = TornadoExecutionPlan.class.getModule().getDescriptor();
            if (d != null && d.rawVersion().isPresent()) {
                return d.rawVersion().get();
            }
        } catch (Exception e) {
            // fall through
        }
        return "unknown";
    }

    /** Device bytes the model needs on the TornadoVM backend with KV caches of {@code context} tokens for {@code sequences} sequences. */
    public static long deviceBytes(LoadedModel m, int context, int sequences, boolean kvCacheF16) {
        return TornadoBackend.deviceBytes(m, new TornadoBackend.Settings(context, sequences, null, kvCacheF16, true, false));
    }

    /** A bandwidth measurement: best GB/s over the reps and how it was timed. */
    public record Bandwidth(double gbPerSecond, String method) {}

    /**
     * Streams {@code bytes} of floats through {@link ProbeKernels#probeStreamRead} (coalesced) and
     * {@link ProbeKernels#probeBlockedRead} (a chunk per work-item) on the device, {@code reps} times each after a
     * warm-up, and returns the best rate (kernel time from TornadoVM's profiler when it reports one, else the
     * wall time of execute()). The sum of the partials is checked against the host's on every run.
     */
    public static Bandwidth bandwidth(String id, long bytes, int reps) {
        int n = (int) Math.min(Integer.MAX_VALUE - 64, bytes / 4);
        FloatArray a = new FloatArray(n);
        long expect = 0;
        for (int i = 0; i < n; i++) {
            int v = (i % 7) - 3;
            a.set(i, v);
            expect += v;
        }
        // GPUs stream fastest with neighbouring work-items on neighbouring words, CPU devices with one chunk each
        Bandwidth strided = bandwidth(id, a, n, expect, reps, false, 2048, 256);
        Bandwidth blocked = bandwidth(id, a, n, expect, reps, true, 64, 64);
        return strided.gbPerSecond() >= blocked.gbPerSecond() ? strided : blocked;
    }

    private static Bandwidth bandwidth(String id, FloatArray a, int n, long expect, int reps, boolean blocked, int groups, int local) {
        int[] bd = TornadoSupport.parseDevice(id);
        TornadoDevice dev = TornadoExecutionPlan.getDevice(bd[0], bd[1]);
        FloatArray partial = new FloatArray(groups);
        KernelContext ctx = new KernelContext();
        TaskGraph g = new TaskGraph("probe").transferToDevice(DataTransferMode.FIRST_EXECUTION, a, partial);
        if (blocked) {
            g.task("read", ProbeKernels::probeBlockedRead, ctx, a, partial, n);
        } else {
            g.task("read", ProbeKernels::probeStreamRead, ctx, a, partial, n);
        }
        g.transferToHost(DataTransferMode.UNDER_DEMAND, partial);
        GridScheduler grid = new GridScheduler();
        WorkerGrid1D w = new WorkerGrid1D(groups * local);
        w.setLocalWork(local, 1, 1);
        grid.addWorkerGrid("probe.read", w);
        TornadoExecutionPlan plan = new TornadoExecutionPlan(g.snapshot());
        try {
            plan.withDevice(dev).withGridScheduler(grid).withProfiler(ProfilerMode.SILENT);
            double best = Double.MAX_VALUE;
            boolean kernelTimes = true;
            for (int r = 0; r <= reps; r++) {
                long t0 = System.nanoTime();
                TornadoExecutionResult res = plan.execute();
                long wall = System.nanoTime() - t0;
                res.transferToHost(partial);
                double sum = 0;
                for (int i = 0; i < groups; i++) {
                    sum += partial.get(i);
                }
                if (sum != expect) {
                    throw new IllegalStateException("the bandwidth probe on " + id + " summed " + sum + ", expected " + expect + ": the device computes wrongly");
                }
                if (r == 0) {
                    continue; // warm-up: compilation and the copy to the device
                }
                long kernel;
                try {
                    kernel = res.getProfilerResult().getDeviceKernelTime();
                } catch (RuntimeException e) {
                    kernel = 0;
                }
                kernelTimes &= kernel > 0;
                best = Math.min(best, kernel > 0 ? kernel : wall);
            }
            return new Bandwidth(4.0 * n / best, "TornadoVM " + (blocked ? "blocked" : "coalesced") + " streaming-read kernel, " + (n * 4L >> 20)
                    + " MiB, best of " + reps + (kernelTimes ? " (device kernel time)" : " (wall time of execute)"));
        } finally {
            try {
                plan.freeDeviceMemory();
                plan.close();
            } catch (Exception e) {
                // freed with the process anyway
            }
        }
    }
}
