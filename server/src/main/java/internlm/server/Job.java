package internlm.server;

import internlm.engine.generate.GenerationParams;

/** One generation request as the server runs it: the prompt's tokens, the parameters and how to answer. */
record Job(int[] prompt, GenerationParams params, boolean stream, boolean includeUsage, boolean logprobs, int topLogprobs) {}
