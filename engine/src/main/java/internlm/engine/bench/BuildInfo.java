package internlm.engine.bench;

import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;

/** The source revision a result comes from: INTERNLM_COMMIT when set (a copied tree has no .git), else git's HEAD. */
public final class BuildInfo {
    private BuildInfo() {}

    public static String commit() {
        String env = System.getenv("INTERNLM_COMMIT");
        if (env != null && !env.isBlank()) {
            return env.trim();
        }
        try {
            Process p = new ProcessBuilder("git", "rev-parse", "--short=10", "HEAD").redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
            if (p.waitFor(5, TimeUnit.SECONDS) && p.exitValue() == 0 && out.matches("[0-9a-f]{7,40}")) {
                return out;
            }
        } catch (Exception e) {
            // no git here
        }
        return "unknown";
    }

    /** A runtime's error message cut to one readable line (TornadoVM's carry colour codes and a whole stack trace). */
    public static String brief(Throwable e) {
        String m = e.getMessage() == null ? e.toString() : e.getMessage();
        m = m.replaceAll("\u001B\\[[0-9;]*m", "");
        int st = m.indexOf("Stacktrace");
        if (st >= 0) {
            m = m.substring(0, st);
        }
        m = m.replaceAll("\\s+", " ").trim();
        return m.length() > 240 ? m.substring(0, 239) + "…" : m;
    }
}
