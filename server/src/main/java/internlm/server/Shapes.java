package internlm.server;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import internlm.engine.chat.ToolCall;
import internlm.engine.generate.GenerationResult;
import internlm.engine.tokenizer.Tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.List;

/** The JSON pieces of OpenAI answers shared by chat and text completions: tool calls, usage, logprobs. */
final class Shapes {
    private Shapes() {}

    static ObjectNode toolCallJson(ToolCall c, int index) {
        ObjectNode o = JsonNodeFactory.instance.objectNode();
        o.put("index", index);
        o.put("id", c.id());
        o.put("type", "function");
        ObjectNode f = o.putObject("function");
        f.put("name", c.name());
        f.put("arguments", c.arguments());
        return o;
    }

    static ObjectNode usage(GenerationResult r) {
        ObjectNode u = JsonNodeFactory.instance.objectNode();
        u.put("prompt_tokens", r.prompt().length);
        u.put("completion_tokens", r.generated().length);
        u.put("total_tokens", r.prompt().length + r.generated().length);
        u.putObject("prompt_tokens_details").put("cached_tokens", r.cachedTokens()); // as OpenAI reports prompt caching
        return u;
    }

    static ObjectNode chatLogprobs(Tokenizer tok, List<GenerationResult.Step> steps, int top) {
        ObjectNode lp = JsonNodeFactory.instance.objectNode();
        ArrayNode content = lp.putArray("content");
        for (GenerationResult.Step s : steps) {
            ObjectNode e = tokenLogprob(tok, s.token(), s.logprob());
            ArrayNode tops = e.putArray("top_logprobs");
            for (int k = 0; k < Math.min(top, s.top().size()); k++) {
                GenerationResult.TopLogit t = s.top().get(k);
                tops.add(tokenLogprob(tok, t.id(), s.logprob(t.logit())));
            }
            content.add(e);
        }
        return lp;
    }

    private static ObjectNode tokenLogprob(Tokenizer tok, int id, double logprob) {
        byte[] b = tok.pieceBytes(id, true);
        ObjectNode e = JsonNodeFactory.instance.objectNode();
        e.put("token", new String(b, StandardCharsets.UTF_8));
        e.put("logprob", logprob);
        ArrayNode bytes = e.putArray("bytes");
        for (byte x : b) {
            bytes.add(x & 0xff);
        }
        return e;
    }

    /** The legacy completions logprobs object: tokens, token_logprobs, top_logprobs (maps), text_offset. */
    static ObjectNode completionLogprobs(Tokenizer tok, List<GenerationResult.Step> steps, int top, int offset) {
        ObjectNode lp = JsonNodeFactory.instance.objectNode();
        ArrayNode tokens = lp.putArray("tokens"), logprobs = lp.putArray("token_logprobs"), tops = lp.putArray("top_logprobs"),
                offsets = lp.putArray("text_offset");
        int at = offset;
        for (GenerationResult.Step s : steps) {
            String piece = new String(tok.pieceBytes(s.token(), true), StandardCharsets.UTF_8);
            tokens.add(piece);
            logprobs.add(s.logprob());
            ObjectNode m = tops.addObject();
            for (int k = 0; k < Math.min(top, s.top().size()); k++) {
                GenerationResult.TopLogit t = s.top().get(k);
                m.put(new String(tok.pieceBytes(t.id(), true), StandardCharsets.UTF_8), s.logprob(t.logit()));
            }
            offsets.add(at);
            at += piece.length();
        }
        return lp;
    }
}
