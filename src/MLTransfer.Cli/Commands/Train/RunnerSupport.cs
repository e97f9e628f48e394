using MLTransfer.Backbones;
using MLTransfer.Data;
using MLTransfer.Featurization;
using MLTransfer.Techniques;
using Spectre.Console;

namespace MLTransfer.Cli.Commands.Train;

/// <summary>Pieces the technique runners share: reading folders with a report, engine options, progress bars.</summary>
public static class RunnerSupport
{
    /// <summary>Loads a class folder and reports skipped files.</summary>
    /// <param name="console">Where to render.</param>
    /// <param name="folder">The folder.</param>
    /// <param name="strict">Strict mode.</param>
    /// <param name="minimumClasses">Classes required.</param>
    public static ImageFolder LoadFolder(IAnsiConsole console, string folder, bool strict, int minimumClasses = 2)
    {
        var images = ImageFolder.Load(folder, new ImageFolderOptions { Strict = strict, MinimumClasses = minimumClasses });
        var ignored = images.IgnoredFiles > 0 ? $", {images.IgnoredFiles} non-image files ignored" : "";
        console.MarkupLineInterpolated($"[grey]{images.Root}[/]: {images.Examples.Count} images, {images.Classes.Count} classes{ignored}");
        ReportRejected(console, images.Rejected);
        return images;
    }

    /// <summary>Loads the training folder and, with <c>--validation</c>, the validation folder, checking its classes.</summary>
    /// <param name="console">Where to render.</param>
    /// <param name="settings">Parsed settings.</param>
    public static (ImageFolder Train, ImageFolder? Validation) LoadTrainAndValidation(IAnsiConsole console, TrainSettings settings)
    {
        var train = LoadFolder(console, settings.Folder!, settings.Strict);
        var validation = settings.Validation is null ? null : LoadFolder(console, settings.Validation, settings.Strict, minimumClasses: 1);
        if (validation is not null)
            Evaluation.ModelEvaluator.CheckLabels(train.Classes, validation.Examples.Select(e => e.Label));
        settings.SkippedImages.AddRange(train.Rejected.Concat(validation?.Rejected ?? []));
        return (train, validation);
    }

    /// <summary>Lists images that could not be used.</summary>
    /// <param name="console">Where to render.</param>
    /// <param name="rejected">The images.</param>
    public static void ReportRejected(IAnsiConsole console, IReadOnlyList<RejectedImage> rejected)
    {
        if (rejected.Count == 0)
            return;
        console.MarkupLineInterpolated($"[yellow]{rejected.Count} unreadable image(s) skipped[/] (use --strict to fail instead):");
        foreach (var r in rejected.Take(20))
            console.MarkupLineInterpolated($"  [yellow]{r.Path}[/]: {r.Reason}");
        if (rejected.Count > 20)
            console.MarkupLineInterpolated($"  ... and {rejected.Count - 20} more");
    }

    /// <summary>Engine options from the settings.</summary>
    /// <param name="settings">Parsed settings.</param>
    public static FeaturizerOptions Engine(TrainSettings settings) => new()
    {
        ImageSize = settings.ImageSize,
        CacheDirectory = settings.CacheDir,
        UseCache = !settings.NoCache,
    };

    /// <summary>Resolves the backbone, checking the file early.</summary>
    /// <param name="settings">Parsed settings.</param>
    public static Backbone Backbone(TrainSettings settings) => MLTransfer.Backbones.Backbone.Resolve(settings.Backbone);

    /// <summary>Runs work inside a progress display with a featurisation bar and a training bar.</summary>
    /// <param name="console">Where to render.</param>
    /// <param name="work">The work; gets the featurisation progress sink and the epoch callback.</param>
    /// <param name="totalEpochs">Epochs expected (0 hides the training bar).</param>
    public static T WithProgress<T>(IAnsiConsole console, Func<IProgress<FeaturizationProgress>, Action<EpochMetrics>, T> work, int totalEpochs = 0)
    {
        T result = default!;
        console.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var featurize = ctx.AddTask("Featurising images");
                var train = totalEpochs > 0 ? ctx.AddTask("Training", maxValue: totalEpochs) : null;
                var progress = new SyncProgress<FeaturizationProgress>(p =>
                {
                    featurize.MaxValue = Math.Max(1, p.Total);
                    featurize.Value = p.Done;
                    featurize.Description = $"Featurising images (cached {p.FromCache:N0} / {p.Total:N0})";
                });
                void Epoch(EpochMetrics m)
                {
                    if (train is null)
                        return;
                    train.Value = m.Epoch + 1;
                    train.Description = double.IsNaN(m.ValidationAccuracy)
                        ? $"Training: loss {m.TrainLoss:F3} acc {m.TrainAccuracy:P1}"
                        : $"Training: loss {m.TrainLoss:F3} val acc {m.ValidationAccuracy:P1}";
                }
                result = work(progress, Epoch);
                featurize.Value = featurize.MaxValue;
                if (train is not null)
                    train.Value = train.MaxValue;
            });
        return result;
    }

    /// <summary>An <see cref="IProgress{T}"/> that reports synchronously on the calling thread.</summary>
    private sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        private readonly object _gate = new();

        public void Report(T value)
        {
            lock (_gate)
                report(value);
        }
    }
}
