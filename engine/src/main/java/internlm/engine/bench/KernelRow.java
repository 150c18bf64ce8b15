package internlm.engine.bench;

/**
 * One line of {@code bench kernels}: a TornadoVM kernel (and variant) at one shape on one device — time per launch,
 * the bytes and floating-point operations a launch needs, the rates they give, the fraction of the device's measured
 * bandwidth, and the largest difference from the scalar reference ({@code check} ok/FAILED, on every run).
 */
public record KernelRow(
        String buildCommit,
        String testTime,
        String tornadoVersion,
        String device,
        String backends,
        String gpuInfo,
        String model,
        String kernel,
        String variant,
        String shape,
        long bytes,
        long flops,
        int reps,
        double avgUs,
        double stddevUs,
        double medianUs,
        double gbs,
        double gflops,
        Double bandwidthGbs,
        Double bandwidthFraction,
        double maxError,
        String check,
        String timing) {}
