using MLTransfer.Evaluation;
using MLTransfer.Techniques;
using Spectre.Console;

namespace MLTransfer.Cli.Rendering;

/// <summary>Spectre.Console renderings of reports.</summary>
public static class Reports
{
    /// <summary>Training summary table.</summary>
    /// <param name="console">Where to render.</param>
    /// <param name="report">The training report.</param>
    /// <param name="output">The model path.</param>
    /// <param name="skipped">Images skipped while reading the folders (the report adds those that failed featurisation).</param>
    public static void Summary(IAnsiConsole console, TrainingReport report, string output, IReadOnlyList<MLTransfer.Data.RejectedImage>? skipped = null)
    {
        ArgumentNullException.ThrowIfNull(report);
        var skippedCount = report.Rejected.Concat(skipped ?? []).Select(r => r.Path).Distinct(StringComparer.Ordinal).Count();
        var table = new Table().Title("Training summary").AddColumn("").AddColumn("");
        table.HideHeaders();
        table.AddRow("Technique", report.Technique);
        if (report.Classes.Count > 0)
            table.AddRow("Classes", Markup.Escape($"{report.Classes.Count}: {string.Join(", ", report.Classes.Take(12))}{(report.Classes.Count > 12 ? ", ..." : "")}"));
        if (report.Tasks.Count > 0)
            table.AddRow("Tasks", Markup.Escape(string.Join(", ", report.Tasks.Keys)));
        table.AddRow("Train / validation images", $"{report.TrainCount:N0} / {report.ValidationCount:N0}{(report.OutOfFold ? " (out-of-fold)" : "")}");
        table.AddRow("Skipped (unreadable)", skippedCount.ToString("N0"));
        table.AddRow("Features from cache", $"{report.FromCache:N0} / {report.TrainCount + report.ValidationCount:N0}");
        table.AddRow("Featurisation time", $"{report.FeaturizationTime.TotalSeconds:F1} s");
        if (report.HeadL2Regularization is { } l2)
            table.AddRow("Head L2 regularisation", l2.ToString(System.Globalization.CultureInfo.InvariantCulture));
        table.AddRow("Training time", $"{report.TrainingTime.TotalSeconds:F1} s");
        table.AddRow("Model", Markup.Escape(Path.GetFullPath(output)));
        console.Write(table);
    }

    /// <summary>Metrics table, per-class table and confusion matrix.</summary>
    /// <param name="console">Where to render.</param>
    /// <param name="report">The metrics.</param>
    public static void Metrics(IAnsiConsole console, ClassificationReport report)
    {
        var summary = new Table().AddColumn("Images").AddColumn("Micro-accuracy").AddColumn("Macro-accuracy").AddColumn("Log-loss");
        summary.AddRow(report.Count.ToString("N0"), report.MicroAccuracy.ToString("F4"), report.MacroAccuracy.ToString("F4"), report.LogLoss.ToString("F4"));
        console.Write(summary);
        var perClass = new Table().AddColumn("Class").AddColumn("Precision").AddColumn("Recall").AddColumn("F1").AddColumn("Support");
        foreach (var m in report.PerClass)
            perClass.AddRow(Markup.Escape(m.Class), m.Precision.ToString("F3"), m.Recall.ToString("F3"), m.F1.ToString("F3"), m.Support.ToString());
        console.Write(perClass);
        console.Write(ConfusionMatrix(report));
    }

    /// <summary>The confusion matrix as a table (rows: truth, columns: prediction).</summary>
    /// <param name="report">The metrics.</param>
    public static Table ConfusionMatrix(ClassificationReport report)
    {
        var table = new Table().Title("Confusion matrix (rows: true class, columns: predicted)");
        table.AddColumn("");
        foreach (var c in report.Classes)
            table.AddColumn(new TableColumn(Markup.Escape(c)).RightAligned());
        for (var i = 0; i < report.Classes.Count; i++)
        {
            var cells = new List<string> { Markup.Escape(report.Classes[i]) };
            for (var j = 0; j < report.Classes.Count; j++)
            {
                var n = report.ConfusionMatrix[i][j];
                cells.Add(n == 0 ? "[grey]0[/]" : i == j ? $"[green]{n}[/]" : $"[red]{n}[/]");
            }
            table.AddRow(cells.ToArray());
        }
        return table;
    }
}
