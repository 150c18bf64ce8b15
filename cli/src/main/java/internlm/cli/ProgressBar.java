package internlm.cli;

import internlm.loader.Progress;

import java.io.PrintStream;

/**
 * Progress on stderr: a bar redrawn in place on a terminal, a line every 25 % otherwise (so logs stay short).
 */
final class ProgressBar implements Progress {
    private final PrintStream out;
    private final boolean terminal;
    private final boolean quiet;
    private String stage = "";
    private int lastPercent = -1;
    private long lastDraw;

    ProgressBar(PrintStream out, boolean quiet) {
        this.out = out;
        this.terminal = System.console() != null;
        this.quiet = quiet;
    }

    @Override
    public synchronized void update(String stage, long done, long total) {
        if (quiet) {
            return;
        }
        int percent = total > 0 ? (int) Math.min(100, done * 100 / total) : 0;
        boolean newStage = !stage.equals(this.stage);
        if (newStage) {
            if (terminal && !this.stage.isEmpty()) {
                out.println();
            }
            this.stage = stage;
            lastPercent = -1;
        }
        if (terminal) {
            long now = System.nanoTime();
            if (percent != lastPercent && (percent == 100 || now - lastDraw > 50_000_000L || newStage)) {
                int width = 30, filled = percent * width / 100;
                out.print("\r" + stage + " [" + "#".repeat(filled) + " ".repeat(width - filled) + "] " + percent + "%");
                if (percent == 100) {
                    out.println();
                    this.stage = "";
                }
                out.flush();
                lastDraw = now;
                lastPercent = percent;
            }
        } else if (percent / 25 != lastPercent / 25 || newStage) {
            out.println(stage + ": " + percent + "%");
            lastPercent = percent;
        }
    }
}
