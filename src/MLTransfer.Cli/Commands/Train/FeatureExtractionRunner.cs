using Microsoft.ML;
using MLTransfer.Heads;
using MLTransfer.Techniques;
using MLTransfer.Techniques.FeatureExtraction;
using Spectre.Console;

namespace MLTransfer.Cli.Commands.Train;

/// <summary><c>--technique feature-extraction</c>.</summary>
public sealed class FeatureExtractionRunner : ITrainRunner
{
    /// <inheritdoc />
    public string Technique => "feature-extraction";

    /// <inheritdoc />
    public TransferModel Train(TrainSettings settings, MLContext mlContext, IAnsiConsole console)
    {
        var (folder, validation) = RunnerSupport.LoadTrainAndValidation(console, settings);
        var head = ParseHead(settings.Head);
        var options = new FeatureExtractionOptions
        {
            Backbone = RunnerSupport.Backbone(settings),
            Head = head,
            Engine = RunnerSupport.Engine(settings, withLayers: true),
            ValidationFraction = settings.ValidationFraction,
            Validation = validation?.Examples,
            Seed = settings.Seed,
            Strict = settings.Strict,
        };
        var epochs = 0;
        if (head == HeadKind.ImageClassification)
        {
            options.ImageClassification = new ImageClassificationHeadOptions
            {
                Epoch = settings.Epochs ?? 200,
                BatchSize = settings.BatchSize ?? 10,
                LearningRate = settings.LearningRate ?? 0.01f,
            };
            epochs = options.ImageClassification.Epoch;
        }
        return RunnerSupport.WithProgress(console, (progress, onEpoch) =>
        {
            options.Progress = progress;
            options.ImageClassification.MetricsCallback = onEpoch;
            return mlContext.Transfer().FeatureExtraction(options).Fit(mlContext.Data.LoadFromEnumerable(folder.Examples));
        }, epochs);
    }

    private static HeadKind ParseHead(string head) => head.ToLowerInvariant() switch
    {
        "lbfgs" or "lbfgs-maximum-entropy" => HeadKind.LbfgsMaximumEntropy,
        "sdca" or "sdca-maximum-entropy" => HeadKind.SdcaMaximumEntropy,
        "lightgbm" => HeadKind.LightGbm,
        "image-classification" => HeadKind.ImageClassification,
        _ => throw new ArgumentException($"Unknown head '{head}': use lbfgs, sdca, lightgbm or image-classification."),
    };
}
