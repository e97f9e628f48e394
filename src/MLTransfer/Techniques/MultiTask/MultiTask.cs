using System.Diagnostics;
using Google.Protobuf;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLTransfer.Backbones;
using MLTransfer.Data;
using MLTransfer.Evaluation;
using MLTransfer.Export;
using MLTransfer.Featurization;
using MLTransfer.Heads;

namespace MLTransfer.Techniques.MultiTask;

/// <summary>
/// Multi-task learning on a frozen backbone (hard parameter sharing; Caruana 1997, "Multitask Learning"): every
/// image goes through the pretrained backbone once, and one head per task is trained on the shared features —
/// a softmax head per classification task, a ridge-regression head per regression task. An image with a
/// missing label for a task is used by the other tasks only.
/// </summary>
/// <remarks>
/// <list type="table">
/// <item><term>Input</term><description><c>ImagePath</c> and one text (or numeric) column per task; blank text or NaN is a missing label (see <see cref="ImageManifest"/>).</description></item>
/// <item><term>Exported model</term><description><c>ImagePath</c> → ML.NET image transforms → ONNX backbone (one pass) → for each task <c>T</c>: ML.NET's multiclass scorer
/// (<c>Score_T</c> probabilities, <c>PredictedLabel_T</c> text) or ML.NET's regression scorer (<c>Score_T</c>, a float). Loads with ML.NET packages only.</description></item>
/// <item><term>Accuracy</term><description>with a frozen backbone each head sees exactly the features a single-task model would, so every task matches its
/// single-task model trained the same way, at the cost of one backbone pass instead of one per task.</description></item>
/// </list>
/// </remarks>
public sealed class MultiTask : ITransferTechnique
{
    /// <summary>Creates the technique.</summary>
    /// <param name="options">Options; null means the defaults.</param>
    public MultiTask(MultiTaskOptions? options = null) => Options = options ?? new MultiTaskOptions();

    /// <summary>The technique's options.</summary>
    public MultiTaskOptions Options { get; }

    /// <inheritdoc />
    public string Name => "multi-task";

    /// <inheritdoc />
    public IEstimator<ITransformer> CreateEstimator(MLContext mlContext) => new MultiTaskEstimator(mlContext, Options);
}

/// <summary>The estimator of <see cref="MultiTask"/>: <c>Fit</c> featurises once, trains one head per task and returns a <see cref="TransferModel"/>.</summary>
public sealed class MultiTaskEstimator : IEstimator<TransferModel>
{
    private readonly MLContext _mlContext;
    private readonly MultiTaskOptions _options;

    internal MultiTaskEstimator(MLContext mlContext, MultiTaskOptions options)
    {
        _mlContext = mlContext ?? throw new ArgumentNullException(nameof(mlContext));
        _options = options ?? throw new ArgumentNullException(nameof(options));
    }

    /// <summary>Trains on a data view with <c>ImagePath</c> and one column per task (e.g. <see cref="ImageManifest.ToDataView"/>).</summary>
    /// <param name="input">The labelled images.</param>
    public TransferModel Fit(IDataView input)
    {
        var (tasks, examples) = MultiTaskData.Read(input, _options.Tasks, _options.Kinds, _options.NumericClassLimit);
        var backbone = _options.Backbone ?? Backbone.ResNet18();
        var featurizer = _options.Featurizer ?? new OnnxImageFeaturizer(backbone, _options.Engine);
        try
        {
            return Train(featurizer, tasks, examples);
        }
        finally
        {
            if (_options.Featurizer is null)
                featurizer.Dispose();
        }
    }

    private TransferModel Train(IImageFeaturizer featurizer, IReadOnlyList<ManifestTask> tasks, IReadOnlyList<MultiLabelExample> examples)
    {
        var clock = Stopwatch.StartNew();
        var (trainExamples, validationExamples) = _options.Validation is { Count: > 0 } explicitValidation
            ? (examples, explicitValidation)
            : MultiTaskData.Split(examples, _options.ValidationFraction, _options.Seed);
        var train = Featurize(featurizer, trainExamples);
        var validation = validationExamples.Count == 0 ? null : Featurize(featurizer, validationExamples);
        var featurizationTime = clock.Elapsed;
        MultiTaskData.CheckTrainable(tasks, train.Examples);

        clock.Restart();
        var heads = tasks.Select((task, t) => TrainHead(task, t, train)).ToList();
        var chain = TransferData.Compose(_mlContext, featurizer.ImageSize, featurizer.GraphPath, TaskHead.Chain(_mlContext, heads), train.Examples[0].ImagePath);
        if (_options.OnnxPath is { } onnxPath)
            AtomicFile.Write(onnxPath, stream => MultiTaskOnnx.WithTaskOutputs(FeaturizerGraph.Load(featurizer.GraphPath), heads).WriteTo(stream));
        var trainingTime = clock.Elapsed;

        var reports = new Dictionary<string, TaskReport>(StringComparer.Ordinal);
        for (var t = 0; t < tasks.Count; t++)
        {
            var trainCount = train.Examples.Count(e => e.Labels[t].Length > 0);
            reports[tasks[t].Name] = validation is null
                ? new TaskReport { Task = tasks[t].Name, Kind = tasks[t].Kind, TrainCount = trainCount }
                : heads[t].Evaluate(validation.Features, validation.Examples.Select(e => e.Labels[t]).ToList(), trainCount);
        }
        return new TransferModel(chain, new TrainingReport
        {
            Technique = "multi-task",
            TrainCount = train.Examples.Count,
            ValidationCount = validation?.Examples.Count ?? 0,
            Rejected = train.Rejected.Concat(validation?.Rejected ?? []).ToList(),
            FromCache = train.FromCache + (validation?.FromCache ?? 0),
            Tasks = reports,
            FeaturizationTime = featurizationTime,
            TrainingTime = trainingTime,
        });
    }

    private sealed record Featurized(IReadOnlyList<MultiLabelExample> Examples, float[][] Features, IReadOnlyList<RejectedImage> Rejected, int FromCache);

    private Featurized Featurize(IImageFeaturizer featurizer, IReadOnlyList<MultiLabelExample> examples)
    {
        var images = examples.Select(e => new ImageExample { ImagePath = e.ImagePath }).ToList();
        var byImage = new Dictionary<ImageExample, MultiLabelExample>(ReferenceEqualityComparer.Instance);
        for (var i = 0; i < images.Count; i++)
            byImage[images[i]] = examples[i];
        var set = FeatureTrainingSet.Create(featurizer, images, _options.Strict, _options.Progress);
        if (set.Examples.Count == 0)
            throw new InvalidDataException("None of the images could be featurised.");
        return new Featurized(set.Examples.Select(e => byImage[e]).ToList(), set.Features, set.Rejected, set.FromCache);
    }

    private TaskHead TrainHead(ManifestTask task, int t, Featurized train)
    {
        var rows = Enumerable.Range(0, train.Examples.Count).Where(i => train.Examples[i].Labels[t].Length > 0).ToArray();
        var features = rows.Select(i => train.Features[i]).ToArray();
        var labels = rows.Select(i => train.Examples[i].Labels[t]).ToArray();
        if (task.Kind == TaskKind.Regression)
        {
            var targets = labels.Select(l => ImageManifest.TryParseNumber(l, out var v) ? v : double.NaN).ToArray();
            return new TaskHead(task, RidgeRegressionTrainer.Train(features, targets, _options.RidgeLambda, seed: _options.Seed));
        }
        var classes = labels.Distinct(StringComparer.Ordinal).OrderBy(c => c, StringComparer.Ordinal).ToArray();
        var describedTask = task with { Classes = classes };
        if (_options.Classifier == MultiTaskClassifier.Softmax)
        {
            var index = classes.Select((c, i) => (c, i)).ToDictionary(p => p.c, p => p.i, StringComparer.Ordinal);
            var head = SoftmaxHeadTrainer.Train(classes, features, labels.Select(l => index[l]).ToArray(), [], [], _options.Softmax, _options.Seed);
            return new TaskHead(describedTask, head);
        }
        return new TaskHead(describedTask, LbfgsHeadTrainer.Train(_mlContext, classes, features, labels));
    }

    /// <inheritdoc />
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        if (!inputSchema.Any(c => c.Name == ImagePipeline.ImagePathColumn))
            throw new ArgumentException($"The input needs an '{ImagePipeline.ImagePathColumn}' text column.");
        var backbone = _options.Backbone ?? Backbone.ResNet18();
        var graph = FeaturizerGraph.Materialize(backbone, _options.Engine.ImageSize, _options.Engine.EffectiveGraphDirectory);
        var front = ImagePipeline.Create(_mlContext, _options.Engine.ImageSize ?? backbone.InputSize, graph).GetOutputSchema(inputSchema);
        var taskColumns = _options.Tasks is { } names
            ? names.Select(n => inputSchema.FirstOrDefault(c => c.Name == n) is { Name: not null } column ? column
                : throw new ArgumentException($"The input has no task column '{n}'.")).ToList()
            : inputSchema.Where(c => c.Name != ImagePipeline.ImagePathColumn).ToList();
        var columns = front.ToList();
        foreach (var column in taskColumns)
        {
            var regression = _options.Kinds is not null && _options.Kinds.TryGetValue(column.Name, out var kind)
                ? kind == TaskKind.Regression
                : column.ItemType is NumberDataViewType;
            columns.Add(ShapeColumn(MultiTaskColumns.Score(column.Name), regression ? SchemaShape.Column.VectorKind.Scalar : SchemaShape.Column.VectorKind.Vector,
                NumberDataViewType.Single));
            if (!regression)
                columns.Add(ShapeColumn(MultiTaskColumns.PredictedLabel(column.Name), SchemaShape.Column.VectorKind.Scalar, TextDataViewType.Instance));
        }
        return new SchemaShape(columns);
    }

    /// <summary>ML.NET keeps <see cref="SchemaShape.Column"/>'s constructor internal; estimators outside ML.NET need it to describe new columns.</summary>
    private static SchemaShape.Column ShapeColumn(string name, SchemaShape.Column.VectorKind kind, DataViewType type) =>
        (SchemaShape.Column)LinearHead.Create(typeof(SchemaShape.Column), name, kind, type, false, null);
}
