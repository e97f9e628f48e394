using MLTransfer.Diagnostics;
using MLTransfer.Data;
using MLTransfer.Featurization;
using Spectre.Console;

namespace MLTransfer.Cli.Commands;

/// <summary>Runs a featuriser behind a console progress bar that shows cache hits (<c>cached 1,980 / 2,000</c>).</summary>
public static class FeaturizerProgress
{
    /// <summary>Featurises images, showing progress on the console.</summary>
    /// <param name="featurizer">The featuriser.</param>
    /// <param name="paths">The images.</param>
    /// <param name="cancellationToken">Cancels the run.</param>
    public static FeaturizationResult Run(IImageFeaturizer featurizer, IReadOnlyList<string> paths, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(featurizer);
        FeaturizationResult? result = null;
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .Start(context =>
            {
                var task = context.AddTask($"featurising (cached 0 / {paths.Count:N0})", maxValue: Math.Max(1, paths.Count));
                result = featurizer.Featurize(paths, new CallbackProgress<FeaturizationProgress>(p =>
                {
                    task.Value = p.Done;
                    task.Description = $"featurising (cached {p.FromCache:N0} / {p.Total:N0})";
                }), cancellationToken);
                task.Value = task.MaxValue;
                task.StopTask();
                context.Refresh();
            });
        return result!;
    }

    /// <summary>Lists images that could not be featurised, with the reason.</summary>
    /// <param name="failed">The rejected images.</param>
    public static void ReportFailures(IReadOnlyList<RejectedImage> failed)
    {
        ArgumentNullException.ThrowIfNull(failed);
        if (failed.Count == 0)
            return;
        AnsiConsole.MarkupLine($"[yellow]{failed.Count:N0} image(s) could not be featurised and were left out:[/]");
        foreach (var image in failed.Take(20))
            AnsiConsole.MarkupLine($"  [yellow]{Markup.Escape(image.Path)}[/]: {Markup.Escape(image.Reason)}");
        if (failed.Count > 20)
            AnsiConsole.MarkupLine($"  … and {failed.Count - 20:N0} more.");
    }
}
