package internlm.cli;

import internlm.loader.ModelFormatException;
import picocli.CommandLine;
import picocli.CommandLine.Command;

import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;

/** {@code internlm-cli.jar}: the command-line front end. */
@Command(name = "internlm", mixinStandardHelpOptions = true, version = "internlm 0.1.0",
        description = "Run InternLM models (InternLM2/2.5, InternLM3) on the CPU or on GPUs through TornadoVM.",
        subcommands = {GenerateCommand.class, ChatCommand.class, TokenizeCommand.class, InfoCommand.class, BenchCommand.class, DevicesCommand.class, ConvertCommand.class, ServeCommand.class, ScoreCommand.class, CommandLine.HelpCommand.class})
public final class Main implements Runnable {

    @Override
    public void run() {
        new CommandLine(this).usage(System.out);
    }

    public static void main(String[] args) {
        System.setOut(new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), true, StandardCharsets.UTF_8));
        System.setErr(new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.err), true, StandardCharsets.UTF_8));
        System.exit(run(args));
    }

    /** Runs the CLI with the current System.out/err/in and returns the exit code (tests call this). */
    public static int run(String... args) {
        CommandLine cl = new CommandLine(new Main());
        cl.setOut(new java.io.PrintWriter(System.out, true));
        cl.setErr(new java.io.PrintWriter(System.err, true));
        cl.setExecutionExceptionHandler((ex, cmd, parsed) -> {
            cmd.getErr().println("error: " + userMessage(ex));
            if (System.getenv("INTERNLM_DEBUG") != null) {
                ex.printStackTrace(cmd.getErr());
            }
            return 1;
        });
        return cl.execute(args);
    }

    /** A one-line explanation for the user; raw exception names only for genuine bugs. */
    static String userMessage(Throwable ex) {
        if (ex instanceof ModelFormatException || ex instanceof IllegalArgumentException || ex instanceof IllegalStateException) {
            return ex.getMessage();
        }
        if (ex instanceof UncheckedIOException u) {
            return u.getMessage();
        }
        if (ex instanceof java.io.IOException io) {
            return io.getMessage();
        }
        if (ex instanceof OutOfMemoryError) {
            return "out of memory (" + ex.getMessage() + "): the model or context does not fit; try a smaller --ctx or give the JVM more memory (-Xmx)";
        }
        return ex.getClass().getSimpleName() + ": " + ex.getMessage() + " (set INTERNLM_DEBUG=1 for details)";
    }
}
