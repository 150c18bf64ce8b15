package internlm.server;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import internlm.engine.chat.ToolCall;
import internlm.engine.chat.ToolCallParser;
import internlm.engine.generate.GenerationResult;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/** A chat completion: content and tool calls (parsed from the text when tools were offered), streamed or whole. */
final class ChatOutput extends Output {
    private final ToolCallParser parser;
    private final StringBuilder content = new StringBuilder();
    private final List<ToolCall> calls = new ArrayList<>();

    ChatOutput(ToolCallParser parser, Job job, String id, long created, Context ctx) {
        super(job, id, created, ctx);
        this.parser = parser;
    }

    @Override
    String objectName(boolean chunk) {
        return chunk ? "chat.completion.chunk" : "chat.completion";
    }

    @Override
    void onText(String text) throws IOException {
        if (parser == null) {
            if (!text.isEmpty()) {
                emit(new ToolCallParser.Text(text));
            }
            return;
        }
        for (ToolCallParser.Event e : parser.push(text)) {
            emit(e);
        }
    }

    private void emit(ToolCallParser.Event e) throws IOException {
        ObjectNode delta = JsonNodeFactory.instance.objectNode();
        switch (e) {
            case ToolCallParser.Text t -> {
                content.append(t.text());
                delta.put("content", t.text());
            }
            case ToolCallParser.Call c -> {
                calls.add(c.call());
                delta.putArray("tool_calls").add(Shapes.toolCallJson(c.call(), calls.size() - 1));
            }
        }
        if (sse != null) {
            sse.data(chunk(choice -> streamedChoice(choice, delta, null)));
        }
    }

    @Override
    void finish() throws IOException {
        if (parser != null) {
            for (ToolCallParser.Event e : parser.finish()) {
                emit(e);
            }
        }
    }

    String finishReason(GenerationResult r) {
        return r.finishReason().equals("stop") && !calls.isEmpty() ? "tool_calls" : r.finishReason();
    }

    private void streamedChoice(ObjectNode choice, ObjectNode delta, String finish) {
        choice.set("delta", delta);
        if (job.logprobs() && !pendingSteps.isEmpty()) {
            choice.set("logprobs", Shapes.chatLogprobs(ctx.tokenizer(), pendingSteps, job.topLogprobs()));
            pendingSteps.clear();
        } else {
            choice.putNull("logprobs");
        }
        choice.put("finish_reason", finish);
    }

    @Override
    void startStream() throws IOException {
        ObjectNode delta = JsonNodeFactory.instance.objectNode();
        delta.put("role", "assistant");
        delta.put("content", "");
        sse.data(chunk(choice -> streamedChoice(choice, delta, null)));
    }

    @Override
    void lastChoice(ObjectNode choice, GenerationResult r) {
        streamedChoice(choice, JsonNodeFactory.instance.objectNode(), finishReason(r));
    }

    @Override
    void wholeChoice(ObjectNode choice, GenerationResult r) {
        ObjectNode msg = choice.putObject("message");
        msg.put("role", "assistant");
        if (content.isEmpty() && !calls.isEmpty()) {
            msg.putNull("content");
        } else {
            msg.put("content", content.toString());
        }
        if (!calls.isEmpty()) {
            ArrayNode tc = msg.putArray("tool_calls");
            for (int i = 0; i < calls.size(); i++) {
                ObjectNode c = Shapes.toolCallJson(calls.get(i), i);
                c.remove("index");
                tc.add(c);
            }
        }
        if (job.logprobs()) {
            choice.set("logprobs", Shapes.chatLogprobs(ctx.tokenizer(), steps, job.topLogprobs()));
        } else {
            choice.putNull("logprobs");
        }
        choice.put("finish_reason", finishReason(r));
    }
}
