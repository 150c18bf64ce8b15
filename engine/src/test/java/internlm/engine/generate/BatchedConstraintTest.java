package internlm.engine.generate;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.networknt.schema.InputFormat;
import com.networknt.schema.SchemaRegistry;
import com.networknt.schema.SpecificationVersion;
import internlm.engine.Engine;
import internlm.engine.Fixtures;
import internlm.engine.grammar.GrammarSyntax;
import internlm.engine.grammar.JsonSchemaGrammar;
import internlm.engine.grammar.TokenConstraint;
import internlm.engine.model.Batch;
import internlm.engine.sampling.SamplerConfig;
import internlm.loader.Progress;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Several generations sampled in the same batched forward passes, each under its own constraint (or none): every
 * sequence keeps to its own grammar, so the mask is per sequence, not per batch.
 */
class BatchedConstraintTest {
    static final String SCHEMA = """
            {"type": "object", "additionalProperties": false, "required": ["level", "n", "ok"],
             "properties": {"level": {"enum": ["low", "high"]}, "n": {"type": "integer"}, "ok": {"type": "boolean"}}}""";

    @Test
    void eachSequenceInABatchKeepsToItsOwnGrammar() throws Exception {
        try (Engine engine = Engine.load(Fixtures.fixture("internlm2-tiny-q8_0.gguf"), Engine.Options.cpu(), Progress.NONE)) {
            JsonNode schema = new ObjectMapper().readTree(SCHEMA);
            TokenConstraint json = TokenConstraint.of(JsonSchemaGrammar.of(schema), engine.tokenizer(), "schema");
            TokenConstraint words = TokenConstraint.of(GrammarSyntax.parse("root ::= (\"yes\" | \"no\") \" \" [0-9]{1,3}"), engine.tokenizer(), "words");
            for (long seed = 0; seed < 3; seed++) {
                SamplerConfig sc = new SamplerConfig(1f, 0, 1f, 0f, 1f, 0f, 0f, 64, seed);
                GenerationParams p = new GenerationParams(120, sc, false, List.of(), 0, false);
                try (Session s1 = engine.newSession(256); Session s2 = engine.newSession(256); Session s3 = engine.newSession(256)) {
                    int[] prompt = engine.tokenizer().encode("Answer:", true, true);
                    List<Generation> gens = List.of(s1.start(prompt, p.withConstraint(json), TokenSink.NONE),
                            s2.start(prompt, p.withConstraint(words), TokenSink.NONE), s3.start(prompt, p.withConstraint(null), TokenSink.NONE));
                    Batch b = new Batch();
                    int steps = 0;
                    while (gens.stream().anyMatch(g -> !g.done())) {
                        b.clear();
                        int rows = 0;
                        for (Generation g : gens) {
                            rows += g.addRows(b, 64);
                        }
                        if (rows > 0) {
                            engine.backend().forward(b);
                        }
                        for (Generation g : gens) {
                            g.afterForward(b);
                        }
                        steps++;
                    }
                    assertTrue(steps > 3, "the generations ran side by side");
                    GenerationResult a = gens.get(0).result(), w = gens.get(1).result();
                    assertEquals("stop", a.finishReason(), a.text());
                    assertEquals(List.of(), SchemaRegistry.withDefaultDialect(SpecificationVersion.DRAFT_2020_12)
                            .getSchema(SCHEMA, InputFormat.JSON).validate(a.text(), InputFormat.JSON), a.text());
                    assertEquals("stop", w.finishReason(), w.text());
                    assertTrue(w.text().matches("(yes|no) [0-9]{1,3}"), w.text());
                    assertFalse(gens.get(2).result().text().matches("(yes|no) [0-9]{1,3}"), "the unconstrained one is free");
                }
            }
        }
    }
}
