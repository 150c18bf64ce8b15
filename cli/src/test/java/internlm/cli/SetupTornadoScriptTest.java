package internlm.cli;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What {@code setup-tornado.sh} tells the user to run: TornadoVM's {@code tornado} launcher rejects application
 * options after {@code -jar} ("unrecognized arguments"), so the printed command must pass them as one
 * {@code --params "…"} string. With a real SDK in TORNADO_SDK and the jar built, the printed command is also run.
 */
class SetupTornadoScriptTest {

    private static final Path ROOT = Path.of("..").toAbsolutePath().normalize();

    private static String runScript(Path fakeSdk) throws Exception {
        ProcessBuilder pb = new ProcessBuilder("bash", ROOT.resolve("setup-tornado.sh").toString(), "--dry-run").redirectErrorStream(true);
        pb.environment().put("TORNADO_SDK", fakeSdk.toString());
        pb.environment().remove("TORNADOVM_HOME");
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), out);
        return out;
    }

    private static String tornadoLine(String out) {
        List<String> lines = out.lines().filter(l -> l.contains("tornado ") && l.contains("-jar ")).toList();
        assertEquals(1, lines.size(), "one tornado -jar command in:\n" + out);
        return lines.getFirst().trim();
    }

    @Test
    void printsTheParamsFormOfTheLauncherCommand(@TempDir Path tmp) throws Exception {
        Path sdk = fakeSdk(tmp);
        String line = tornadoLine(runScript(sdk));
        String jar = ROOT.resolve("cli/target/internlm-cli.jar").toString();
        int j = line.indexOf("-jar " + jar + " ");
        assertTrue(j >= 0, line);
        String after = line.substring(j + ("-jar " + jar + " ").length());
        assertTrue(after.startsWith("--params \"generate --prompt 'Hello'"), "application arguments must be one --params string: " + line);
        assertTrue(after.endsWith("\")"), "nothing may follow the --params string: " + line);
        assertTrue(line.startsWith("(cd \"$(mktemp -d)\" && tornado "), "the launcher runs from a fresh empty directory: " + line);
    }

    @Test
    void printedCommandRunsUnderARealSdk(@TempDir Path tmp) throws Exception {
        String real = System.getenv("TORNADO_SDK");
        Path jar = ROOT.resolve("cli/target/internlm-cli.jar");
        Assumptions.assumeTrue(real != null && Files.isExecutable(Path.of(real, "bin", "tornado")), "TORNADO_SDK not set");
        Assumptions.assumeTrue(Files.isRegularFile(jar), "the jar is not built yet (mvn package)");
        String line = tornadoLine(runScript(Path.of(real)));
        ProcessBuilder pb = new ProcessBuilder("bash", "-c", line).redirectErrorStream(true);
        pb.environment().put("PATH", Path.of(real, "bin") + ":" + System.getenv("PATH"));
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(300, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), out);
        assertTrue(out.contains("generated"), out);
        assertTrue(!out.contains("unrecognized arguments"), out);
    }

    private static Path fakeSdk(Path tmp) throws IOException {
        Path bin = Files.createDirectories(tmp.resolve("sdk/bin"));
        Path t = bin.resolve("tornado");
        Files.writeString(t, "#!/bin/sh\nexit 0\n");
        Files.setPosixFilePermissions(t, PosixFilePermissions.fromString("rwxr-xr-x"));
        return tmp.resolve("sdk");
    }
}
