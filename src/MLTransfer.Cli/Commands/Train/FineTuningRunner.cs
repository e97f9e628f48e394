using Microsoft.ML;
using MLTransfer.Techniques;
using MLTransfer.Torch.FineTuning;
using Spectre.Console;

namespace MLTransfer.Cli.Commands.Train;

/// <summary><c>--technique fine-tuning</c>: the whole backbone trains with TorchSharp; checkpoints go next to the output.</summary>
public sealed class FineTuningRunner : ITrainRunner
{
    /// <inheritdoc />
    public string Technique => "fine-tuning";

    /// <inheritdoc />
    public TransferModel Train(TrainSettings settings, MLContext mlContext, IAnsiConsole console)
    {
        var (folder, validation) = RunnerSupport.LoadTrainAndValidation(console, settings);
        var defaults = new FineTuningOptions();
        var checkpoints = Path.ChangeExtension(Path.GetFullPath(settings.Output), null) + ".checkpoints";
        var options = new FineTuningOptions
        {
            Backbone = RunnerSupport.Backbone(settings),
            ImageSize = settings.ImageSize ?? defaults.ImageSize,
            Epochs = settings.Epochs ?? defaults.Epochs,
            BatchSize = settings.BatchSize ?? defaults.BatchSize,
            LearningRate = settings.LearningRate ?? defaults.LearningRate,
            UnfreezeAfterEpochs = settings.UnfreezeAfter ?? defaults.UnfreezeAfterEpochs,
            ValidationFraction = settings.ValidationFraction,
            Validation = validation?.Examples,
            Seed = settings.Seed,
            CheckpointDirectory = checkpoints,
            Resume = settings.Resume,
        };
        console.MarkupLineInterpolated($"[grey]fine-tuning {options.Backbone.Name} at {options.ImageSize}px, {options.Epochs} epochs; checkpoints in {checkpoints}[/]");
        return RunnerSupport.WithProgress(console, (_, onEpoch) =>
        {
            options.MetricsCallback = m => onEpoch(new EpochMetrics(
                m.Epoch - 1, m.TrainLoss, m.TrainAccuracy, m.ValidationLoss ?? double.NaN, m.ValidationAccuracy ?? double.NaN, m.LearningRate));
            return mlContext.Transfer().FineTuning(options).Fit(mlContext.Data.LoadFromEnumerable(folder.Examples));
        }, options.Epochs);
    }
}
