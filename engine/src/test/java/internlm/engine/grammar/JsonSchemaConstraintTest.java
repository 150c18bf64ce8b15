package internlm.engine.grammar;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.networknt.schema.Error;
import com.networknt.schema.InputFormat;
import com.networknt.schema.SchemaRegistry;
import com.networknt.schema.SpecificationVersion;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Random JSON schemas: every output sampled under the schema's grammar (random logits, a random vocabulary walk)
 * must parse as JSON and validate against the schema with an independent validator; no walk may dead-end.
 */
class JsonSchemaConstraintTest {
    private static final ObjectMapper JSON = new ObjectMapper().enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);
    private static final JsonNodeFactory F = JsonNodeFactory.instance;
    private static final SchemaRegistry VALIDATORS = SchemaRegistry.withDefaultDialect(SpecificationVersion.DRAFT_2020_12);
    private final ConstrainedWalk walk = new ConstrainedWalk();

    @Test
    void randomSchemasGiveValidOutputs() throws Exception {
        int schemas = 400, outputsPerSchema = 2;
        SplittableRandom rnd = new SplittableRandom(20261204);
        int nonTrivial = 0;
        for (int i = 0; i < schemas; i++) {
            ObjectNode defs = F.objectNode();
            JsonNode schema = randomSchema(rnd, 0, defs);
            ObjectNode root = schema.isObject() ? ((ObjectNode) schema).deepCopy() : F.objectNode();
            if (!defs.isEmpty()) {
                root.set("$defs", defs);
            }
            Grammar g = JsonSchemaGrammar.of(root);
            var validator = VALIDATORS.getSchema(JSON.writeValueAsString(root), InputFormat.JSON);
            for (int k = 0; k < outputsPerSchema; k++) {
                String out = walk.walk(g, rnd.nextLong(), 4000);
                JsonNode parsed;
                try {
                    parsed = JSON.readTree(out);
                } catch (Exception e) {
                    throw new AssertionError("schema " + root + " gave output that is not JSON: " + out, e);
                }
                List<Error> errors = validator.validate(out, InputFormat.JSON);
                assertTrue(errors.isEmpty(), () -> "schema " + root + "\noutput " + out + "\nerrors " + errors);
                if (parsed.isContainerNode() && !parsed.isEmpty()) {
                    nonTrivial++;
                }
            }
        }
        // the walks explore: most outputs are non-empty objects or arrays
        assertTrue(nonTrivial > schemas * outputsPerSchema / 2, "only " + nonTrivial + " non-empty containers");
    }

    @Test
    void anyObjectGivesObjects() throws Exception {
        Grammar g = JsonSchemaGrammar.anyObject();
        SplittableRandom rnd = new SplittableRandom(7);
        for (int i = 0; i < 50; i++) {
            String out = walk.walk(g, rnd.nextLong(), 4000);
            assertTrue(JSON.readTree(out).isObject(), out);
        }
    }

    @Test
    void unsupportedKeywordsAreRefusedByName() throws Exception {
        GrammarException e = assertThrows(GrammarException.class,
                () -> JsonSchemaGrammar.of(JSON.readTree("{\"type\":\"string\",\"pattern\":\"^a+$\"}")));
        assertTrue(e.getMessage().contains("'pattern'"), e.getMessage());
        assertThrows(GrammarException.class, () -> JsonSchemaGrammar.of(JSON.readTree("{\"$ref\":\"#/$defs/missing\"}")));
        assertThrows(GrammarException.class, () -> JsonSchemaGrammar.of(JSON.readTree("{\"type\":\"object\",\"properties\":{},"
                + "\"required\":[\"a\"],\"additionalProperties\":false}")));
    }

    @Test
    void recursiveRefsWork() throws Exception {
        JsonNode schema = JSON.readTree("""
                {"$ref": "#/$defs/node", "$defs": {"node": {"type": "object", "additionalProperties": false,
                  "properties": {"v": {"type": "integer"}, "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}, "maxItems": 2}},
                  "required": ["v"]}}}""");
        Grammar g = JsonSchemaGrammar.of(schema);
        var validator = VALIDATORS.getSchema(schema.toString(), InputFormat.JSON);
        SplittableRandom rnd = new SplittableRandom(3);
        for (int i = 0; i < 30; i++) {
            String out = walk.walk(g, rnd.nextLong(), 4000);
            assertEquals(List.of(), validator.validate(out, InputFormat.JSON), out);
        }
    }

    // ------------------------------------------------------------------ random schemas

    private JsonNode randomSchema(SplittableRandom r, int depth, ObjectNode defs) {
        // the top is an object, array, anyOf or $ref (what structured-output requests send); below, anything
        int kind = depth == 0 ? 7 + r.nextInt(4) : r.nextInt(depth >= 3 ? 7 : 11);
        ObjectNode s = F.objectNode();
        if (r.nextInt(5) == 0) {
            s.put("description", "field " + r.nextInt(100));
        }
        switch (kind) {
            case 0 -> s.put("type", "string");
            case 1 -> s.put("type", "integer");
            case 2 -> s.put("type", "number");
            case 3 -> s.put("type", "boolean");
            case 4 -> {
                ArrayNode e = s.putArray("enum");
                int n = 1 + r.nextInt(4);
                for (int i = 0; i < n; i++) {
                    switch (r.nextInt(4)) {
                        case 0 -> e.add("v" + i + (r.nextBoolean() ? " x" : "é"));
                        case 1 -> e.add(i * 7 - 3);
                        case 2 -> e.add(r.nextBoolean());
                        default -> e.addNull();
                    }
                }
                if (r.nextBoolean()) {
                    s.put("type", "string");
                    e.removeAll();
                    e.add("red").add("green").add("blue \"b\"");
                }
            }
            case 5 -> {
                s.put("type", "string");
                int min = r.nextInt(4);
                s.put("minLength", min);
                if (r.nextBoolean()) {
                    s.put("maxLength", min + r.nextInt(6));
                }
            }
            case 6 -> {
                if (r.nextBoolean()) {
                    s.putArray("type").add("string").add("null");
                } else {
                    s.set("const", r.nextBoolean() ? F.textNode("fixed") : F.numberNode(42));
                }
            }
            case 7, 8 -> {
                s.put("type", "object");
                ObjectNode props = s.putObject("properties");
                int n = r.nextInt(5);
                List<String> names = new ArrayList<>();
                for (int i = 0; i < n; i++) {
                    String name = r.nextInt(6) == 0 ? "key \"" + i + "\"" : "p" + i;
                    names.add(name);
                    props.set(name, randomSchema(r, depth + 1, defs));
                }
                ArrayNode req = s.putArray("required");
                for (String name : names) {
                    if (r.nextBoolean()) {
                        req.add(name);
                    }
                }
                if (r.nextInt(3) > 0) {
                    s.put("additionalProperties", false);
                }
            }
            case 9 -> {
                s.put("type", "array");
                s.set("items", randomSchema(r, depth + 1, defs));
                if (r.nextBoolean()) {
                    int min = r.nextInt(3);
                    s.put("minItems", min);
                    if (r.nextBoolean()) {
                        s.put("maxItems", min + r.nextInt(3));
                    }
                } else if (r.nextBoolean()) {
                    s.put("maxItems", r.nextInt(4));
                }
            }
            default -> {
                if (r.nextBoolean()) {
                    ArrayNode any = s.putArray("anyOf");
                    int n = 2 + r.nextInt(2);
                    for (int i = 0; i < n; i++) {
                        any.add(randomSchema(r, depth + 1, defs));
                    }
                } else {
                    String name = "d" + defs.size();
                    defs.set(name, F.objectNode()); // reserve the name: nested definitions take the next ones
                    defs.set(name, randomSchema(r, depth + 1, defs));
                    s.put("$ref", "#/$defs/" + name);
                }
            }
        }
        return s;
    }
}
