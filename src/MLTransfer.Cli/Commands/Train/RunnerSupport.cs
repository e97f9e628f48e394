using MLTransfer.Diagnostics;
using MLTransfer.Backbones;
using MLTransfer.Data;
using MLTransfer.Featurization;
using MLTransfer.Techniques;
using MLTransfer.Torch.Training;
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
        ReportWarnings(console, images.Warnings);
        ReportRejected(console, images.Rejected);
        return images;
    }

    /// <summary>Prints one <c>warning:</c> line each.</summary>
    /// <param name="console">Where to render.</param>
    /// <param name="warnings">The warnings.</param>
    public static void ReportWarnings(IAnsiConsole console, IEnumerable<string> warnings)
    {
        ArgumentNullException.ThrowIfNull(warnings);
        foreach (var warning in warnings)
            console.MarkupLineInterpolated($"[yellow]warning:[/] {warning}");
    }

    private static readonly AsyncLocal<List<RejectedImage>?> Skipped = new();

    /// <summary>Starts collecting every image reported as skipped (for the training summary); returns the list that fills.</summary>
    public static List<RejectedImage> CollectSkipped() => Skipped.Value = [];

    /// <summary>Loads the training folder and, with <c>--validation</c>, the validation folder, checking its classes.</summary>
    /// <param name="console">Where to render.</param>
    /// <param name="settings">Parsed settings.</param>
    public static (ImageFolder Train, ImageFolder? Validation) LoadTrainAndValidation(IAnsiConsole console, TrainSettings settings)
    {
        var train = LoadFolder(console, settings.Folder!, settings.Strict);
        if (settings.Validation is not null && IO.OutputFile.RealPath(settings.Validation) == IO.OutputFile.RealPath(settings.Folder!))
            ReportWarnings(console, ["--validation is the training folder itself: the validation metrics measure images the model was trained on."]);
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
        ArgumentNullException.ThrowIfNull(rejected);
        Skipped.Value?.AddRange(rejected);
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
    /// <param name="withLayers">Whether the technique reads <c>--layer</c> (feature extraction).</param>
    /// <param name="quantization">int8 settings of the engine (<c>--int8</c>); null runs the float graph.</param>
    public static FeaturizerOptions Engine(TrainSettings settings, bool withLayers = false, Quantization.QuantizationOptions? quantization = null) => new()
    {
        ImageSize = settings.ImageSize,
        CacheDirectory = settings.CacheDir,
        UseCache = !settings.NoCache,
        Layers = withLayers ? Layers(settings.Layer) : null,
        Quantization = quantization,
    };

    /// <summary>Stage names from a comma-separated <c>--layer</c> value; null when none are given.</summary>
    /// <param name="value">The option's value.</param>
    public static IReadOnlyList<string>? Layers(string? value) =>
        value?.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries) is { Length: > 0 } names ? names : null;

    /// <summary>Resolves the backbone.</summary>
    /// <param name="settings">Parsed settings.</param>
    public static Backbone Backbone(TrainSettings settings) => MLTransfer.Backbones.Backbone.Resolve(settings.Backbone);

    /// <summary>
    /// Everything that can be checked before any work: the cache folders are usable and the backbone resolves and gives
    /// the feature length its spec says at the chosen size (the fused graph is built into the cache, where training reuses it).
    /// </summary>
    /// <param name="settings">Parsed settings.</param>
    public static void CheckBeforeWork(TrainSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var engine = Engine(settings);
        if (engine.UseCache)
            IO.CacheLocation.CheckUsable(engine.CacheDirectory ?? IO.CacheLocation.Default);
        IO.CacheLocation.CheckUsable(engine.EffectiveGraphDirectory);
        var backbone = Backbone(settings);
        if (backbone.SizeMultiple > 1 && settings.ImageSize is { } size && size != backbone.InputSize && size % backbone.SizeMultiple != 0)
            throw new UsageException($"--image-size {size}: backbone '{backbone.Name}' takes multiples of {backbone.SizeMultiple} " +
                $"(e.g. {Math.Max(backbone.SizeMultiple, size / backbone.SizeMultiple * backbone.SizeMultiple)} or {(size / backbone.SizeMultiple + 1) * backbone.SizeMultiple}), or its native {backbone.InputSize}.");
        FeaturizerGraph.Materialize(backbone, settings.ImageSize, engine.EffectiveGraphDirectory);
    }

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
                var progress = new CallbackProgress<FeaturizationProgress>(p =>
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

    /// <summary>
    /// Runs TorchSharp training inside a progress display: a bar for any featurisation or caching pass and a training bar
    /// that moves with every step (loss, images/s, ETA), so long epochs show progress.
    /// </summary>
    /// <param name="console">Where to render.</param>
    /// <param name="work">The work; gets the featurisation progress sink and the in-epoch training progress sink.</param>
    public static T WithTrainingProgress<T>(IAnsiConsole console, Func<IProgress<FeaturizationProgress>, IProgress<TrainingProgress>, T> work)
    {
        T result = default!;
        console.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                ProgressTask? featurize = null;
                ProgressTask? train = null;
                var featurization = new CallbackProgress<FeaturizationProgress>(p =>
                {
                    featurize ??= ctx.AddTask("Preparing images");
                    featurize.MaxValue = Math.Max(1, p.Total);
                    featurize.Value = p.Done;
                    featurize.Description = $"Preparing images (cached {p.FromCache:N0} / {p.Total:N0})";
                });
                var training = new CallbackProgress<TrainingProgress>(p =>
                {
                    train ??= ctx.AddTask("Training");
                    train.MaxValue = Math.Max(1, (double)p.Members * p.Epochs * p.Steps);
                    train.Value = ((((p.Member - 1.0) * p.Epochs) + p.Epoch - 1.0) * p.Steps) + p.Step;
                    train.Description = $"Training: {Member(p.Member, p.Members)}epoch {p.Epoch}/{p.Epochs} step {p.Step}/{p.Steps}, loss {p.TrainLoss:F3}, {p.ImagesPerSecond:F1} img/s, ETA {p.EstimatedRemaining:hh\\:mm\\:ss}";
                });
                result = work(featurization, training);
                if (featurize is not null)
                    featurize.Value = featurize.MaxValue;
                if (train is not null)
                    train.Value = train.MaxValue;
            });
        return result;
    }

    /// <summary>The epoch line every TorchSharp technique prints.</summary>
    /// <param name="console">Where to render.</param>
    /// <param name="m">The epoch's metrics.</param>
    public static void EpochLine(IAnsiConsole console, TrainingEpochMetrics m)
    {
        var validation = m.ValidationScore is { } v ? v.ToString("F4", System.Globalization.CultureInfo.InvariantCulture) : "-";
        var accuracy = double.IsNaN(m.TrainAccuracy) ? "" : $", train acc {m.TrainAccuracy:P1}";
        console.MarkupLineInterpolated(
            $"[grey]{Member(m.Member, m.Members)}epoch {m.Epoch}/{m.Epochs} {m.Phase}: loss {m.TrainLoss:F3}{accuracy}, validation {validation}{(m.IsBest && m.ValidationScore is not null ? " (best)" : "")}, {m.ImagesPerSecond:F1} img/s, ETA {m.EstimatedRemaining:hh\\:mm\\:ss}[/]");
    }

    private static string Member(int member, int members) => members > 1 ? $"member {member}/{members}, " : "";

    /// <summary>
    /// The checkpoint folder of a TorchSharp run next to the model (<c>&lt;model&gt;.checkpoints</c>, optionally a sub-folder),
    /// and a line that says truthfully what <c>--resume</c> will do with it.
    /// </summary>
    /// <param name="console">Where to render.</param>
    /// <param name="settings">Parsed settings.</param>
    /// <param name="epochs">Epochs planned.</param>
    /// <param name="subfolder">A sub-folder for runs that train several models; null for none.</param>
    /// <param name="members">The networks of an ensemble, each checkpointed in its own sub-folder (member1, member2, …).</param>
    public static string Checkpoints(IAnsiConsole console, TrainSettings settings, int epochs, string? subfolder = null, int members = 1)
    {
        var directory = IO.OutputFile.Companion(settings.Output, ".checkpoints");
        if (subfolder is not null)
            directory = Path.Combine(directory, subfolder);
        var found = TrainingCheckpoint.Find(directory);
        var note = (settings.Resume, found) switch
        {
            _ when members > 1 => settings.Resume
                ? $"resuming each of the {members} members from its sub-folder member1 … member{members}; finished members are not trained again"
                : $"one sub-folder per member, member1 … member{members}, written after every epoch",
            (true, null) => "--resume: no checkpoint there yet, training from epoch 1",
            (true, { Stopped: true }) => $"resuming: the run had stopped early after epoch {found.CompletedEpochs}, nothing left to train",
            (true, _) when found.CompletedEpochs >= epochs => $"resuming: all {found.CompletedEpochs} epochs are done, nothing left to train",
            (true, _) => $"resuming from epoch {found.CompletedEpochs + 1} of {epochs}",
            (false, not null) => "an earlier checkpoint there will be replaced (use --resume to continue it)",
            _ => "written after every epoch",
        };
        console.MarkupLineInterpolated($"[grey]checkpoints: {directory} ({note})[/]");
        return directory;
    }
}
