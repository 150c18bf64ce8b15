package internlm.engine.chat;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.*;

class ToolCallParserTest {
    static final String CALL = "<|action_start|><|plugin|>\n{\"name\": \"get_current_weather\", \"parameters\": {\"location\": \"Shanghai\"}}<|action_end|>";
    static final String TEXT = "Sure, I will search for the weather of Shanghai.";

    static Supplier<String> ids() {
        AtomicInteger n = new AtomicInteger();
        return () -> "call_" + n.incrementAndGet();
    }

    @Test
    void completeCall() {
        ToolCallParser.Parsed p = ToolCallParser.parse(TEXT + CALL, ids());
        assertEquals(TEXT, p.content());
        assertEquals(1, p.calls().size());
        ToolCall c = p.calls().get(0);
        assertEquals("call_1", c.id());
        assertEquals(ToolCall.Kind.PLUGIN, c.kind());
        assertEquals("get_current_weather", c.name());
        assertEquals("{\"location\":\"Shanghai\"}", c.arguments());
    }

    @Test
    void argumentsKeyAndStringArgumentsAreAccepted() {
        var p = ToolCallParser.parse("<|action_start|><|plugin|>\n{\"name\": \"f\", \"arguments\": {\"x\": [1, 2]}}<|action_end|>", ids());
        assertEquals("{\"x\":[1,2]}", p.calls().get(0).arguments());
        p = ToolCallParser.parse("<|action_start|><|plugin|>\n{\"name\": \"f\", \"arguments\": \"{\\\"x\\\": 1}\"}<|action_end|>", ids());
        assertEquals("{\"x\":1}", p.calls().get(0).arguments());
        p = ToolCallParser.parse("<|action_start|><|plugin|>{\"name\": \"noargs\"}\n<|action_end|>", ids());
        assertEquals("noargs", p.calls().get(0).name());
        assertEquals("{}", p.calls().get(0).arguments());
        assertEquals("", p.content());
    }

    @Test
    void textAfterTheCallAndSeveralCalls() {
        var p = ToolCallParser.parse("A" + CALL + "B" + CALL.replace("Shanghai", "Paris") + "C", ids());
        assertEquals("ABC", p.content());
        assertEquals(List.of("call_1", "call_2"), p.calls().stream().map(ToolCall::id).toList());
        assertEquals("{\"location\":\"Paris\"}", p.calls().get(1).arguments());
    }

    @Test
    void codeInterpreterBlock() throws Exception {
        String out = "Let me compute.\n<|action_start|><|interpreter|>\n```python\nprint(6 * 7)\n```<|action_end|>";
        var p = ToolCallParser.parse(out, ids());
        assertEquals("Let me compute.\n", p.content());
        ToolCall c = p.calls().get(0);
        assertEquals(ToolCall.Kind.INTERPRETER, c.kind());
        assertEquals(ToolCall.INTERPRETER_FUNCTION, c.name());
        assertEquals("print(6 * 7)", new ObjectMapper().readTree(c.arguments()).get("code").asText());
        // rendered back, it is the same action block
        assertEquals("<|action_start|><|interpreter|>\n```python\nprint(6 * 7)\n```<|action_end|>", ChatTemplate.renderCall(c));
    }

    @Test
    void pluginCallRendersBackToTheSameAction() {
        ToolCall c = ToolCallParser.parse(CALL, ids()).calls().get(0);
        assertEquals(CALL, ChatTemplate.renderCall(c));
    }

    @Test
    void malformedCallsComeBackAsTextNeverAnError() {
        String[] bad = {
                "<|action_start|><|plugin|>\n{\"name\": \"f\", \"parameters\": {\"x\": 1}<|action_end|>",        // unbalanced
                "<|action_start|><|plugin|>\n{\"parameters\": {}}<|action_end|>",                                 // no name
                "<|action_start|><|plugin|>\n{\"name\": 42}<|action_end|>",                                       // name not a string
                "<|action_start|><|plugin|>\n[\"f\"]<|action_end|>",                                              // not an object
                "<|action_start|><|plugin|>\nget_weather(city='Paris')<|action_end|>",                            // not JSON
                "<|action_start|><|plugin|>\n{\"name\": \"f\", \"parameters\": [1]}<|action_end|>",               // parameters not an object
                "<|action_start|><|plugin|>\n{\"name\": \"f\", \"arguments\": \"{broken\"}<|action_end|>",        // arguments text not JSON
                "<|action_start|><|plugin|>\n{\"name\": \"f\"} trailing<|action_end|>",                           // trailing garbage
                "<|action_start|>\n{\"name\": \"f\"}<|action_end|>",                                              // no action kind
                "<|action_start|><|interpreter|>\n```python\n```<|action_end|>",                                  // empty code
                "<|action_start|><|plugin|>\n{\"name\": \"f\", \"parameters\": {}}",                              // never ends
                "<|action_start|>",
        };
        for (String b : bad) {
            var p = ToolCallParser.parse("x " + b + " y", ids());
            assertTrue(p.calls().isEmpty(), b);
            assertEquals("x " + b + " y", p.content(), "returned verbatim: " + b);
        }
    }

    @Test
    void streamedInEveryPossiblePairOfPiecesGivesTheSameResult() {
        String out = TEXT + CALL + " Done.";
        for (int i = 0; i <= out.length(); i++) {
            for (int j = i; j <= out.length(); j += 7) {
                assertStreamed(out, List.of(out.substring(0, i), out.substring(i, j), out.substring(j)));
            }
        }
    }

    @Test
    void streamedCharacterByCharacter() {
        String out = TEXT + CALL + " <|action_start|><|plugin|>\n{bad}<|action_end|> <|act";
        List<String> pieces = new ArrayList<>();
        for (char c : out.toCharArray()) {
            pieces.add(String.valueOf(c));
        }
        List<ToolCallParser.Event> events = assertStreamed(out, pieces);
        // nothing of the call leaked into text: the text before it was complete when the call came
        String before = "";
        for (ToolCallParser.Event e : events) {
            if (e instanceof ToolCallParser.Call) {
                break;
            }
            before += ((ToolCallParser.Text) e).text();
        }
        assertEquals(TEXT, before);
    }

    @Test
    void textIsReleasedAtOnceUnlessItCouldStartAnAction() {
        ToolCallParser p = new ToolCallParser(ids());
        assertEquals(List.of(new ToolCallParser.Text("Hello ")), p.push("Hello "));
        assertEquals(List.of(new ToolCallParser.Text("wor")), p.push("wor<|act"));
        assertFalse(p.inAction());
        assertEquals(List.of(), p.push("ion_start|><|plugin|>\n{\"name\""));
        assertTrue(p.inAction());
        List<ToolCallParser.Event> ev = p.push(": \"f\"}<|action_end|>ok");
        assertEquals(2, ev.size());
        assertInstanceOf(ToolCallParser.Call.class, ev.get(0));
        assertEquals(new ToolCallParser.Text("ok"), ev.get(1));
        assertEquals(List.of(new ToolCallParser.Text("<|ac")), concat(p.push("<|ac"), p.finish()));
    }

    private static List<ToolCallParser.Event> concat(List<ToolCallParser.Event> a, List<ToolCallParser.Event> b) {
        List<ToolCallParser.Event> r = new ArrayList<>(a);
        r.addAll(b);
        return r;
    }

    /** Streams the pieces and checks the joined result equals parsing the whole text at once. */
    private static List<ToolCallParser.Event> assertStreamed(String whole, List<String> pieces) {
        ToolCallParser p = new ToolCallParser(ids());
        List<ToolCallParser.Event> events = new ArrayList<>();
        for (String s : pieces) {
            events.addAll(p.push(s));
        }
        events.addAll(p.finish());
        StringBuilder text = new StringBuilder();
        List<ToolCall> calls = new ArrayList<>();
        for (ToolCallParser.Event e : events) {
            switch (e) {
                case ToolCallParser.Text t -> {
                    assertFalse(t.text().isEmpty());
                    text.append(t.text());
                }
                case ToolCallParser.Call c -> calls.add(c.call());
            }
        }
        ToolCallParser.Parsed once = ToolCallParser.parse(whole, ids());
        assertEquals(once.content(), text.toString(), pieces.toString());
        assertEquals(once.calls(), calls, pieces.toString());
        return events;
    }
}
