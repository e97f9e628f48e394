using Microsoft.ML;
using MLTransfer.Cli.Rendering;
using MLTransfer.Data;
using MLTransfer.Heads;
using MLTransfer.Techniques;
using MLTransfer.Techniques.MultiTask;
using Spectre.Console;

namespace MLTransfer.Cli.Commands.Train;

/// <summary>
/// <c>--technique multi-task</c>: one frozen backbone pass per image, one head per task, from a manifest
/// (<c>--manifest labels.csv --tasks gender,race,age</c>) or, for a single task, class folders.
/// </summary>
public sealed class MultiTaskRunner : ITrainRunner
{
    /// <inheritdoc />
    public string Technique => "multi-task";

    /// <inheritdoc />
    public TransferModel Train(TrainSettings settings, MLContext mlContext, IAnsiConsole console)
    {
        var manifest = LoadManifest(console, settings.Manifest, settings.Folder, settings.Tasks, settings.Strict);
        var validationIsCsv = settings.Validation?.EndsWith(".csv", StringComparison.OrdinalIgnoreCase) == true;
        var validation = settings.Validation is null ? null
            : LoadManifest(console, validationIsCsv ? settings.Validation : null, settings.Validation,
                validationIsCsv ? null : manifest.Tasks[0].Name, settings.Strict);
        var classifier = settings.Head.ToLowerInvariant() switch
        {
            "lbfgs" or "lbfgs-maximum-entropy" => MultiTaskClassifier.LbfgsMaximumEntropy,
            "image-classification" or "softmax" => MultiTaskClassifier.Softmax,
            _ => throw new ArgumentException($"Head '{settings.Head}' is not available for multi-task: use lbfgs or image-classification."),
        };
        var options = new MultiTaskOptions
        {
            Tasks = manifest.Tasks.Select(t => t.Name).ToList(),
            Kinds = manifest.Tasks.ToDictionary(t => t.Name, t => t.Kind),
            Backbone = RunnerSupport.Backbone(settings),
            Classifier = classifier,
            Softmax = new ImageClassificationHeadOptions
            {
                Epoch = settings.Epochs ?? 200,
                BatchSize = settings.BatchSize ?? 10,
                LearningRate = settings.LearningRate ?? 0.01f,
                EarlyStoppingCriteria = null,
            },
            Engine = RunnerSupport.Engine(settings),
            ValidationFraction = settings.ValidationFraction,
            Validation = validation is null ? null : Align(validation, manifest),
            Seed = settings.Seed,
            Strict = settings.Strict,
            OnnxPath = IO.OutputFile.Companion(settings.Output, ".onnx"),
        };
        var model = RunnerSupport.WithProgress(console, (progress, _) =>
        {
            options.Progress = progress;
            return mlContext.Transfer().MultiTask(options).Fit(manifest.ToDataView(mlContext));
        });
        if (model.Report.ValidationCount > 0)
            TaskTables.Metrics(console, model.Report.Tasks, "Validation, per task");
        console.MarkupLineInterpolated($"[grey]standalone ONNX (one Score_T output per task): {Path.GetFullPath(options.OnnxPath)}[/]");
        return model;
    }

    /// <summary>Reads a manifest, or class folders as one task, and prints what was found.</summary>
    /// <param name="console">Where to render.</param>
    /// <param name="manifestPath">The CSV, or null to read <paramref name="folder"/> as class folders.</param>
    /// <param name="folder">Class folders (used when there is no manifest).</param>
    /// <param name="tasks">
    /// Comma-separated task names, each optionally with its kind (<c>age:regression</c>, <c>digit:classification</c>; otherwise inferred);
    /// null means all (for folders: the task name, default <c>label</c>).
    /// </param>
    /// <param name="strict">Fail on unreadable images.</param>
    /// <param name="knownKinds">Kinds to use for tasks not declared in <paramref name="tasks"/> (e.g. a model's); null infers them.</param>
    public static ImageManifest LoadManifest(IAnsiConsole console, string? manifestPath, string? folder, string? tasks, bool strict,
        IReadOnlyDictionary<string, TaskKind>? knownKinds = null)
    {
        var specs = tasks?.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(t => t.Split(':', 2, StringSplitOptions.TrimEntries)).ToArray();
        var names = specs?.Select(s => s[0]).ToArray();
        var kinds = specs?.Where(s => s.Length == 2).ToDictionary(s => s[0], s => ParseKind(s[1])) ?? knownKinds;
        ImageManifest manifest;
        if (manifestPath is not null)
            manifest = ImageManifest.Load(manifestPath, new ImageManifestOptions { Tasks = names, Kinds = kinds, Strict = strict });
        else if (folder is not null)
        {
            if (names is { Length: > 1 })
                throw new ArgumentException("Class folders hold one task; give --manifest for several.");
            manifest = ImageManifest.FromFolder(folder, names?.FirstOrDefault() ?? "label", new ImageFolderOptions { Strict = strict });
        }
        else
            throw new ArgumentException("Give --manifest labels.csv (or a class folder for a single task).");
        console.MarkupLineInterpolated($"[grey]{manifest.Root}[/]: {manifest.Examples.Count} images, {manifest.Tasks.Count} task(s)");
        RunnerSupport.ReportRejected(console, manifest.Rejected);
        TaskTables.Manifest(console, manifest);
        return manifest;
    }

    private static TaskKind ParseKind(string kind) => kind.ToLowerInvariant() switch
    {
        "regression" or "r" => TaskKind.Regression,
        "classification" or "c" => TaskKind.Classification,
        _ => throw new ArgumentException($"Unknown task kind '{kind}': use regression or classification (e.g. --tasks gender,age:regression)."),
    };

    /// <summary>Reorders a validation manifest's labels to the training tasks' order (blank where it lacks a task).</summary>
    private static IReadOnlyList<MultiLabelExample> Align(ImageManifest validation, ImageManifest train)
    {
        var map = train.Tasks.Select(t => validation.Tasks.ToList().FindIndex(v => v.Name == t.Name)).ToArray();
        return validation.Examples.Select(e => new MultiLabelExample(e.ImagePath, map.Select(i => i < 0 ? "" : e.Labels[i]).ToArray())).ToList();
    }
}
