package internlm.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import internlm.engine.grammar.Grammar;
import internlm.engine.grammar.GrammarSyntax;
import internlm.engine.grammar.JsonSchemaGrammar;
import internlm.engine.grammar.TokenConstraint;
import internlm.engine.tokenizer.Tokenizer;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/** --grammar FILE / --json-schema FILE: output constrained to a grammar or to JSON valid under a schema. */
final class ConstraintOptions {
    @Option(names = "--grammar", paramLabel = "FILE",
            description = "Constrain the output to this grammar (rules 'name ::= …', start rule root; see the README).")
    Path grammar;

    @Option(names = "--json-schema", paramLabel = "FILE",
            description = "Constrain the output to JSON valid under this JSON Schema (the subset in the README).")
    Path jsonSchema;

    /** The constraint asked for, bound to the tokenizer, or null. */
    TokenConstraint constraint(Tokenizer tok) {
        if (grammar != null && jsonSchema != null) {
            throw new IllegalArgumentException("use either --grammar or --json-schema, not both");
        }
        if (grammar != null) {
            Grammar g = GrammarSyntax.parse(read(grammar));
            return TokenConstraint.of(g, tok, "grammar " + grammar.getFileName());
        }
        if (jsonSchema != null) {
            JsonNode schema;
            try {
                schema = new ObjectMapper().readTree(read(jsonSchema));
            } catch (IOException e) {
                throw new IllegalArgumentException(jsonSchema + " is not JSON: " + e.getMessage());
            }
            return TokenConstraint.of(JsonSchemaGrammar.of(schema), tok, "JSON schema " + jsonSchema.getFileName());
        }
        return null;
    }

    private static String read(Path p) {
        try {
            return Files.readString(p, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read " + p + ": " + e.getMessage());
        }
    }
}
