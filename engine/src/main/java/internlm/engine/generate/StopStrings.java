package internlm.engine.generate;

import java.util.List;

/**
 * Finds user stop strings in streamed text, even when they span tokens: text that could still be the start of a
 * stop string is held back until it is known not to be.
 */
public final class StopStrings {
    private final List<String> stops;
    private final StringBuilder pending = new StringBuilder();
    private boolean stopped;

    public StopStrings(List<String> stops) {
        this.stops = stops;
    }

    /** Adds text; returns what can be released now. After a stop string is seen, {@link #stopped()} is true. */
    public String push(String text) {
        if (stopped) {
            return "";
        }
        pending.append(text);
        if (stops.isEmpty()) {
            String out = pending.toString();
            pending.setLength(0);
            return out;
        }
        int cut = -1;
        for (String s : stops) {
            int at = pending.indexOf(s);
            if (at >= 0 && (cut < 0 || at < cut)) {
                cut = at;
            }
        }
        if (cut >= 0) {
            stopped = true;
            String out = pending.substring(0, cut);
            pending.setLength(0);
            return out;
        }
        int keep = 0;
        for (String s : stops) {
            for (int k = Math.min(s.length() - 1, pending.length()); k > keep; k--) {
                if (pending.toString().regionMatches(pending.length() - k, s, 0, k)) {
                    keep = k;
                    break;
                }
            }
        }
        String out = pending.substring(0, pending.length() - keep);
        pending.delete(0, pending.length() - keep);
        return out;
    }

    /** Releases text held back (generation ended without a stop string). */
    public String flush() {
        String out = stopped ? "" : pending.toString();
        pending.setLength(0);
        return out;
    }

    public boolean stopped() {
        return stopped;
    }
}
