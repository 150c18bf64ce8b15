package internlm.engine.bench;

import java.util.Arrays;

/** Mean, sample standard deviation (n − 1), median, min and max of a set of measurements. */
public record Stats(int n, double mean, double stddev, double median, double min, double max) {

    public static Stats of(double[] v) {
        if (v.length == 0) {
            throw new IllegalArgumentException("no samples");
        }
        double sum = 0;
        for (double x : v) {
            sum += x;
        }
        double mean = sum / v.length, ss = 0;
        for (double x : v) {
            ss += (x - mean) * (x - mean);
        }
        double[] s = v.clone();
        Arrays.sort(s);
        int n = s.length;
        double median = n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
        return new Stats(n, mean, n > 1 ? Math.sqrt(ss / (n - 1)) : 0, median, s[0], s[n - 1]);
    }
}
