using System.Globalization;
using System.Net;
using System.Text;
using MLTransfer.Evaluation;
using MLTransfer.IO;

namespace MLTransfer.Reporting;

/// <summary>
/// Writes a <see cref="ModelReport"/> as one self-contained HTML file: every picture is embedded as a data URI, the
/// styles are inline, and a content-security policy forbids any network access at view time.
/// </summary>
/// <remarks>
/// Sections carry stable ids (<c>summary</c>, <c>curves</c>, <c>metrics</c>, <c>confusion</c>, <c>per-class</c>,
/// <c>worst</c>, <c>rejected</c>, <c>domains</c>, <c>task-&lt;name&gt;</c>). A small inline script records, once the page
/// has loaded, how many pictures it has and how many the browser decoded (<c>data-images</c> and
/// <c>data-images-decoded</c> on <c>body</c>) and logs a console error for any picture that failed.
/// </remarks>
public static class HtmlReport
{
    /// <summary>Renders the report and writes it atomically.</summary>
    /// <param name="report">The report.</param>
    /// <param name="path">The <c>.html</c> file.</param>
    public static void Write(ModelReport report, string path) => AtomicFile.WriteAllText(path, Render(report));

    /// <summary>
    /// The path of a model's report: <c>&lt;model&gt;.report.html</c> beside it (<c>models/a.zip</c> → <c>models/a.report.html</c>),
    /// the name shortened like every companion file when it would be too long for the file system (<see cref="OutputFile.Companion"/>).
    /// </summary>
    /// <param name="modelPath">The model file.</param>
    public static string PathFor(string modelPath)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(modelPath);
        return OutputFile.Companion(modelPath, ".report.html");
    }

    /// <summary>True when the file is an HTML document (starts with <c>&lt;!DOCTYPE html</c> or <c>&lt;html</c>), which a new report may replace.</summary>
    /// <param name="path">A file.</param>
    public static bool IsHtml(string path)
    {
        try
        {
            using var reader = new StreamReader(path);
            var buffer = new char[64];
            var start = new string(buffer, 0, reader.ReadBlock(buffer)).TrimStart();
            return start.StartsWith("<!DOCTYPE html", StringComparison.OrdinalIgnoreCase) || start.StartsWith("<html", StringComparison.OrdinalIgnoreCase);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>Renders the report as HTML.</summary>
    /// <param name="report">The report.</param>
    public static string Render(ModelReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var html = new StringBuilder();
        html.Append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
            .Append("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\n")
            .Append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
            .Append("<title>").Append(E(report.Title)).Append("</title>\n<style>").Append(Css).Append("</style>\n</head>\n<body>\n");
        var sections = new List<(string Id, string Title)> { ("summary", "Summary") };
        if (report.History.Count > 0)
            sections.Add(("curves", "Training curves"));
        if (report.Metrics is not null)
            sections.AddRange([("confusion", "Confusion matrix"), ("per-class", "Per class")]);
        sections.Add(("worst", "Worst predictions"));
        if (report.Domains is not null)
            sections.Add(("domains", "Domains"));
        sections.AddRange(report.Tasks.Keys.Select(t => ($"task-{Id(t)}", $"Task {t}")));
        sections.Add(("rejected", "Rejected images"));

        html.Append("<header><div class=\"wrap\"><div class=\"brand\">MLTransfer report</div><h1>").Append(E(report.Title)).Append("</h1>");
        if (report.Subtitle is not null)
            html.Append("<div class=\"sub\">").Append(E(report.Subtitle)).Append("</div>");
        html.Append("<nav>");
        foreach (var (id, title) in sections)
            html.Append("<a href=\"#").Append(id).Append("\">").Append(E(title)).Append("</a>");
        html.Append("</nav></div></header>\n<main class=\"wrap\">\n");

        Summary(html, report);
        if (report.History.Count > 0)
        {
            Open(html, "curves", "Training curves", "Loss and accuracy per epoch, on the training and the validation images.");
            Image(html, Charts.History(report.History, 1100, 400), "Training curves", "chart");
            Close(html);
        }
        if (report.Metrics is { } metrics)
        {
            Open(html, "confusion", $"Confusion matrix ({report.MetricsLabel.ToLowerInvariant()})", "Rows: true class; columns: predicted class. Colour: share of the row.");
            Confusion(html, metrics);
            Close(html);
            Open(html, "per-class", "Per class", "Precision, recall and F1 of each class.");
            PerClass(html, metrics);
            Close(html);
        }
        Gallery(html, report);
        if (report.Domains is { } domains)
        {
            Open(html, "domains", "Source and target domains",
                $"Features of source and target images projected on their two principal components, before adaptation and after {domains.Method}: the closer the clouds, the less the head sees the shift.");
            Image(html, Charts.DomainProjection(domains), "Domain projection", "chart");
            Close(html);
        }
        foreach (var (name, task) in report.Tasks)
            TaskSection(html, name, task);
        Rejected(html, report);
        html.Append("</main>\n<footer class=\"wrap\">Self-contained report written by MLTransfer: no network access is needed to view it.</footer>\n")
            .Append("<script>").Append(Script).Append("</script>\n</body>\n</html>\n");
        return html.ToString();
    }

    private static void Summary(StringBuilder html, ModelReport report)
    {
        Open(html, "summary", "Summary", null);
        html.Append("<div class=\"tiles\">");
        if (report.Metrics is { } m)
        {
            Tile(html, $"{report.MetricsLabel} accuracy", m.MicroAccuracy.ToString("P1", CultureInfo.InvariantCulture), $"{m.Count:N0} images", Tone(m.MicroAccuracy));
            Tile(html, "Macro accuracy", m.MacroAccuracy.ToString("P1", CultureInfo.InvariantCulture), "mean of per-class recall", Tone(m.MacroAccuracy));
            Tile(html, "Log-loss", m.LogLoss.ToString("F3", CultureInfo.InvariantCulture), "lower is better", "");
            Tile(html, "Classes", m.Classes.Count.ToString(CultureInfo.InvariantCulture), "", "");
        }
        foreach (var (name, task) in report.Tasks)
        {
            if (task.Classification is { Count: > 0 } c)
                Tile(html, $"{name}: accuracy", c.MicroAccuracy.ToString("P1", CultureInfo.InvariantCulture), $"{c.Count:N0} images", Tone(c.MicroAccuracy));
            else if (task.Regression is { Count: > 0 } r)
                Tile(html, $"{name}: MAE", r.MeanAbsoluteError.ToString("G4", CultureInfo.InvariantCulture), $"R² {r.RSquared:F3}", "");
        }
        Tile(html, "Rejected images", report.Rejected.Count.ToString("N0", CultureInfo.InvariantCulture), "unreadable, skipped", report.Rejected.Count > 0 ? "warn" : "");
        html.Append("</div><table class=\"kv\">");
        foreach (var (key, value) in report.Summary)
            html.Append("<tr><th>").Append(E(key)).Append("</th><td>").Append(E(value)).Append("</td></tr>");
        html.Append("</table>");
        Close(html);
    }

    private static void Confusion(StringBuilder html, ClassificationReport m)
    {
        var k = m.Classes.Count;
        html.Append("<div class=\"scroll\"><table class=\"confusion\"><tr><th class=\"corner\">true \\ predicted</th>");
        foreach (var c in m.Classes)
            html.Append("<th>").Append(E(c)).Append("</th>");
        html.Append("</tr>");
        for (var i = 0; i < k; i++)
        {
            var total = Math.Max(1, m.ConfusionMatrix[i].Sum());
            html.Append("<tr><th>").Append(E(m.Classes[i])).Append("</th>");
            for (var j = 0; j < k; j++)
            {
                var n = m.ConfusionMatrix[i][j];
                var share = (double)n / total;
                var colour = i == j ? "22,163,74" : "220,38,38";
                var style = n == 0 ? "" : $" style=\"background:rgba({colour},{0.12 + 0.78 * share:F2});{(share > 0.55 ? "color:#fff;" : "")}\"";
                html.Append("<td").Append(style).Append(" title=\"").Append(E($"{m.Classes[i]} predicted as {m.Classes[j]}: {n} ({share:P0})")).Append("\">")
                    .Append(n == 0 ? "<span class=\"zero\">·</span>" : n.ToString(CultureInfo.InvariantCulture)).Append("</td>");
            }
            html.Append("</tr>");
        }
        html.Append("</table></div>");
    }

    private static void PerClass(StringBuilder html, ClassificationReport m)
    {
        html.Append("<table class=\"metrics\"><tr><th>Class</th><th>Precision</th><th>Recall</th><th>F1</th><th class=\"bar\"></th><th>Support</th></tr>");
        foreach (var c in m.PerClass)
            html.Append("<tr><td class=\"name\">").Append(E(c.Class)).Append("</td><td>").Append(F3(c.Precision)).Append("</td><td>").Append(F3(c.Recall))
                .Append("</td><td><b>").Append(F3(c.F1)).Append("</b></td><td class=\"bar\"><div class=\"track\"><div class=\"fill ").Append(Tone(c.F1))
                .Append("\" style=\"width:").Append((c.F1 * 100).ToString("F1", CultureInfo.InvariantCulture)).Append("%\"></div></div></td><td>")
                .Append(c.Support.ToString("N0", CultureInfo.InvariantCulture)).Append("</td></tr>");
        html.Append("</table>");
    }

    private static void Gallery(StringBuilder html, ModelReport report)
    {
        var note = report.WorstPredictions.Count == 0
            ? "No per-image predictions were recorded (no validation images, or a technique that does not record them)."
            : $"The {report.WorstPredictions.Count} images with the largest loss (−log of the probability given to the true class)"
              + (report.HeatMapMethod is { } method ? $"; heat maps ({method}) show where the predicted class comes from." : ".");
        Open(html, "worst", "Worst predictions", note);
        html.Append("<div class=\"gallery\">");
        foreach (var w in report.WorstPredictions)
        {
            var wrong = w.Label != w.Predicted;
            html.Append("<figure class=\"item").Append(wrong ? " wrong" : "").Append("\"><div class=\"pics\">");
            Image(html, w.Photo, Path.GetFileName(w.ImagePath), "pic");
            if (w.HeatMap is not null)
                Image(html, w.HeatMap, $"Heat map of {w.Predicted}", "pic");
            html.Append("</div><figcaption><div class=\"verdict\"><span class=\"truth\">").Append(E(w.Label)).Append("</span><span class=\"arrow\">→</span><span class=\"pred\">")
                .Append(E(w.Predicted)).Append("</span><span class=\"p\">").Append(w.PredictedProbability.ToString("P0", CultureInfo.InvariantCulture))
                .Append("</span></div><div class=\"detail\">p(").Append(E(w.Label)).Append(") = ").Append(w.LabelProbability.ToString("P1", CultureInfo.InvariantCulture))
                .Append("</div><div class=\"file\" title=\"").Append(E(w.ImagePath)).Append("\">").Append(E(Path.GetFileName(w.ImagePath))).Append("</div></figcaption></figure>");
        }
        html.Append("</div>");
        Close(html);
    }

    private static void TaskSection(StringBuilder html, string name, TaskReport task)
    {
        Open(html, $"task-{Id(name)}", $"Task {name} ({task.Kind.ToString().ToLowerInvariant()})",
            task.Missing > 0 ? $"{task.Missing:N0} image(s) without a label for this task were skipped." : null);
        if (task.Classification is { } c)
        {
            html.Append("<div class=\"tiles\">");
            Tile(html, "Accuracy", c.MicroAccuracy.ToString("P1", CultureInfo.InvariantCulture), $"{c.Count:N0} images", Tone(c.MicroAccuracy));
            Tile(html, "Macro accuracy", c.MacroAccuracy.ToString("P1", CultureInfo.InvariantCulture), "", Tone(c.MacroAccuracy));
            Tile(html, "Log-loss", c.LogLoss.ToString("F3", CultureInfo.InvariantCulture), "", "");
            html.Append("</div>");
            Confusion(html, c);
            PerClass(html, c);
        }
        else if (task.Regression is { } r)
        {
            html.Append("<div class=\"tiles\">");
            Tile(html, "MAE", r.MeanAbsoluteError.ToString("G4", CultureInfo.InvariantCulture), $"{r.Count:N0} images", "");
            Tile(html, "RMSE", r.RootMeanSquaredError.ToString("G4", CultureInfo.InvariantCulture), "", "");
            Tile(html, "R²", double.IsNaN(r.RSquared) ? "–" : r.RSquared.ToString("F3", CultureInfo.InvariantCulture), "", "");
            html.Append("</div>");
        }
        Close(html);
    }

    private static void Rejected(StringBuilder html, ModelReport report)
    {
        const int shown = 500;
        Open(html, "rejected", "Rejected images", report.Rejected.Count == 0 ? "Every image could be read." : $"{report.Rejected.Count:N0} image(s) could not be used and were skipped.");
        if (report.Rejected.Count > 0)
        {
            html.Append("<table class=\"rejected\"><tr><th>Image</th><th>Reason</th></tr>");
            foreach (var r in report.Rejected.Take(shown))
                html.Append("<tr><td>").Append(E(r.Path)).Append("</td><td>").Append(E(r.Reason)).Append("</td></tr>");
            html.Append("</table>");
            if (report.Rejected.Count > shown)
                html.Append("<p class=\"note\">… and ").Append((report.Rejected.Count - shown).ToString("N0", CultureInfo.InvariantCulture)).Append(" more.</p>");
        }
        Close(html);
    }

    private static void Open(StringBuilder html, string id, string title, string? note)
    {
        html.Append("<section id=\"").Append(id).Append("\"><h2>").Append(E(title)).Append("</h2>");
        if (note is not null)
            html.Append("<p class=\"note\">").Append(E(note)).Append("</p>");
    }

    private static void Close(StringBuilder html) => html.Append("</section>\n");

    private static void Tile(StringBuilder html, string label, string value, string detail, string tone) =>
        html.Append("<div class=\"tile ").Append(tone).Append("\"><div class=\"label\">").Append(E(label)).Append("</div><div class=\"value\">").Append(E(value))
            .Append("</div><div class=\"detail\">").Append(E(detail)).Append("</div></div>");

    private static void Image(StringBuilder html, byte[] png, string alt, string cssClass) =>
        html.Append("<img class=\"").Append(cssClass).Append("\" alt=\"").Append(E(alt)).Append("\" src=\"data:image/png;base64,").Append(Convert.ToBase64String(png)).Append("\">");

    private static string Tone(double score) => score >= 0.9 ? "good" : score >= 0.7 ? "fair" : "poor";

    private static string F3(double value) => value.ToString("F3", CultureInfo.InvariantCulture);

    private static string E(string text) => WebUtility.HtmlEncode(text);

    private static string Id(string name) => string.Concat(name.Select(c => char.IsAsciiLetterOrDigit(c) ? char.ToLowerInvariant(c) : '-'));

    private const string Script = """
        window.addEventListener('load', function () {
          var images = Array.prototype.slice.call(document.images);
          var decoded = images.filter(function (i) { return i.complete && i.naturalWidth > 0; });
          document.body.setAttribute('data-images', String(images.length));
          document.body.setAttribute('data-images-decoded', String(decoded.length));
          images.forEach(function (i) { if (decoded.indexOf(i) < 0) console.error('MLTransfer report: picture "' + i.alt + '" could not be decoded'); });
        });
        """;

    private const string Css = """
        :root { --ink:#0f172a; --muted:#64748b; --line:#e2e8f0; --bg:#f8fafc; --card:#fff; --accent:#4f46e5; --good:#16a34a; --fair:#d97706; --poor:#dc2626; }
        * { box-sizing:border-box; }
        body { margin:0; font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif; color:var(--ink); background:var(--bg); }
        .wrap { max-width:1180px; margin:0 auto; padding:0 24px; }
        header { background:linear-gradient(120deg,#312e81,#4f46e5 55%,#0ea5e9); color:#fff; padding:28px 0 0; }
        header .brand { text-transform:uppercase; letter-spacing:.12em; font-size:12px; opacity:.8; }
        header h1 { margin:4px 0 2px; font-size:28px; font-weight:650; }
        header .sub { opacity:.8; font-size:13px; word-break:break-all; }
        nav { display:flex; flex-wrap:wrap; gap:4px; margin-top:18px; }
        nav a { color:#fff; text-decoration:none; font-size:13px; padding:8px 12px; border-radius:8px 8px 0 0; background:rgba(255,255,255,.12); }
        nav a:hover { background:rgba(255,255,255,.25); }
        section { background:var(--card); border:1px solid var(--line); border-radius:14px; padding:22px 24px; margin:22px 0; box-shadow:0 1px 2px rgba(15,23,42,.04); }
        h2 { margin:0 0 6px; font-size:19px; }
        .note { color:var(--muted); margin:0 0 14px; font-size:14px; }
        .tiles { display:grid; grid-template-columns:repeat(auto-fill,minmax(170px,1fr)); gap:12px; margin:10px 0 18px; }
        .tile { border:1px solid var(--line); border-radius:12px; padding:14px 16px; background:#fbfdff; border-top:4px solid var(--accent); }
        .tile.good { border-top-color:var(--good); } .tile.fair { border-top-color:var(--fair); } .tile.poor, .tile.warn { border-top-color:var(--poor); }
        .tile .label { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.05em; }
        .tile .value { font-size:28px; font-weight:700; margin-top:2px; }
        .tile .detail { color:var(--muted); font-size:12px; min-height:1em; }
        table { border-collapse:collapse; }
        table.kv th { text-align:left; color:var(--muted); font-weight:500; padding:4px 18px 4px 0; vertical-align:top; }
        table.kv td { padding:4px 0; word-break:break-word; }
        .scroll { overflow-x:auto; }
        table.confusion th, table.confusion td { border:1px solid var(--line); padding:6px 9px; text-align:center; min-width:38px; font-variant-numeric:tabular-nums; }
        table.confusion th { background:#f1f5f9; font-weight:600; font-size:13px; }
        table.confusion th.corner { font-weight:400; color:var(--muted); font-size:12px; }
        table.confusion .zero { color:#cbd5e1; }
        table.metrics { width:100%; }
        table.metrics th, table.metrics td { padding:7px 10px; border-bottom:1px solid var(--line); text-align:right; font-variant-numeric:tabular-nums; }
        table.metrics th:first-child, table.metrics td.name { text-align:left; }
        td.bar { width:32%; } .track { background:#eef2f7; border-radius:6px; height:10px; overflow:hidden; }
        .fill { height:100%; border-radius:6px; background:var(--good); } .fill.fair { background:var(--fair); } .fill.poor { background:var(--poor); }
        .gallery { display:grid; grid-template-columns:repeat(auto-fill,minmax(340px,1fr)); gap:16px; }
        figure.item { margin:0; border:1px solid var(--line); border-radius:12px; overflow:hidden; background:#fff; }
        figure.item.wrong { border-color:#fecaca; }
        .pics { display:flex; gap:2px; background:#0f172a; }
        .pics img { width:50%; height:auto; display:block; }
        .pics img:only-child { width:100%; }
        figcaption { padding:10px 12px; }
        .verdict { display:flex; align-items:center; gap:8px; font-weight:650; }
        .truth { color:var(--good); } .wrong .pred { color:var(--poor); } .arrow { color:var(--muted); }
        .verdict .p { margin-left:auto; background:#eef2ff; color:#3730a3; border-radius:999px; padding:1px 9px; font-size:13px; }
        figcaption .detail { color:var(--muted); font-size:13px; }
        figcaption .file { color:var(--muted); font-size:12px; overflow:hidden; text-overflow:ellipsis; white-space:nowrap; }
        img.chart { max-width:100%; height:auto; display:block; margin:0 auto; }
        table.rejected { width:100%; font-size:13px; } table.rejected th, table.rejected td { text-align:left; padding:6px 8px; border-bottom:1px solid var(--line); word-break:break-all; }
        footer { color:var(--muted); font-size:12px; padding:10px 24px 40px; }
        """;
}
