package internlm.engine.bench;

import java.util.List;
import java.util.Locale;

/** Small self-contained SVG charts (no scripts, no external resources): grouped bars and lines. */
public final class Svg {
    private Svg() {}

    /** One named series of values (NaN = no value). */
    public record Series(String name, double[] values) {}

    private static final String[] COLORS = {"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};
    private static final int W = 820, H = 400, L = 70, R = 250, T = 40, B = 110;

    static String esc(String s) {
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&quot;");
    }

    private static double niceMax(double v) {
        if (!(v > 0)) {
            return 1;
        }
        double p = Math.pow(10, Math.floor(Math.log10(v)));
        for (double m : new double[] {1, 2, 2.5, 5, 10}) {
            if (m * p >= v) {
                return m * p;
            }
        }
        return 10 * p;
    }

    private static String num(double v) {
        return v >= 100 ? String.format(Locale.ROOT, "%.0f", v) : v >= 10 ? String.format(Locale.ROOT, "%.1f", v) : String.format(Locale.ROOT, "%.2f", v);
    }

    private static StringBuilder frame(String title, String yLabel, double max) {
        StringBuilder s = new StringBuilder();
        s.append(String.format(Locale.ROOT, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">%n", W, H, W, H));
        s.append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
        s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"22\" font-size=\"15\" font-weight=\"bold\">%s</text>%n", L, esc(title)));
        int ph = H - T - B;
        for (int i = 0; i <= 5; i++) {
            double v = max * i / 5;
            double y = T + ph - ph * i / 5.0;
            s.append(String.format(Locale.ROOT, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>%n", L, W - R, y, y));
            s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>%n", L - 6, y + 4, num(v)));
        }
        s.append(String.format(Locale.ROOT, "<text transform=\"translate(16,%d) rotate(-90)\" text-anchor=\"middle\">%s</text>%n", T + ph / 2, esc(yLabel)));
        s.append(String.format(Locale.ROOT, "<line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\" stroke=\"#333\"/>%n", L, W - R, T + ph, T + ph));
        return s;
    }

    private static void legend(StringBuilder s, List<Series> series) {
        for (int i = 0; i < series.size(); i++) {
            int y = T + 10 + 18 * i;
            s.append(String.format(Locale.ROOT, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"%s\"/>%n", W - R + 12, y - 10, COLORS[i % COLORS.length]));
            s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\">%s</text>%n", W - R + 30, y, esc(shorten(series.get(i).name(), 34))));
        }
    }

    private static String shorten(String s, int n) {
        return s.length() <= n ? s : s.substring(0, n - 1) + "…";
    }

    private static double max(List<Series> series) {
        double m = 0;
        for (Series x : series) {
            for (double v : x.values()) {
                if (!Double.isNaN(v)) {
                    m = Math.max(m, v);
                }
            }
        }
        return niceMax(m);
    }

    /** Bars grouped by category, one bar per series in each group, values written above the bars. */
    public static String bars(String title, String yLabel, List<String> categories, List<Series> series) {
        double max = max(series);
        StringBuilder s = frame(title, yLabel, max);
        int pw = W - L - R, ph = H - T - B;
        double gw = pw / (double) Math.max(1, categories.size());
        double bw = Math.max(2, (gw * 0.8) / Math.max(1, series.size()));
        for (int c = 0; c < categories.size(); c++) {
            double gx = L + c * gw + gw * 0.1;
            for (int i = 0; i < series.size(); i++) {
                double v = series.get(i).values()[c];
                if (Double.isNaN(v)) {
                    continue;
                }
                double h = ph * v / max, x = gx + i * bw, y = T + ph - h;
                s.append(String.format(Locale.ROOT, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"><title>%s %s: %s</title></rect>%n",
                        x, y, bw - 1, h, COLORS[i % COLORS.length], esc(series.get(i).name()), esc(categories.get(c)), num(v)));
                s.append(String.format(Locale.ROOT, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"10\">%s</text>%n", x + bw / 2, y - 3, num(v)));
            }
            double cx = L + c * gw + gw / 2;
            if (categories.size() > 4) { // many groups: slanted labels
                s.append(String.format(Locale.ROOT, "<text transform=\"translate(%.1f,%d) rotate(-30)\" text-anchor=\"end\" font-size=\"11\">%s</text>%n",
                        cx, T + ph + 14, esc(shorten(categories.get(c), 30))));
            } else {
                s.append(String.format(Locale.ROOT, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>%n", cx, T + ph + 18,
                        esc(shorten(categories.get(c), Math.max(8, (int) (gw / 6.5))))));
            }
        }
        legend(s, series);
        return s.append("</svg>\n").toString();
    }

    /** Lines over numeric x values (one per series), with markers. */
    public static String lines(String title, String xLabel, String yLabel, double[] xs, List<Series> series) {
        double max = max(series);
        StringBuilder s = frame(title, yLabel, max);
        int pw = W - L - R, ph = H - T - B;
        double xmin = xs[0], xmax = xs[xs.length - 1];
        java.util.function.DoubleUnaryOperator px = x -> xmax == xmin ? L + pw / 2.0 : L + 10 + (pw - 20) * (x - xmin) / (xmax - xmin);
        for (double x : xs) {
            s.append(String.format(Locale.ROOT, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>%n", px.applyAsDouble(x), T + ph + 18, x == Math.rint(x) ? String.format(Locale.ROOT, "%.0f", x) : num(x)));
        }
        s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s</text>%n", L + pw / 2, T + ph + 40, esc(xLabel)));
        for (int i = 0; i < series.size(); i++) {
            StringBuilder path = new StringBuilder();
            double[] v = series.get(i).values();
            String col = COLORS[i % COLORS.length];
            for (int k = 0; k < xs.length; k++) {
                if (Double.isNaN(v[k])) {
                    continue;
                }
                double x = px.applyAsDouble(xs[k]), y = T + ph - ph * v[k] / max;
                path.append(path.isEmpty() ? "M" : "L").append(String.format(Locale.ROOT, "%.1f %.1f ", x, y));
                s.append(String.format(Locale.ROOT, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"><title>%s: %s</title></circle>%n", x, y, col, esc(series.get(i).name()), num(v[k])));
            }
            if (!path.isEmpty()) {
                s.append(String.format(Locale.ROOT, "<path d=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"/>%n", path.toString().trim(), col));
            }
        }
        legend(s, series);
        return s.append("</svg>\n").toString();
    }
}
