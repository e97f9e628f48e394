using Microsoft.ML;
using MLTransfer.Cluster.Output;
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
        if (settings.Features is not null)
            return TrainOnFeatures(settings, mlContext, console);
        var (folder, validation) = RunnerSupport.LoadTrainAndValidation(console, settings);
        var head = ParseHead(settings.Head);
        var options = new FeatureExtractionOptions
        {
            Backbone = RunnerSupport.Backbone(settings),
            Head = head,
            Engine = RunnerSupport.Engine(settings, withLayers: true, quantization: settings.QuantizationOptions()),
            HeadL2Regularization = settings.HeadL2Value,
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

    private static TransferModel TrainOnFeatures(TrainSettings settings, MLContext mlContext, IAnsiConsole console)
    {
        if (settings.Validation is not null)
            throw new ArgumentException("--validation cannot be combined with --features; the split is made by --validation-fraction.");
        if (ParseHead(settings.Head) == HeadKind.ImageClassification)
            throw new ArgumentException("--features trains the lbfgs, sdca or lightgbm head.");
        var parts = FeatureParts.Load(settings.Features!);
        if (settings.ImageSize is { } size && size != parts.Manifest.ImageSize)
            throw new ArgumentException($"The features were computed at {parts.Manifest.ImageSize} px, not {size} px.");
        if (!string.Equals(settings.Backbone, parts.Manifest.Backbone, StringComparison.OrdinalIgnoreCase) && Path.GetFullPath(settings.Backbone) != parts.Manifest.Backbone)
            throw new ArgumentException($"The features were computed with backbone '{parts.Manifest.Backbone}', not '{settings.Backbone}'.");
        console.MarkupLineInterpolated($"[grey]{parts.Manifest.JobId}[/]: {parts.Examples.Count} featurised images ({parts.Manifest.Backbone}, {parts.Manifest.ImageSize} px)");
        var options = new FeatureExtractionOptions
        {
            Backbone = parts.Backbone,
            Head = ParseHead(settings.Head),
            Featurizer = parts.Featurizer,
            HeadL2Regularization = settings.HeadL2Value,
            ValidationFraction = settings.ValidationFraction,
            Seed = settings.Seed,
            Strict = settings.Strict,
        };
        return RunnerSupport.WithProgress(console, (progress, _) =>
        {
            options.Progress = progress;
            return mlContext.Transfer().FeatureExtraction(options).Fit(mlContext.Data.LoadFromEnumerable(parts.Examples));
        });
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
