package internlm.engine.grammar;

/** A grammar, schema or grammar file that cannot be used, with the reason in words. */
public final class GrammarException extends IllegalArgumentException {
    public GrammarException(String message) {
        super(message);
    }
}
