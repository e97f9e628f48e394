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
            TrainTopBlocksOnly = !settings.WholeNetwork,
            TopBlockViews = settings.TopBlockViews ?? defaults.TopBlockViews,
            MixupAlpha = settings.Mixup ?? defaults.MixupAlpha,
            CutMixAlpha = settings.CutMix ?? defaults.CutMixAlpha,
            WeightDecay = settings.WeightDecay ?? defaults.WeightDecay,
            WeightAverageDecay = settings.EmaDecay ?? defaults.WeightAverageDecay,
            TestTimeFlip = settings.TestTimeFlip,
            EnsembleSize = settings.Ensemble ?? defaults.EnsembleSize,
            EnsembleFolds = settings.EnsembleFolds,
            Resume = settings.Resume,
            OnnxExportPath = IO.OutputFile.Companion(settings.Output, ".onnx"),
            CacheDirectory = settings.CacheDir,
            MetricsCallback = m => RunnerSupport.EpochLine(console, m),
        };
        options.CheckpointDirectory = RunnerSupport.Checkpoints(console, settings, options.Epochs, members: options.EnsembleSize);
        return RunnerSupport.WithTrainingProgress(console, (caching, training) =>
        {
            options.CachingProgress = caching;
            options.Progress = training;
            return mlContext.Transfer().FineTuning(options).Fit(mlContext.Data.LoadFromEnumerable(folder.Examples));
        });
    }
}
