package internlm.loader;

/** Receives progress of long operations (loading, conversion). Implementations must be cheap. */
@FunctionalInterface
public interface Progress {
    /**
     * @param stage what is being done, e.g. "requantizing Q4_K to Q8_0"
     * @param done  units done so far
     * @param total units in all (0 when unknown)
     */
    void update(String stage, long done, long total);

    Progress NONE = (stage, done, total) -> { };
}
