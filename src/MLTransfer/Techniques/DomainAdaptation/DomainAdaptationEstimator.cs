using System.Diagnostics;
using Microsoft.ML;
using MLTransfer.Backbones;
using MLTransfer.Data;
using MLTransfer.Evaluation;
using MLTransfer.Featurization;
using MLTransfer.Heads;
using MLTransfer.Techniques.FeatureExtraction;

namespace MLTransfer.Techniques.DomainAdaptation;

/// <summary>
/// The shared estimator of every domain-adaptation method: <c>Fit</c> reads the labelled source images
/// (<c>ImagePath</c>, <c>Label</c>) from the data view and the unlabelled target images from the options, holds
/// out a stratified source validation split, featurises both domains with the frozen backbone, lets the method
/// adapt (<see cref="Adapt"/>: a graph whose <c>Features</c> output the head reads, and the features to train
/// the head on), trains a multinomial logistic-regression head (ML.NET L-BFGS) on labelled source features only,
/// and composes the ML.NET-only chain <c>ImagePath</c> → graph → <c>PredictedLabel</c>/<c>Score</c>.
/// </summary>
/// <remarks>
/// The protocol is target-label free: target images are listed as paths only and any label a data view or
/// folder might carry for them is never read; the only model selection data is the source validation split.
/// Methods in other assemblies (the TorchSharp ones) derive from this class.
/// </remarks>
public abstract class DomainAdaptationEstimator : IEstimator<TransferModel>
{
    /// <summary>Creates the estimator.</summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="options">Shared options.</param>
    protected DomainAdaptationEstimator(MLContext mlContext, DomainAdaptationOptions options)
    {
        MLContext = mlContext ?? throw new ArgumentNullException(nameof(mlContext));
        Options = options ?? throw new ArgumentNullException(nameof(options));
    }

    /// <summary>The ML.NET context.</summary>
    protected MLContext MLContext { get; }

    /// <summary>The options.</summary>
    public DomainAdaptationOptions Options { get; }

    /// <summary>Short name of the method, e.g. <c>coral</c>.</summary>
    public abstract string Method { get; }

    /// <summary>Trains on labelled source images (<c>ImagePath</c>, <c>Label</c>) and the options' unlabelled target images.</summary>
    /// <param name="input">The labelled source images.</param>
    public TransferModel Fit(IDataView input) => FitDetailed(input).Model;

    /// <summary>Like <see cref="Fit"/>, and also returns the features before and after adaptation (for plots) and the head.</summary>
    /// <param name="input">The labelled source images.</param>
    public DomainAdaptationResult FitDetailed(IDataView input)
    {
        var source = TransferData.ReadExamples(input);
        var targetPaths = TargetImages.Resolve(Options);
        var backbone = Options.Backbone ?? Options.Featurizer?.Backbone ?? Backbone.ResNet18();
        var ownsFeaturizer = Options.Featurizer is null;
        var featurizer = Options.Featurizer ?? new OnnxImageFeaturizer(backbone, Options.Engine);
        try
        {
            return Train(featurizer, backbone, source, targetPaths);
        }
        finally
        {
            if (ownsFeaturizer)
                featurizer.Dispose();
        }
    }

    private DomainAdaptationResult Train(IImageFeaturizer featurizer, Backbone backbone, IReadOnlyList<ImageExample> source, IReadOnlyList<string> targetPaths)
    {
        var clock = Stopwatch.StartNew();
        var (trainExamples, validationExamples) = Options.ValidationFraction <= 0
            ? (source, (IReadOnlyList<ImageExample>)[])
            : ImageFolder.StratifiedSplit(source, Options.ValidationFraction, Options.Seed);
        var train = FeatureTrainingSet.Create(featurizer, trainExamples, Options.Strict, Options.Progress);
        var validation = validationExamples.Count == 0 ? null : FeatureTrainingSet.Create(featurizer, validationExamples, Options.Strict, Options.Progress);
        var target = FeatureTrainingSet.Create(featurizer, targetPaths.Select(p => new ImageExample { ImagePath = p }).ToList(), Options.Strict, Options.Progress);
        if (target.Examples.Count < 2)
            throw new InvalidDataException($"Only {target.Examples.Count} target image(s) could be read; domain adaptation needs at least 2.");
        var featurizationTime = clock.Elapsed;
        var classes = FeatureTrainingSet.Classes(train, validation);

        clock.Restart();
        var context = new AdaptationContext(MLContext, featurizer, backbone, Options.Engine, classes, train, validation, target, Options.Seed);
        var adaptation = Adapt(context);
        var labels = train.Examples.Select(e => e.Label).ToArray();
        var head = adaptation.Head ?? LbfgsHeadTrainer.Train(MLContext, classes, adaptation.HeadTrainFeatures, labels, Options.HeadL2Regularization);
        var targetForHead = adaptation.TargetAsExported(target.Features, target.Examples);
        if (adaptation.Head is null)
            head = SelfTrain(head, classes, adaptation.HeadTrainFeatures, labels, targetForHead);
        var chain = TransferData.Compose(MLContext, featurizer.ImageSize, adaptation.GraphPath, head.ToMLNet(MLContext, Export.ImagePipeline.FeaturesColumn), train.Examples[0].ImagePath);
        var trainingTime = clock.Elapsed;

        ClassificationReport? report = null;
        if (validation is { Examples.Count: > 0 })
        {
            var features = adaptation.HeadValidationFeatures ?? validation.Features;
            report = ClassificationReport.Compute(classes, validation.LabelIndices(classes), features.Select(f => head.Predict(f)).ToArray());
        }
        var model = new TransferModel(chain, new TrainingReport
        {
            Technique = "domain-adaptation/" + Method,
            Classes = classes,
            TrainCount = train.Examples.Count,
            ValidationCount = validation?.Examples.Count ?? 0,
            Rejected = train.Rejected.Concat(validation?.Rejected ?? []).Concat(target.Rejected).ToList(),
            FromCache = train.FromCache + (validation?.FromCache ?? 0) + target.FromCache,
            Validation = report,
            History = adaptation.History,
            FeaturizationTime = featurizationTime,
            TrainingTime = trainingTime,
        });
        var sourceRows = TargetImages.Sample(Enumerable.Range(0, train.Features.Length).ToList(), Options.ProjectionSamples, Options.Seed);
        var targetRows = TargetImages.Sample(Enumerable.Range(0, target.Features.Length).ToList(), Options.ProjectionSamples, Options.Seed);
        return new DomainAdaptationResult(model, Method, head, sourceRows.Select(i => train.Features[i]).ToArray(), targetRows.Select(i => target.Features[i]).ToArray(),
            sourceRows.Select(i => adaptation.HeadTrainFeatures[i]).ToArray(), targetRows.Select(i => targetForHead[i]).ToArray(),
            target.Examples.Count, adaptation.TargetAsExported);
    }

    private LinearHead SelfTrain(LinearHead head, IReadOnlyList<string> classes, float[][] source, string[] labels, float[][] target)
    {
        for (var round = 1; round <= Options.SelfTrainingRounds; round++)
        {
            var share = Options.SelfTrainingFraction * round / Options.SelfTrainingRounds;
            var predictions = target.Select((f, i) =>
            {
                var p = head.Predict(f);
                var c = Array.IndexOf(p, p.Max());
                return (Index: i, Class: c, Confidence: p[c]);
            }).ToList();
            var chosen = predictions.GroupBy(p => p.Class)
                .SelectMany(g => g.OrderByDescending(p => p.Confidence).ThenBy(p => p.Index).Take((int)Math.Ceiling(share * g.Count())))
                .OrderBy(p => p.Index).ToList();
            head = LbfgsHeadTrainer.Train(MLContext, classes, source.Concat(chosen.Select(p => target[p.Index])).ToList(),
                labels.Concat(chosen.Select(p => classes[p.Class])).ToList(), Options.HeadL2Regularization);
        }
        return head;
    }

    /// <summary>The method: returns the graph to export and the features the head is trained on.</summary>
    /// <param name="context">Source and target features and the featuriser.</param>
    protected abstract Adaptation Adapt(AdaptationContext context);

    /// <inheritdoc />
    public SchemaShape GetOutputSchema(SchemaShape inputSchema) =>
        new FeatureExtractionEstimator(MLContext, new FeatureExtractionOptions { Backbone = Options.Backbone, Engine = Options.Engine }).GetOutputSchema(inputSchema);
}

/// <summary>What a domain-adaptation method gets: the featuriser and the featurised source and target images.</summary>
/// <param name="MLContext">The ML.NET context.</param>
/// <param name="Featurizer">The frozen backbone's featuriser.</param>
/// <param name="Backbone">The backbone.</param>
/// <param name="Engine">Engine options (image size, graph folder).</param>
/// <param name="Classes">Class names, ordinal order.</param>
/// <param name="SourceTrain">Labelled source training features.</param>
/// <param name="SourceValidation">Labelled source validation features, or null.</param>
/// <param name="Target">Unlabelled target features (their <c>Label</c> is empty).</param>
/// <param name="Seed">Seed.</param>
public sealed record AdaptationContext(MLContext MLContext, IImageFeaturizer Featurizer, Backbone Backbone, FeaturizerOptions Engine,
    IReadOnlyList<string> Classes, FeatureTrainingSet SourceTrain, FeatureTrainingSet? SourceValidation, FeatureTrainingSet Target, int Seed);

/// <summary>What a domain-adaptation method returns.</summary>
public sealed class Adaptation
{
    /// <summary>The ONNX graph to export: input <c>Pixels</c> [N,3,S,S] 0–255, output <c>Features</c> [N,D] read by the head.</summary>
    public required string GraphPath { get; init; }

    /// <summary>Features of the source training images the head is trained on (in <see cref="AdaptationContext.SourceTrain"/> order).</summary>
    public required float[][] HeadTrainFeatures { get; init; }

    /// <summary>Features of the source validation images in the space the head was trained in; null means their raw features.</summary>
    public float[][]? HeadValidationFeatures { get; init; }

    /// <summary>
    /// Maps raw target features (and their images) to what the exported graph gives the head for those images
    /// (for plots). The default is the identity on the features.
    /// </summary>
    public Func<IReadOnlyList<float[]>, IReadOnlyList<ImageExample>, float[][]> TargetAsExported { get; init; } = (rows, _) => rows.ToArray();

    /// <summary>A head the method trained itself (gradient methods); null means the shared L-BFGS head is trained on <see cref="HeadTrainFeatures"/>.</summary>
    public LinearHead? Head { get; init; }

    /// <summary>Per-epoch history of methods that train with epochs. The default value is empty.</summary>
    public IReadOnlyList<EpochMetrics> History { get; init; } = [];
}

/// <summary>The trained model, the head, and samples of source and target features before and after adaptation.</summary>
/// <param name="Model">The exported model.</param>
/// <param name="Method">The method's name.</param>
/// <param name="Head">The trained head (reads the graph's <c>Features</c>).</param>
/// <param name="SourceBefore">Raw backbone features of a sample of source training images.</param>
/// <param name="TargetBefore">Raw backbone features of a sample of target images.</param>
/// <param name="SourceAfter">The same source rows in the space the head was trained in.</param>
/// <param name="TargetAfter">The same target rows as the exported graph presents them to the head.</param>
/// <param name="TargetCount">Target images used.</param>
/// <param name="ToHeadFeatures">
/// Maps raw backbone features of images (and the images) to what the exported graph gives the head for them,
/// so <see cref="Head"/> applied to the result reproduces the model's scores without running ML.NET.
/// </param>
public sealed record DomainAdaptationResult(TransferModel Model, string Method, LinearHead Head, float[][] SourceBefore, float[][] TargetBefore,
    float[][] SourceAfter, float[][] TargetAfter, int TargetCount, Func<IReadOnlyList<float[]>, IReadOnlyList<ImageExample>, float[][]> ToHeadFeatures);
