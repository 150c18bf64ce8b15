package internlm.engine.bench;

import java.util.List;

/**
 * What {@code bench} runs: every combination of KV depth × concurrent sequences × (prompt sizes, then decode sizes),
 * {@code reps} timed repetitions each after one warm-up, on every device in turn (one model load per device).
 * {@code devices}: "cpu" and TornadoVM "B:D" ids; {@code probeBytes}: size of the bandwidth probe (0 = automatic).
 */
public record BenchPlan(int[] prompts, int[] gens, int[] depths, int[] sequences, int reps, List<String> devices,
                        int threads, boolean kvCacheF16, long probeBytes) {

    public BenchPlan {
        check(prompts, "-p", 1);
        check(gens, "-n", 1);
        check(depths, "-d", 0);
        check(sequences, "-b", 1);
        if (prompts.length + gens.length == 0) {
            throw new IllegalArgumentException("nothing to measure: give -p or -n sizes");
        }
        if (reps < 1) {
            throw new IllegalArgumentException("-r must be at least 1");
        }
        if (devices.isEmpty()) {
            throw new IllegalArgumentException("--devices names no device");
        }
    }

    private static void check(int[] v, String option, int min) {
        for (int x : v) {
            if (x < min) {
                throw new IllegalArgumentException(option + " values must be at least " + min + ", got " + x);
            }
        }
    }

    /** Positions the longest test needs in one sequence. */
    public int context() {
        int d = 0, t = 0;
        for (int x : depths) {
            d = Math.max(d, x);
        }
        for (int x : prompts) {
            t = Math.max(t, x);
        }
        for (int x : gens) {
            t = Math.max(t, x);
        }
        return d + t + 8;
    }

    public int maxSequences() {
        int m = 1;
        for (int b : sequences) {
            m = Math.max(m, b);
        }
        return m;
    }

    /** Parses "128,512" (empty → none). */
    public static int[] list(String s, String option) {
        if (s == null || s.isBlank()) {
            return new int[0];
        }
        String[] p = s.split(",");
        int[] v = new int[p.length];
        for (int i = 0; i < p.length; i++) {
            try {
                v[i] = Integer.parseInt(p[i].trim());
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(option + " takes comma-separated numbers, got '" + s + "'");
            }
        }
        return v;
    }
}
