using Microsoft.ML;
using MLTransfer.Techniques;
using MLTransfer.Torch.FineTuning;
using Spectre.Console;

namespace MLTransfer.Cli.Commands.Train;

/// <summary><c>--technique fine-tuning</c>: the whole network trains with TorchSharp; the export loads with ML.NET only.</summary>
public sealed class FineTuningRunner : ITrainRunner
{
    /// <inheritdoc />
    public string Technique => "fine-tuning";

    /// <inheritdoc />
    public TransferModel Train(TrainSettings settings, MLContext mlContext, IAnsiConsole console)
    {
        var (folder, validation) = RunnerSupport.LoadTrainAndValidation(console, settings);
        var defaults = new FineTuningOptions();
        var options = new FineTuningOptions
        {
            Backbone = RunnerSupport.Backbone(settings),
            Epochs = settings.Epochs ?? defaults.Epochs,
            BatchSize = settings.BatchSize ?? defaults.BatchSize,
            LearningRate = settings.LearningRate ?? defaults.LearningRate,
            ImageSize = settings.ImageSize ?? defaults.ImageSize,
            UnfreezeAfterEpochs = settings.UnfreezeAfter ?? defaults.UnfreezeAfterEpochs,
            ValidationFraction = settings.ValidationFraction,
            Validation = validation?.Examples,
            Seed = settings.Seed,
            TrainTopBlocksOnly = settings.TopBlocksOnly,
            CheckpointDirectory = IO.OutputFile.Companion(settings.Output, ".checkpoints"),
            Resume = settings.Resume,
            OnnxExportPath = IO.OutputFile.Companion(settings.Output, ".onnx"),
        };
        console.MarkupLineInterpolated($"[grey]checkpoints: {options.CheckpointDirectory}{(settings.Resume ? " (resuming)" : "")}[/]");
        return RunnerSupport.WithProgress(console, (_, onEpoch) =>
        {
            options.MetricsCallback = m =>
            {
                onEpoch(new EpochMetrics(m.Epoch - 1, m.TrainLoss, m.TrainAccuracy, m.ValidationLoss ?? double.NaN, m.ValidationAccuracy ?? double.NaN, m.LearningRate));
                console.MarkupLineInterpolated(
                    $"[grey]epoch {m.Epoch}/{m.Epochs} {m.Phase}: loss {m.TrainLoss:F3}, train acc {m.TrainAccuracy:P1}, val acc {(m.ValidationAccuracy is { } v ? v.ToString("P1") : "-")}, {m.ImagesPerSecond:F1} img/s, ETA {m.EstimatedRemaining:hh\\:mm\\:ss}[/]");
            };
            return mlContext.Transfer().FineTuning(options).Fit(mlContext.Data.LoadFromEnumerable(folder.Examples));
        }, options.Epochs);
    }
}
