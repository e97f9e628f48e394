using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLTransfer.Backbones;
using MLTransfer.Data;
using MLTransfer.Evaluation;
using MLTransfer.Export;
using MLTransfer.Featurization;
using MLTransfer.Heads;

namespace MLTransfer.Techniques.FeatureExtraction;

/// <summary>
/// Feature extraction (Donahue et al. 2014, "DeCAF"; Yosinski et al. 2014): a pretrained backbone is frozen and
/// used as a fixed feature extractor, and only a new classification head is trained on its pooled features.
/// </summary>
/// <remarks>
/// <list type="table">
/// <item><term>What it does</term><description>featurises each image once (bottleneck cache on disk), trains the head on the vectors.</description></item>
/// <item><term>Features</term><description>the backbone's pooled output, or the pooled output of earlier stages (<see cref="FeaturizerOptions.Layers"/>, e.g. <c>layer3</c>: early layers often transfer better to digits or textures; <see cref="Selection.Advisor"/> helps choose).</description></item>
/// <item><term>Normalisation</term><description>none needed from the user; the backbone's preprocessing is part of its graph.</description></item>
/// <item><term>Exported model</term><description><c>ImagePath</c> → ML.NET image transforms → ONNX backbone → ML.NET head: <c>PredictedLabel</c>, <c>Score</c>.</description></item>
/// </list>
/// </remarks>
public sealed class FeatureExtraction : ITransferTechnique
{
    /// <summary>Creates the technique.</summary>
    /// <param name="options">Options; null means the defaults.</param>
    public FeatureExtraction(FeatureExtractionOptions? options = null) => Options = options ?? new FeatureExtractionOptions();

    /// <summary>The technique's options.</summary>
    public FeatureExtractionOptions Options { get; }

    /// <inheritdoc />
    public string Name => "feature-extraction";

    /// <inheritdoc />
    public IEstimator<ITransformer> CreateEstimator(MLContext mlContext) => new FeatureExtractionEstimator(mlContext, Options);
}

/// <summary>The estimator of <see cref="FeatureExtraction"/>: <c>Fit</c> featurises, trains the head and returns a <see cref="TransferModel"/>.</summary>
public sealed class FeatureExtractionEstimator : IEstimator<TransferModel>
{
    private readonly MLContext _mlContext;
    private readonly FeatureExtractionOptions _options;

    internal FeatureExtractionEstimator(MLContext mlContext, FeatureExtractionOptions options)
    {
        _mlContext = mlContext ?? throw new ArgumentNullException(nameof(mlContext));
        _options = options;
    }

    /// <summary>Trains on a data view with <c>ImagePath</c> and <c>Label</c> text columns.</summary>
    /// <param name="input">The labelled images.</param>
    public TransferModel Fit(IDataView input)
    {
        var examples = TransferData.ReadExamples(input);
        var backbone = _options.Backbone ?? Backbone.ResNet18();
        if (_options.Featurizer is { } shared)
            return Train(shared, shared, examples);
        using var featurizer = new OnnxImageFeaturizer(backbone, CacheSettings(_options.Engine, validation: false));
        using var separate = ValidationNeedsItsOwnCacheSetting() ? new OnnxImageFeaturizer(backbone, CacheSettings(_options.Engine, validation: true)) : null;
        return Train(featurizer, separate ?? featurizer, examples);
    }

    // The image-classification head's WorkspacePath is the cache folder unless the engine names one, and its two Reuse*
    // flags decide, for the training and the validation images, whether cached vectors are read or computed afresh.
    private FeaturizerOptions CacheSettings(FeaturizerOptions engine, bool validation)
    {
        if (_options.Head != HeadKind.ImageClassification)
            return engine;
        var head = _options.ImageClassification;
        var options = engine.Clone();
        options.CacheDirectory ??= head.WorkspacePath;
        options.UseCache = engine.UseCache && (validation ? head.ReuseValidationSetBottleneckCachedValues : head.ReuseTrainSetBottleneckCachedValues);
        return options;
    }

    private bool ValidationNeedsItsOwnCacheSetting() =>
        _options.Head == HeadKind.ImageClassification && _options.Engine.UseCache
        && _options.ImageClassification.ReuseTrainSetBottleneckCachedValues != _options.ImageClassification.ReuseValidationSetBottleneckCachedValues;

    private TransferModel Train(IImageFeaturizer featurizer, IImageFeaturizer validationFeaturizer, IReadOnlyList<ImageExample> examples)
    {
        var clock = Stopwatch.StartNew();
        var (trainExamples, validationExamples) = SplitOrUse(examples);
        var train = FeatureTrainingSet.Create(featurizer, trainExamples, _options.Strict, _options.Progress);
        var validation = validationExamples.Count == 0 ? null
            : FeatureTrainingSet.Create(validationFeaturizer, validationExamples, _options.Strict, _options.Progress);
        var featurizationTime = clock.Elapsed;
        var classes = FeatureTrainingSet.Classes(train, validation);

        clock.Restart();
        var history = new List<EpochMetrics>();
        var (head, l2) = TrainHead(classes, train, validation, history);
        var chain = TransferData.Compose(_mlContext, featurizer.ImageSize, featurizer.GraphPath, head, train.Examples[0].ImagePath);
        var trainingTime = clock.Elapsed;

        ClassificationReport? report = null;
        IReadOnlyList<ImagePrediction> predictions = [];
        if (validation is { Examples.Count: > 0 })
        {
            var scores = HeadScores(head, validation.Features);
            report = ClassificationReport.Compute(ModelClasses(chain, classes), validation.LabelIndices(ModelClasses(chain, classes)), scores);
            predictions = validation.Examples.Select((e, i) => new ImagePrediction(e.ImagePath, e.Label, scores[i])).ToList();
        }
        return new TransferModel(chain, new TrainingReport
        {
            Technique = "feature-extraction",
            Classes = classes,
            TrainCount = train.Examples.Count,
            ValidationCount = validation?.Examples.Count ?? 0,
            Rejected = train.Rejected.Concat(validation?.Rejected ?? []).ToList(),
            FromCache = train.FromCache + (validation?.FromCache ?? 0),
            Validation = report,
            ValidationPredictions = predictions,
            History = history,
            FeaturizationTime = featurizationTime,
            TrainingTime = trainingTime,
            HeadL2Regularization = l2,
        });
    }

    private (IReadOnlyList<ImageExample> Train, IReadOnlyList<ImageExample> Validation) SplitOrUse(IReadOnlyList<ImageExample> examples)
    {
        if (_options.Validation is { Count: > 0 } explicitValidation)
            return (examples, explicitValidation);
        var fraction = _options.ValidationFraction;
        if (_options.Head == HeadKind.ImageClassification)
        {
            var head = _options.ImageClassification;
            if (head.ValidationSet is { } set)
                return (examples, TransferData.ReadExamples(set));
            fraction = head.ValidationSetFraction ?? (fraction > 0 ? fraction : head.EarlyStoppingCriteria is null ? 0 : ImageClassificationHeadOptions.EarlyStoppingValidationFraction);
        }
        return fraction <= 0 ? (examples, []) : ImageFolder.StratifiedSplit(examples, fraction, _options.Seed);
    }

    private (ITransformer Head, float? L2) TrainHead(string[] classes, FeatureTrainingSet train, FeatureTrainingSet? validation, List<EpochMetrics> history)
    {
        if (_options.Trainer is null && _options.Head == HeadKind.ImageClassification)
        {
            var labels = train.LabelIndices(classes);
            var linear = SoftmaxHeadTrainer.Train(classes, train.Features, labels, validation?.Features ?? [],
                validation?.LabelIndices(classes) ?? [], _options.ImageClassification, _options.Seed, history);
            return (linear.ToMLNet(_mlContext, ImagePipeline.FeaturesColumn), null);
        }
        if (_options.Trainer is null && _options.Head == HeadKind.LbfgsMaximumEntropy)
        {
            var labels = train.Examples.Select(e => e.Label).ToArray();
            var (lbfgs, l2) = _options.HeadL2Regularization is { } given
                ? (LbfgsHeadTrainer.Train(_mlContext, classes, train.Features, labels, given), given)
                : LbfgsHeadTrainer.TrainTuned(_mlContext, classes, train.Features, labels, _options.Seed);
            return (lbfgs.ToMLNet(_mlContext, ImagePipeline.FeaturesColumn), l2);
        }
        var data = FeatureRows.ToDataView(_mlContext, train.Features, train.Examples.Select(e => e.Label).ToArray(), classes);
        var trainer = _options.Trainer ?? _options.Head switch
        {
            HeadKind.SdcaMaximumEntropy => _mlContext.Transforms.NormalizeMinMax(ImagePipeline.FeaturesColumn)
                .Append(_mlContext.MulticlassClassification.Trainers.SdcaMaximumEntropy(TransferData.LabelColumn, ImagePipeline.FeaturesColumn)),
            HeadKind.LightGbm => _mlContext.MulticlassClassification.Trainers.LightGbm(
                TransferData.LabelColumn, ImagePipeline.FeaturesColumn, numberOfLeaves: 15, minimumExampleCountPerLeaf: 5, numberOfIterations: 100),
            _ => throw new ArgumentOutOfRangeException(nameof(_options), _options.Head, "Unknown head."),
        };
        var keyed = _mlContext.Transforms.Conversion.MapValueToKey(TransferData.LabelColumn).Fit(data);
        var keyedData = keyed.Transform(data);
        var fitted = trainer.Fit(keyedData);
        var scored = fitted.Transform(keyedData);
        var toText = _mlContext.Transforms.Conversion.MapKeyToValue("PredictedLabel").Fit(scored);
        return (new TransformerChain<ITransformer>(fitted, toText), null);
    }

    private float[][] HeadScores(ITransformer chain, float[][] features)
    {
        var data = FeatureRows.ToDataView(_mlContext, features, null, null);
        return chain.Transform(data).GetColumn<VBuffer<float>>("Score").Select(v => v.DenseValues().ToArray()).ToArray();
    }

    private static IReadOnlyList<string> ModelClasses(ITransformer chain, IReadOnlyList<string> fallback)
    {
        try { return ModelEvaluator.Classes(chain); }
        catch (InvalidDataException) { return fallback; }
    }

    /// <inheritdoc />
    public SchemaShape GetOutputSchema(SchemaShape inputSchema) =>
        TransferData.ClassifierOutputSchema(_mlContext, inputSchema, _options.Backbone, _options.Engine.ImageSize, _options.Engine.EffectiveGraphDirectory,
            _options.Engine.Layers);
}
