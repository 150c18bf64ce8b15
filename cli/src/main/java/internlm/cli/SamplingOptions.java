package internlm.cli;

import internlm.engine.sampling.SamplerConfig;
import picocli.CommandLine.Option;

/** Sampling options (llama.cpp's names and defaults). */
final class SamplingOptions {
    @Option(names = {"--temperature", "--temp"}, paramLabel = "T", defaultValue = "0.8", description = "0 = greedy (default: ${DEFAULT-VALUE}).")
    float temperature;

    @Option(names = "--top-k", paramLabel = "K", defaultValue = "40", description = "0 = off (default: ${DEFAULT-VALUE}).")
    int topK;

    @Option(names = "--top-p", paramLabel = "P", defaultValue = "0.95", description = "1 = off (default: ${DEFAULT-VALUE}).")
    float topP;

    @Option(names = "--min-p", paramLabel = "P", defaultValue = "0.05", description = "0 = off (default: ${DEFAULT-VALUE}).")
    float minP;

    @Option(names = "--repeat-penalty", paramLabel = "R", defaultValue = "1.0", description = "1 = off (default: ${DEFAULT-VALUE}).")
    float repeatPenalty;

    @Option(names = "--repeat-last-n", paramLabel = "N", defaultValue = "64", description = "Tokens the penalty looks back at, -1 = all (default: ${DEFAULT-VALUE}).")
    int repeatLastN;

    @Option(names = "--frequency-penalty", paramLabel = "F", defaultValue = "0", description = "0 = off.")
    float frequencyPenalty;

    @Option(names = "--presence-penalty", paramLabel = "F", defaultValue = "0", description = "0 = off.")
    float presencePenalty;

    @Option(names = {"-s", "--seed"}, paramLabel = "S", defaultValue = "-1", description = "Random seed; the same seed gives the same output (-1 = random).")
    long seed;

    /**
     * The options the user gave, the given defaults for the others (a random seed unless one was given); for
     * commands whose defaults are the model's recommended settings rather than llama.cpp's.
     */
    SamplerConfig config(picocli.CommandLine.ParseResult given, SamplerConfig d) {
        long s = given.hasMatchedOption("--seed") && seed != -1 ? seed : System.nanoTime() ^ 0x9E3779B97F4A7C15L;
        return new SamplerConfig(
                given.hasMatchedOption("--temperature") ? temperature : d.temperature(),
                given.hasMatchedOption("--top-k") ? topK : d.topK(),
                given.hasMatchedOption("--top-p") ? topP : d.topP(),
                given.hasMatchedOption("--min-p") ? minP : d.minP(),
                given.hasMatchedOption("--repeat-penalty") ? repeatPenalty : d.repeatPenalty(),
                given.hasMatchedOption("--frequency-penalty") ? frequencyPenalty : d.frequencyPenalty(),
                given.hasMatchedOption("--presence-penalty") ? presencePenalty : d.presencePenalty(),
                given.hasMatchedOption("--repeat-last-n") ? repeatLastN : d.penaltyLastN(),
                s);
    }

    SamplerConfig config() {
        long s = seed == -1 ? System.nanoTime() ^ 0x9E3779B97F4A7C15L : seed;
        return new SamplerConfig(temperature, topK, topP, minP, repeatPenalty, frequencyPenalty, presencePenalty, repeatLastN, s);
    }
}
