package internlm.server;

import com.fasterxml.jackson.databind.node.ObjectNode;
import internlm.engine.generate.GenerationResult;

import java.io.IOException;
import java.util.List;

/** A text completion (legacy /v1/completions), streamed or whole. */
final class TextOutput extends Output {
    private final StringBuilder text = new StringBuilder();

    TextOutput(Job job, String id, long created, Context ctx) {
        super(job, id, created, ctx);
    }

    @Override
    String objectName(boolean chunk) {
        return "text_completion";
    }

    @Override
    void onText(String t) throws IOException {
        if (t.isEmpty()) {
            return;
        }
        int offset = text.length();
        text.append(t);
        if (sse != null) {
            sse.data(chunk(choice -> textChoice(choice, t, null, offset, pendingSteps)));
        }
    }

    @Override
    void finish() {
    }

    private void textChoice(ObjectNode choice, String t, String finish, int offset, List<GenerationResult.Step> from) {
        choice.put("text", t);
        if (job.logprobs() && !from.isEmpty()) {
            choice.set("logprobs", Shapes.completionLogprobs(ctx.tokenizer(), from, job.topLogprobs(), offset));
            if (from == pendingSteps) {
                pendingSteps.clear();
            }
        } else {
            choice.putNull("logprobs");
        }
        choice.put("finish_reason", finish);
    }

    @Override
    void lastChoice(ObjectNode choice, GenerationResult r) {
        textChoice(choice, "", r.finishReason(), text.length(), pendingSteps);
    }

    @Override
    void wholeChoice(ObjectNode choice, GenerationResult r) {
        textChoice(choice, text.toString(), r.finishReason(), 0, steps);
    }
}
