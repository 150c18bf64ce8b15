package internlm.server;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import internlm.engine.generate.GenerationResult;
import internlm.engine.generate.TokenSink;
import internlm.engine.tokenizer.Tokenizer;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * Receives generated text and turns it into chunks (streaming) or a final object. The envelope (id, object,
 * created, model, system_fingerprint, choices[0].index, usage) is written here once for chat and text
 * completions; the subclasses fill in their choice.
 */
abstract sealed class Output implements TokenSink permits ChatOutput, TextOutput {
    /** What every answer names: the tokenizer (for logprobs), the model id and the system fingerprint. */
    record Context(Tokenizer tokenizer, String modelId, String fingerprint) {}

    final Job job;
    final String id;
    final long created;
    final Context ctx;
    final List<GenerationResult.Step> steps = new ArrayList<>(), pendingSteps = new ArrayList<>();
    Sse sse;
    IOException failure;

    Output(Job job, String id, long created, Context ctx) {
        this.job = job;
        this.ctx = ctx;
        this.id = id;
        this.created = created;
    }

    @Override
    public void step(GenerationResult.Step s) {
        // control tokens (<|im_end|>, the action markers) are not part of the text, so they get no logprobs entry
        if (ctx.tokenizer().isSpecial(s.token())) {
            return;
        }
        steps.add(s);
        pendingSteps.add(s);
    }

    @Override
    public boolean accept(int token, String text) {
        if (failure != null) {
            return false;
        }
        try {
            onText(text);
            return true;
        } catch (IOException e) {
            failure = e;
            return false;
        }
    }

    abstract void onText(String text) throws IOException;

    /** Called when generation has ended, before the final chunk / object. */
    abstract void finish() throws IOException;

    /** The "object" of a chunk or of the whole answer. */
    abstract String objectName(boolean chunk);

    /** Fills the choice of the whole answer (index is set). */
    abstract void wholeChoice(ObjectNode choice, GenerationResult r);

    /** Fills the choice of the last streamed chunk, the one with the finish reason. */
    abstract void lastChoice(ObjectNode choice, GenerationResult r);

    void startStream() throws IOException {
    }

    final ObjectNode envelope(boolean chunk) {
        ObjectNode c = JsonNodeFactory.instance.objectNode();
        c.put("id", id);
        c.put("object", objectName(chunk));
        c.put("created", created);
        c.put("model", ctx.modelId());
        c.put("system_fingerprint", ctx.fingerprint());
        return c;
    }

    /** A chunk with one choice, filled by {@code fill}; with include_usage every chunk but the last has "usage": null. */
    final String chunk(Consumer<ObjectNode> fill) {
        return chunkNode(fill).toString();
    }

    final ObjectNode chunkNode(Consumer<ObjectNode> fill) {
        ObjectNode c = envelope(true);
        ObjectNode choice = c.putArray("choices").addObject();
        choice.put("index", 0);
        fill.accept(choice);
        if (job.includeUsage()) {
            c.putNull("usage");
        }
        return c;
    }

    final void endStream(GenerationResult r) throws IOException {
        ObjectNode last = chunkNode(choice -> lastChoice(choice, r));
        last.set("timings", timings(r));
        sse.data(last.toString());
        if (job.includeUsage()) {
            ObjectNode u = envelope(true);
            u.putArray("choices");
            u.set("usage", Shapes.usage(r));
            sse.data(u.toString());
        }
        sse.done();
    }

    final ObjectNode whole(GenerationResult r) {
        ObjectNode o = envelope(false);
        ObjectNode choice = o.putArray("choices").addObject();
        choice.put("index", 0);
        wholeChoice(choice, r);
        o.set("usage", Shapes.usage(r));
        o.set("timings", timings(r));
        return o;
    }

/**
 * llama.cpp's server timings: the prompt phase until the first token (prompt_n: the prompt tokens evaluated, cache_n:
 * those found in the slot's cache, as llama.cpp counts them), then the tokens after the first over the rest of the
 * generation.
 */
static ObjectNode timings(GenerationResult r) {
    ObjectNode t = JsonNodeFactory.instance.objectNode();
    int pn = r.evaluatedPromptTokens(), dn = Math.max(0, r.generated().length - 1);
    t.put("cache_n", r.cachedTokens());
    t.put("prompt_n", pn);
    t.put("prompt_ms", r.promptMillis());
    t.put("prompt_per_second", r.promptMillis() > 0 ? pn * 1000.0 / r.promptMillis() : 0);
    t.put("predicted_n", dn);
    t.put("predicted_ms", r.decodeMillis());
    t.put("predicted_per_second", r.decodeMillis() > 0 ? dn * 1000.0 / r.decodeMillis() : 0);
    return t;
}
}
