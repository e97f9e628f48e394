using System.Globalization;
using Microsoft.ML;
using MLTransfer.Cli.Rendering;
using MLTransfer.Data;
using MLTransfer.Techniques;
using MLTransfer.Torch.MultiTask;
using Spectre.Console;

namespace MLTransfer.Cli.Commands.Train;

/// <summary>
/// <c>--technique multi-task-fine-tuning</c>: the shared backbone trains jointly with one head per task (TorchSharp);
/// per-task validation metrics every epoch; the export has the same per-task columns as <c>multi-task</c>.
/// </summary>
public sealed class MultiTaskFineTuningRunner : ITrainRunner
{
    /// <inheritdoc />
    public string Technique => "multi-task-fine-tuning";

    /// <inheritdoc />
    public TransferModel Train(TrainSettings settings, MLContext mlContext, IAnsiConsole console)
    {
        var manifest = MultiTaskRunner.LoadManifest(console, settings.Manifest, settings.Folder, settings.Tasks, settings.Strict);
        settings.SkippedImages.AddRange(manifest.Rejected);
        var defaults = new MultiTaskFineTuningOptions();
        var options = new MultiTaskFineTuningOptions
        {
            Tasks = manifest.Tasks.Select(t => t.Name).ToList(),
            Kinds = manifest.Tasks.ToDictionary(t => t.Name, t => t.Kind),
            Backbone = RunnerSupport.Backbone(settings),
            ImageSize = settings.ImageSize ?? defaults.ImageSize,
            Epochs = settings.Epochs ?? defaults.Epochs,
            BatchSize = settings.BatchSize ?? defaults.BatchSize,
            LearningRate = settings.LearningRate ?? defaults.LearningRate,
            UnfreezeAfterEpochs = settings.UnfreezeAfter ?? defaults.UnfreezeAfterEpochs,
            Weighting = Weighting(settings.LossWeighting),
            TaskWeights = ParseWeights(settings.TaskWeights),
            Balancing = settings.GradientBalancing.ToLowerInvariant() switch
            {
                "none" => GradientBalancing.None,
                "pcgrad" => GradientBalancing.PCGrad,
                _ => throw new ArgumentException($"Unknown --gradient-balancing '{settings.GradientBalancing}': use none or pcgrad."),
            },
            ValidationFraction = settings.ValidationFraction,
            Seed = settings.Seed,
            OnnxPath = IO.OutputFile.Companion(settings.Output, ".onnx"),
            Resume = settings.Resume,
            MetricsCallback = m =>
            {
                RunnerSupport.EpochLine(console, m);
                if (m.TaskValidation.Count > 0)
                    TaskTables.Metrics(console, m.TaskValidation, $"Epoch {m.Epoch}, validation per task");
            },
        };
        options.CheckpointDirectory = RunnerSupport.Checkpoints(console, settings, options.Epochs);
        var model = RunnerSupport.WithTrainingProgress(console, (_, training) =>
        {
            options.Progress = training;
            return mlContext.Transfer().FineTunedMultiTask(options).Fit(manifest.ToDataView(mlContext));
        });
        return model;
    }

    /// <summary>Parses <c>--loss-weighting</c>.</summary>
    /// <param name="text">uncertainty, equal, fixed or gradnorm.</param>
    public static LossWeighting Weighting(string text) => text.ToLowerInvariant() switch
    {
        "uncertainty" => LossWeighting.Uncertainty,
        "equal" => LossWeighting.Equal,
        "fixed" => LossWeighting.Fixed,
        "gradnorm" => LossWeighting.GradNorm,
        _ => throw new ArgumentException($"Unknown --loss-weighting '{text}': use uncertainty, equal, fixed or gradnorm."),
    };

    private static Dictionary<string, double>? ParseWeights(string? text) =>
        text?.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(p => p.Split('=', 2, StringSplitOptions.TrimEntries))
            .ToDictionary(p => p[0], p => p.Length == 2 && double.TryParse(p[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var w) && w >= 0
                ? w : throw new ArgumentException($"Bad --task-weights entry '{string.Join("=", p)}': use task=weight, e.g. age=0.5."));
}
