package internlm.engine.tornado;

import java.util.ArrayList;
import java.util.List;

/**
 * Whether this JVM runs under TornadoVM, decided without touching TornadoVM's runtime classes (a failed static
 * initialisation of TornadoExecutionPlan would poison it for the life of the JVM): TornadoVM's launcher sets
 * {@code tornado.load.api.implementation} and friends, and the API classes must be loadable.
 */
public final class TornadoSupport {
    private TornadoSupport() {}

    /** Why the TornadoVM backend cannot run here, or null when it can. */
    public static String unavailableReason() {
        if (System.getProperty("tornado.load.api.implementation") == null || System.getProperty("tornado.load.runtime.implementation") == null) {
            return "TornadoVM is not installed or this JVM was not started through it. Install it with ./setup-tornado.sh "
                    + "(or set TORNADO_SDK to a TornadoVM SDK) and run ./internlm again, or use --backend cpu";
        }
        try {
            Class.forName("uk.ac.manchester.tornado.api.TornadoExecutionPlan", false, TornadoSupport.class.getClassLoader());
            Class.forName("uk.ac.manchester.tornado.api.KernelContext", false, TornadoSupport.class.getClassLoader());
        } catch (ClassNotFoundException | LinkageError e) {
            return "TornadoVM's system properties are set but its API classes cannot be loaded (" + e + "): check the TornadoVM SDK";
        }
        setDefault(BYTECODE_PROPERTY, Integer.toString(BYTECODE_BUFFER));
        return null;
    }

    /** TornadoVM's bytecode buffer per task graph: read once, when TornadoVM compiles its first graph. */
    private static final String BYTECODE_PROPERTY = "tornado.tvm.maxbytecodesize";
    /** Our default for it (TornadoVM's is 4096 bytes, about one layer): room for all layers of a model in one graph. */
    private static final int BYTECODE_BUFFER = 1 << 20;

    private static void setDefault(String key, String value) {
        if (System.getProperty(key) == null) {
            System.setProperty(key, value);
        }
    }

    /**
     * The bytecode buffer TornadoVM gives a task graph: the value its compiler read (it keeps the first value it sees),
     * else the property, else TornadoVM's default.
     */
    static int bytecodeBufferSize() {
        try {
            Class<?> b = Class.forName("uk.ac.manchester.tornado.runtime.graph.TornadoVMBytecodeBuilder");
            return b.getField("MAX_TORNADO_VM_BYTECODE_SIZE").getInt(null);
        } catch (ReflectiveOperationException | RuntimeException | LinkageError e) {
            return Integer.getInteger(BYTECODE_PROPERTY, 4096);
        }
    }

    public static boolean available() {
        return unavailableReason() == null;
    }

    /** One device as TornadoVM numbers it ("backend:device"). */
    public record DeviceInfo(int backend, int device, String backendName, String name, String type, long globalMemory, boolean isDefault) {
        public String id() {
            return backend + ":" + device;
        }
    }

    /** TornadoVM's backends and devices (requires {@link #available()}). */
    public static List<DeviceInfo> devices() {
        return Devices.list();
    }

    /** Parses "B:D". */
    public static int[] parseDevice(String spec) {
        if (spec == null || spec.isBlank()) {
            return null;
        }
        String[] p = spec.trim().split(":");
        try {
            if (p.length == 2) {
                int b = Integer.parseInt(p[0]), d = Integer.parseInt(p[1]);
                if (b >= 0 && d >= 0) {
                    return new int[] {b, d};
                }
            }
        } catch (NumberFormatException ignored) {
            // fall through
        }
        throw new IllegalArgumentException("--device must be BACKEND:DEVICE as TornadoVM numbers them (e.g. 0:0; see 'devices'), got '" + spec + "'");
    }

    /** Kept in a nested class so that the TornadoVM types load only when it runs. */
    private static final class Devices {
        static List<DeviceInfo> list() {
            var map = uk.ac.manchester.tornado.api.TornadoExecutionPlan.getTornadoDeviceMap();
            List<DeviceInfo> out = new ArrayList<>();
            var backends = map.getAllBackends();
            for (int b = 0; b < backends.size(); b++) {
                var backend = backends.get(b);
                for (int d = 0; d < backend.getNumDevices(); d++) {
                    var dev = backend.getDevice(d);
                    out.add(new DeviceInfo(b, d, backend.getName(), dev.getPhysicalDevice().getDeviceName(), String.valueOf(dev.getDeviceType()),
                            dev.getMaxGlobalMemory(), b == 0 && d == 0));
                }
            }
            return out;
        }
    }

    /**
     * Settings TornadoVM's runtime reads once, at its first use: the device memory it may allocate (its default,
     * 4 GB, is too small for 7B models), no silent fall-back to the JVM when a kernel fails to compile (the
     * KernelContext kernels would run wrong on the JVM, and slowly), and no explicit fma() in generated code. A
     * user's own -D settings win.
     */
    public static void prepareRuntime(long deviceBytes) {
        if (System.getProperty("tornado.device.memory") == null) {
            long mb = Math.max(1024, (deviceBytes + (512L << 20)) >> 20);
            System.setProperty("tornado.device.memory", mb + "MB");
        }
        if (System.getProperty("tornado.recover.bailout") == null) {
            System.setProperty("tornado.recover.bailout", "False");
        }
        // a*b + c as written, not as explicit fma() calls: OpenCL compilers contract it themselves under TornadoVM's
        // -cl-mad-enable (and ptxas fuses PTX mul/add), but LLVM's loop vectoriser does not recognise sums of fma()
        // calls as reductions, so on PoCL the item-tiled products ran scalar (2.8 instead of 20+ GMAC/s)
        if (System.getProperty("tornado.enable.fma") == null) {
            System.setProperty("tornado.enable.fma", "False");
        }
    }
}
