using System.Text.Json;
using Microsoft.ML;
using MLTransfer.Cli.Commands.Train;
using MLTransfer.Cli.Rendering;
using MLTransfer.Data;
using MLTransfer.Evaluation;
using MLTransfer.Reporting;
using Spectre.Console;

namespace MLTransfer.Cli.Commands.Evaluate;

/// <summary>
/// <c>mltransfer evaluate</c> for multi-task models: per-task metrics on a manifest (or, for a model with one
/// classification task, a class folder), printed as a table or, with <c>--json</c>, as one JSON object whose
/// <c>"tasks"</c> holds one entry per task.
/// </summary>
public static class MultiTaskEvaluation
{
    /// <summary>True when the model has per-task outputs (<c>Score_T</c>).</summary>
    /// <param name="model">A loaded model.</param>
    public static bool IsMultiTask(ITransformer model) => MultiTaskEvaluator.Tasks(model).Count > 0;

    /// <summary>Evaluates and prints; returns the exit code.</summary>
    /// <param name="console">Human-readable output (stderr when <paramref name="json"/>).</param>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="model">The loaded model.</param>
    /// <param name="manifest">The labelled manifest CSV; null to use <paramref name="folder"/>.</param>
    /// <param name="folder">Class folders, when the model has exactly one classification task.</param>
    /// <param name="json">Print exactly one JSON object on stdout.</param>
    /// <param name="strict">Fail on unreadable images.</param>
    /// <param name="reportPath">Where to write the HTML report with one section per task; null writes none.</param>
    /// <param name="modelPath">The model file, shown in the report.</param>
    public static int Run(IAnsiConsole console, MLContext mlContext, ITransformer model, string? manifest, string? folder, bool json, bool strict,
        string? reportPath = null, string modelPath = "")
    {
        var tasks = MultiTaskEvaluator.Tasks(model);
        string? folderTask = null;
        if (manifest is null)
        {
            var classification = tasks.Where(t => t.Value == TaskKind.Classification).Select(t => t.Key).ToList();
            if (classification.Count != 1 || folder is null)
                throw new ArgumentException($"This model has the tasks '{string.Join("', '", tasks.Keys)}': give --manifest labels.csv.");
            folderTask = classification[0];
        }
        var images = MultiTaskRunner.LoadManifest(console, manifest, folder, folderTask, strict, tasks);
        var reports = MultiTaskEvaluator.Evaluate(mlContext, model, images);
        if (reportPath is not null)
        {
            HtmlReport.Write(new ModelReport
            {
                Title = $"{Path.GetFileName(modelPath)}: evaluation",
                Subtitle = Path.GetFullPath(modelPath),
                Summary = [new("Evaluated", Path.GetFullPath(manifest ?? folder!)), new("Images", images.Examples.Count.ToString("N0")), new("Tasks", string.Join(", ", reports.Keys))],
                MetricsLabel = "Evaluation",
                Rejected = images.Rejected,
                Tasks = reports,
            }, reportPath);
            console.MarkupLineInterpolated($"[grey]report: {Path.GetFullPath(reportPath)}[/]");
        }
        if (json)
        {
            Console.Out.WriteLine(JsonSerializer.Serialize(ToJson(reports, images)));
            return 0;
        }
        TaskTables.Metrics(console, reports, "Per-task metrics");
        return 0;
    }

    /// <summary>The JSON shape: <c>{"n": images, "skipped": unreadable, "tasks": {"T": {...}}}</c>.</summary>
    /// <param name="reports">Per-task reports.</param>
    /// <param name="images">The evaluated manifest.</param>
    public static Dictionary<string, object> ToJson(IReadOnlyDictionary<string, TaskReport> reports, ImageManifest images) => new()
    {
        ["n"] = images.Examples.Count,
        ["skipped"] = images.Rejected.Count,
        ["tasks"] = reports.ToDictionary(p => p.Key, p => p.Value.ToJson()),
    };
}
