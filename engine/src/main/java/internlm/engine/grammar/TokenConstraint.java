package internlm.engine.grammar;

import internlm.engine.tokenizer.Tokenizer;

/**
 * A grammar bound to a vocabulary: what a generation's sampler obeys. Immutable and shareable; each sequence gets its
 * own {@link GrammarMatcher} from {@link #matcher(int[])}, so sequences sampled in one batched step are masked
 * independently.
 */
public final class TokenConstraint {
    private final Grammar grammar;
    private final TokenTrie trie;
    private final int[] controlTokenIds;
    private final String description;

    private TokenConstraint(Grammar grammar, TokenTrie trie, int[] controlTokenIds, String description) {
        this.grammar = grammar;
        this.trie = trie;
        this.controlTokenIds = controlTokenIds;
        this.description = description;
    }

    /** Binds {@code grammar} to {@code tok}'s vocabulary; every control token the grammar names must exist. */
    public static TokenConstraint of(Grammar grammar, Tokenizer tok, String description) {
        int[] ids = new int[grammar.tokens.size()];
        for (int k = 0; k < ids.length; k++) {
            String t = grammar.tokens.get(k);
            ids[k] = tok.tokenId(t);
            if (ids[k] < 0) {
                throw new GrammarException("the grammar uses the token " + t + ", which this model's vocabulary does not have");
            }
        }
        return new TokenConstraint(grammar, TokenTrie.of(tok), ids, description);
    }

    /** Binds a grammar to a bare trie (control tokens by id, in the order of {@link Grammar#controlTokens()}). */
    public static TokenConstraint of(Grammar grammar, TokenTrie trie, int[] controlTokenIds, String description) {
        if (controlTokenIds.length != grammar.tokens.size()) {
            throw new IllegalArgumentException("the grammar names " + grammar.tokens.size() + " control tokens, got " + controlTokenIds.length + " ids");
        }
        return new TokenConstraint(grammar, trie, controlTokenIds.clone(), description);
    }

    /**
     * A fresh matcher at the start of the grammar.
     *
     * @param endTokens tokens that end the output; allowed exactly when the grammar is complete
     */
    public GrammarMatcher matcher(int[] endTokens) {
        return new GrammarMatcher(grammar, trie, controlTokenIds, endTokens);
    }

    public Grammar grammar() {
        return grammar;
    }

    public int vocabSize() {
        return trie.vocabSize;
    }

    /** What the constraint is, in words (e.g. "JSON schema"). */
    @Override
    public String toString() {
        return description;
    }
}
