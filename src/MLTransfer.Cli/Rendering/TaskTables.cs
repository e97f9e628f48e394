using MLTransfer.Data;
using MLTransfer.Evaluation;
using Spectre.Console;

namespace MLTransfer.Cli.Rendering;

/// <summary>Spectre.Console renderings of multi-task reports.</summary>
public static class TaskTables
{
    /// <summary>The tasks of a manifest: kind, classes, labelled images.</summary>
    /// <param name="console">Where to render.</param>
    /// <param name="manifest">The manifest.</param>
    public static void Manifest(IAnsiConsole console, ImageManifest manifest)
    {
        var table = new Table().Title("Tasks").AddColumn("Task").AddColumn("Kind").AddColumn("Classes / range").AddColumn(new TableColumn("Labelled").RightAligned());
        for (var t = 0; t < manifest.Tasks.Count; t++)
        {
            var task = manifest.Tasks[t];
            var labels = manifest.Examples.Select(e => e.Labels[t]).Where(l => l.Length > 0).ToList();
            var values = task.Kind == TaskKind.Regression
                ? labels.Select(l => ImageManifest.TryParseNumber(l, out var v) ? v : double.NaN).ToList()
                : [];
            var description = task.Kind == TaskKind.Classification
                ? $"{task.Classes.Count}: {string.Join(", ", task.Classes.Take(8))}{(task.Classes.Count > 8 ? ", ..." : "")}"
                : $"{values.Min():G4} .. {values.Max():G4} (mean {values.Average():G4})";
            table.AddRow(Markup.Escape(task.Name), task.Kind.ToString().ToLowerInvariant(), Markup.Escape(description), $"{labels.Count:N0} / {manifest.Examples.Count:N0}");
        }
        console.Write(table);
        if (manifest.Unlabelled > 0)
            console.MarkupLineInterpolated($"[grey]{manifest.Unlabelled} row(s) without any label of the chosen tasks skipped[/]");
    }

    /// <summary>Per-task metrics.</summary>
    /// <param name="console">Where to render.</param>
    /// <param name="reports">The reports, by task.</param>
    /// <param name="title">Table title.</param>
    public static void Metrics(IAnsiConsole console, IReadOnlyDictionary<string, TaskReport> reports, string title)
    {
        var table = new Table().Title(title).AddColumn("Task").AddColumn("Kind").AddColumn(new TableColumn("Images").RightAligned())
            .AddColumn("Acc / MAE").AddColumn("Macro / RMSE").AddColumn("LogLoss / R²");
        foreach (var (name, r) in reports)
        {
            if (r.Classification is { } c)
                table.AddRow(Markup.Escape(name), "classification", c.Count.ToString("N0"), c.MicroAccuracy.ToString("F4"), c.MacroAccuracy.ToString("F4"), c.LogLoss.ToString("F4"));
            else if (r.Regression is { } g)
                table.AddRow(Markup.Escape(name), "regression", g.Count.ToString("N0"), g.MeanAbsoluteError.ToString("F3"), g.RootMeanSquaredError.ToString("F3"), g.RSquared.ToString("F4"));
            else
                table.AddRow(Markup.Escape(name), r.Kind.ToString().ToLowerInvariant(), "0", "-", "-", "-");
        }
        console.Write(table);
    }
}
