using Microsoft.ML;
using MLTransfer.Cli.Commands.Train;
using MLTransfer.Cli.Rendering;
using MLTransfer.Export;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MLTransfer.Cli.Commands;

/// <summary><c>mltransfer train</c>: trains with the chosen technique, saves the .zip atomically, prints metrics and writes plots.</summary>
public sealed class TrainCommand : Command<TrainSettings>
{
    /// <summary>Techniques the command knows, by name.</summary>
    public static IReadOnlyList<ITrainRunner> Runners { get; } =
        [new FeatureExtractionRunner(), new FineTuningRunner(), new DomainAdaptationRunner(), new MultiTaskRunner(), new MultiTaskFineTuningRunner()];

    /// <inheritdoc />
    public override int Execute(CommandContext context, TrainSettings settings, CancellationToken cancellationToken)
    {
        var console = AnsiConsole.Console;
        var runner = Runners.FirstOrDefault(r => string.Equals(r.Technique, settings.Technique, StringComparison.OrdinalIgnoreCase))
            ?? throw new ArgumentException($"Unknown technique '{settings.Technique}': use {string.Join(", ", Runners.Select(r => r.Technique))}.");
        if (settings.Folder is null && settings.Manifest is null)
            throw new ArgumentException("Give the training folder (or --manifest for multi-task).");
        var mlContext = new MLContext(seed: settings.Seed);
        using var model = runner.Train(settings, mlContext, console);
        ModelFile.Save(mlContext, model, settings.Output);
        Reports.Summary(console, model.Report, settings.Output);
        if (model.Report.Validation is { } validation)
        {
            console.MarkupLine("[bold]Validation[/]");
            Reports.Metrics(console, validation);
        }
        if (!settings.NoPlots)
        {
            var written = Plots.WriteAll(model.Report, settings.Output);
            foreach (var file in written)
                console.MarkupLineInterpolated($"[grey]plot: {file}[/]");
        }
        console.MarkupLineInterpolated($"[green]Saved[/] {Path.GetFullPath(settings.Output)}");
        return 0;
    }
}
