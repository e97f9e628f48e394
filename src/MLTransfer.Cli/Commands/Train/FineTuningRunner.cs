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
        var options = settings.ToOptions();
        options.Backbone = RunnerSupport.Backbone(settings);
        options.ValidationFraction = settings.ValidationFraction;
        options.Validation = validation?.Examples;
        options.Resume = settings.Resume;
        options.OnnxExportPath = IO.OutputFile.Companion(settings.Output, ".onnx");
        options.MetricsCallback = m => RunnerSupport.EpochLine(console, m);
        options.CheckpointDirectory = RunnerSupport.Checkpoints(console, settings, options.Epochs, members: options.EnsembleSize);
        return RunnerSupport.WithTrainingProgress(console, (caching, training) =>
        {
            options.CachingProgress = caching;
            options.Progress = training;
            return mlContext.Transfer().FineTuning(options).Fit(mlContext.Data.LoadFromEnumerable(folder.Examples));
        });
    }
}
