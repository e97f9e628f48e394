using System.Diagnostics;
using Microsoft.ML;
using MLTransfer.Backbones;
using MLTransfer.Data;
using MLTransfer.Evaluation;
using MLTransfer.Export;
using MLTransfer.Techniques;

namespace MLTransfer.Torch.FineTuning;

/// <summary>
/// Fine-tuning (Yosinski et al. 2014; Howard &amp; Ruder 2018): the whole pretrained backbone trains together with a
/// new classification head, with gradual unfreezing and per-layer learning rates, on the CPU with TorchSharp.
/// </summary>
/// <remarks>
/// <list type="table">
/// <item><term>What it does</term><description>imports the backbone's ONNX graph into TorchSharp, trains it (see <see cref="FineTuningOptions"/>), writes the trained weights back into the graph.</description></item>
/// <item><term>Exported model</term><description><c>ImagePath</c> → ML.NET image transforms → fine-tuned ONNX backbone → ML.NET linear softmax head: <c>PredictedLabel</c>, <c>Score</c>; it loads with ML.NET packages only (no libtorch).</description></item>
/// </list>
/// </remarks>
public sealed class FineTuning : ITransferTechnique
{
    /// <summary>Creates the technique.</summary>
    /// <param name="options">Options; null means the defaults.</param>
    public FineTuning(FineTuningOptions? options = null) => Options = options ?? new FineTuningOptions();

    /// <summary>The technique's options.</summary>
    public FineTuningOptions Options { get; }

    /// <inheritdoc />
    public string Name => "fine-tuning";

    /// <inheritdoc />
    public IEstimator<ITransformer> CreateEstimator(MLContext mlContext) => new FineTuningEstimator(mlContext, Options);
}

/// <summary>The estimator of <see cref="FineTuning"/>: <c>Fit</c> fine-tunes and returns a <see cref="TransferModel"/>.</summary>
public sealed class FineTuningEstimator : IEstimator<TransferModel>
{
    private readonly MLContext _mlContext;
    private readonly FineTuningOptions _options;

    internal FineTuningEstimator(MLContext mlContext, FineTuningOptions options)
    {
        _mlContext = mlContext ?? throw new ArgumentNullException(nameof(mlContext));
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _options.Validate();
    }

    /// <summary>Fine-tunes on a data view with <c>ImagePath</c> and <c>Label</c> text columns.</summary>
    /// <param name="input">The labelled images.</param>
    public TransferModel Fit(IDataView input)
    {
        var examples = TransferData.ReadExamples(input);
        var rejected = examples
            .Select(e => (Example: e, Problem: ImageFileCheck.Problem(e.ImagePath)))
            .Where(p => p.Problem is not null)
            .Select(p => new RejectedImage(p.Example.ImagePath, p.Problem!))
            .ToList();
        var rejectedPaths = rejected.Select(r => r.Path).ToHashSet(StringComparer.Ordinal);
        var usable = examples.Where(e => !rejectedPaths.Contains(e.ImagePath)).ToList();
        // With EnsembleFolds the trainer gives every member its own fold; the report is then out-of-fold.
        var folds = _options.EnsembleFolds && _options.EnsembleSize > 1;
        var (train, validation) = folds ? (usable, [])
            : _options.Validation is { } explicitValidation ? (usable, explicitValidation)
            : _options.ValidationFraction > 0 ? ImageFolder.StratifiedSplit(usable, _options.ValidationFraction, _options.Seed)
            : (usable, []);

        var clock = Stopwatch.StartNew();
        using var model = new FineTuningTrainer(_options).Fit(train, folds ? null : validation);
        var trainingTime = clock.Elapsed;

        var chain = model.ToMLNet(_mlContext, train[0].ImagePath, _options.GraphDirectory);
        if (_options.OnnxExportPath is { } onnxPath)
            model.SaveOnnx(onnxPath);

        var scored = new List<(ImageExample Example, float[] Scores)>();
        if (folds)
        {
            for (var member = 0; member < model.EnsembleSize; member++)
            {
                var held = FineTuningTrainer.MemberSplit(usable, _options, member).Validation;
                scored.AddRange(held.Zip(model.PredictMemberProbabilities(held.Select(e => e.ImagePath).ToArray(), member)));
            }
            validation = scored.Select(s => s.Example).ToList();
        }
        else if (validation.Count > 0)
        {
            scored.AddRange(validation.Zip(model.PredictProbabilities(validation.Select(e => e.ImagePath).ToArray())));
        }

        ClassificationReport? report = null;
        IReadOnlyList<ImagePrediction> predictions = [];
        if (scored.Count > 0)
        {
            var index = model.ClassNames.Select((c, i) => (c, i)).ToDictionary(p => p.c, p => p.i, StringComparer.Ordinal);
            report = ClassificationReport.Compute(model.ClassNames, scored.Select(s => index[s.Example.Label]).ToArray(), scored.Select(s => s.Scores).ToArray());
            predictions = scored.Select(s => new ImagePrediction(s.Example.ImagePath, s.Example.Label, s.Scores)).ToList();
        }

        return new TransferModel(chain, new TrainingReport
        {
            Technique = "fine-tuning",
            Classes = model.ClassNames,
            TrainCount = train.Count,
            ValidationCount = validation.Count,
            OutOfFold = folds,
            Rejected = rejected,
            Validation = report,
            ValidationPredictions = predictions,
            // Counted on across an ensemble's members, so the curves show them one after the other.
            History = model.History
                .Select((m, i) => new EpochMetrics(i, m.TrainLoss, m.TrainAccuracy, m.ValidationLoss ?? double.NaN, m.ValidationScore ?? double.NaN, m.LearningRate))
                .ToList(),
            TrainingTime = trainingTime,
        });
    }

    /// <inheritdoc />
    public SchemaShape GetOutputSchema(SchemaShape inputSchema) =>
        TransferData.ClassifierOutputSchema(_mlContext, inputSchema, _options.Backbone, _options.ImageSize);
}
