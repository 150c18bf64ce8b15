package internlm.engine.bench;

import com.fasterxml.jackson.annotation.JsonProperty;

/**
 * One result line of {@code bench}: what ran (model, device, software), which test, how fast, and the memory roofline.
 * Written with llama-bench's field names where llama-bench has the field (snake_case of the component names:
 * {@code build_commit, model_filename, model_type, model_size, model_n_params, backends, gpu_info, n_threads,
 * type_k, type_v, n_prompt, n_gen, n_depth, test_time, avg_ns, stddev_ns, avg_ts, stddev_ts, samples_ns,
 * samples_ts}); the others are this engine's. Roofline fields are null for prompt tests (compute-bound) and for rows
 * that did not run (strings are never null: CSV cannot tell null from empty); {@code status} is {@code ok}, {@code unsupported} (e.g. more sequences than the backend holds),
 * {@code too_large} (the model does not fit the device; nothing was allocated) or {@code error}, with {@code note}.
 */
public record BenchRow(
        String buildCommit,
        String testTime,
        String jdk,
        String tornadoVersion,
        String modelFilename,
        String modelType,
        String modelFamily,
        String modelShape,
        String weightType,
        long modelSize,
        @JsonProperty("model_n_params") long modelNParams,
        boolean synthetic,
        String device,
        String backends,
        String gpuInfo,
        String deviceDriver,
        String deviceVersion,
        int nThreads,
        String typeK,
        String typeV,
        String test,
        int nPrompt,
        int nGen,
        int nDepth,
        int nSeq,
        String status,
        String note,
        long loadMs,
        double avgNs,
        double stddevNs,
        double avgTs,
        double stddevTs,
        double medianTs,
        double[] samplesNs,
        double[] samplesTs,
        Double bandwidthGbs,
        String bandwidthProbe,
        Double bytesPerToken,
        Double rooflineTs,
        Double rooflineFraction) {

    /** The llama-bench test name: pp512, tg128, pp512@d4096; with ×N for N concurrent sequences. */
    public static String testName(int nPrompt, int nGen, int depth, int sequences) {
        String t = nPrompt > 0 ? "pp" + nPrompt : "tg" + nGen;
        if (depth > 0) {
            t += " @ d" + depth;
        }
        return sequences > 1 ? t + " ×" + sequences : t;
    }

    public boolean ok() {
        return "ok".equals(status);
    }
}
