using System.ComponentModel;
using System.Text.Json;
using MLTransfer.Cli.Commands.Train;
using MLTransfer.Cli.Rendering;
using MLTransfer.Evaluation;
using MLTransfer.Export;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MLTransfer.Cli.Commands;

/// <summary>Arguments of <c>mltransfer evaluate</c>.</summary>
public sealed class EvaluateSettings : CommonSettings
{
    /// <summary>The model.</summary>
    [CommandArgument(0, "<model>")]
    [Description("The ML.NET .zip model.")]
    public string Model { get; set; } = "";

    /// <summary>The labelled folder.</summary>
    [CommandArgument(1, "[folder]")]
    [Description("Labelled images, one sub-folder per class.")]
    public string? Folder { get; set; }

    /// <summary>Multi-task: the labels as a manifest.</summary>
    [CommandOption("--manifest")]
    [Description("Multi-task: CSV path,<task1>,<task2>,... (paths relative to the CSV) to evaluate each task on.")]
    public string? Manifest { get; set; }

    /// <summary>JSON output.</summary>
    [CommandOption("--json")]
    [Description("Print exactly one JSON object on stdout.")]
    public bool Json { get; set; }

    /// <summary>Strict mode.</summary>
    [CommandOption("--strict")]
    [Description("Fail on the first unreadable image.")]
    public bool Strict { get; set; }

    /// <summary>Confusion-matrix plot.</summary>
    [CommandOption("--plot")]
    [Description("Also write the confusion matrix as a PNG to this path (.png).")]
    public string? Plot { get; set; }

    /// <inheritdoc />
    public override ValidationResult Validate() => Check.First(Check.Extension("--plot", Plot, ".png"));
}

/// <summary><c>mltransfer evaluate</c>: metrics and confusion matrix of a saved model on a labelled folder.</summary>
public sealed class EvaluateCommand : Command<EvaluateSettings>
{
    /// <inheritdoc />
    public override int Execute(CommandContext context, EvaluateSettings settings, CancellationToken cancellationToken)
    {
        var console = CliApp.Ui(settings.Json);
        if (settings.Plot is not null)
            Plots.CheckDestination(settings.Plot, overwrite: false);
        using var loaded = ModelFile.Open(settings.Model);
        var (mlContext, model) = (loaded.Context, loaded.Model);
        if (settings.Manifest is not null || Evaluate.MultiTaskEvaluation.IsMultiTask(model))
            return Evaluate.MultiTaskEvaluation.Run(console, mlContext, model, settings.Manifest, settings.Folder, settings.Json, settings.Strict);
        if (settings.Folder is null)
            throw new UsageException("Give the labelled folder: mltransfer evaluate <model.zip> <folder>.");
        var folder = RunnerSupport.LoadFolder(console, settings.Folder, settings.Strict, minimumClasses: 1);
        var report = ModelEvaluator.Evaluate(mlContext, model, folder.Examples);
        if (settings.Plot is not null)
            Plots.ConfusionMatrix(report, settings.Plot, console);
        if (settings.Json)
        {
            Console.Out.WriteLine(JsonSerializer.Serialize(ToJson(report, folder.Rejected.Count)));
            return 0;
        }
        Reports.Metrics(console, report);
        return 0;
    }

    /// <summary>The JSON shape of a report (snake_case keys).</summary>
    /// <param name="report">The metrics.</param>
    /// <param name="skipped">Unreadable images skipped.</param>
    public static Dictionary<string, object> ToJson(ClassificationReport report, int skipped) => new()
    {
        ["micro_accuracy"] = report.MicroAccuracy,
        ["macro_accuracy"] = report.MacroAccuracy,
        ["log_loss"] = report.LogLoss,
        ["n"] = report.Count,
        ["skipped"] = skipped,
        ["classes"] = report.Classes,
        ["per_class"] = report.PerClass.Select(m => new Dictionary<string, object>
        {
            ["class"] = m.Class, ["precision"] = m.Precision, ["recall"] = m.Recall, ["f1"] = m.F1, ["support"] = m.Support,
        }).ToList(),
        ["confusion_matrix"] = report.ConfusionMatrix,
    };
}
