package internlm.server;

import internlm.engine.Engine;
import internlm.engine.Fixtures;
import internlm.loader.Progress;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The official OpenAI Node SDK against the server (src/test/node/openai-sdk-check.mjs: response_format json_schema,
 * streaming with include_usage, tool_choice required, 401 for a wrong key). Runs only where node is installed and
 * {@code npm install} has been run in src/test/node; skipped otherwise.
 */
class OpenAiNodeSdkTest {
    @Test
    void officialNodeSdkChecksPass() throws Exception {
        Path dir = Path.of("src/test/node").toAbsolutePath();
        assumeTrue(Files.isRegularFile(dir.resolve("node_modules/openai/package.json")), "npm install has not been run in " + dir);
        assumeTrue(nodeWorks(), "node is not installed");
        String key = "sk-node-test";
        try (Engine engine = Engine.load(Fixtures.fixture("internlm2-tiny-q8_0.gguf"), Engine.Options.cpu(), Progress.NONE)) {
            OpenAiServer server = new OpenAiServer(engine, new ServerConfig("127.0.0.1", 0, 2, 8, 1024, "tiny", false, false, 1 << 20, 2000)
                    .withApiKey(key), null);
            server.start();
            try {
                ProcessBuilder pb = new ProcessBuilder("node", "openai-sdk-check.mjs").directory(dir.toFile()).redirectErrorStream(true);
                pb.environment().put("BASE_URL", "http://127.0.0.1:" + server.port() + "/v1");
                pb.environment().put("API_KEY", key);
                Process p = pb.start();
                boolean ended = p.waitFor(180, TimeUnit.SECONDS);
                String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                if (!ended) {
                    p.destroyForcibly();
                }
                System.out.println(out); // the checks' own report, kept in the surefire output
                assertTrue(ended, "the node check did not end: " + out);
                assertEquals(0, p.exitValue(), out);
                assertTrue(out.contains("OK"), out);
            } finally {
                server.close();
            }
        }
    }

    private static boolean nodeWorks() {
        try {
            Process p = new ProcessBuilder("node", "--version").redirectErrorStream(true).start();
            return p.waitFor(20, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (IOException | InterruptedException e) {
            return false;
        }
    }
}
