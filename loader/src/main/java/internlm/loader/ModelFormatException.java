package internlm.loader;

import java.nio.file.Path;

/**
 * A model file (or directory) that cannot be used: truncated, corrupted, hostile or of a kind this engine does not
 * support. The message always names the file and, where it applies, the field and byte offset, so that it can be
 * shown to a user as is.
 */
public class ModelFormatException extends RuntimeException {
    private final transient Path file;

    public ModelFormatException(Path file, String message) {
        super(file + ": " + message);
        this.file = file;
    }

    public ModelFormatException(Path file, String field, long offset, String message) {
        super(file + ": " + field + " at offset " + offset + ": " + message);
        this.file = file;
    }

    public ModelFormatException(Path file, String message, Throwable cause) {
        super(file + ": " + message, cause);
        this.file = file;
    }

    public Path file() {
        return file;
    }
}
