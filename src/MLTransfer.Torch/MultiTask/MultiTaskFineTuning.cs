using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLTransfer.Data;
using MLTransfer.Evaluation;
using MLTransfer.Techniques;
using MLTransfer.Techniques.MultiTask;

namespace MLTransfer.Torch.MultiTask;

/// <summary>
/// Multi-task fine-tuning: one pretrained backbone shared by every task and trained jointly with one head per task
/// (hard parameter sharing; Caruana 1997, "Multitask Learning"), with equal, fixed or uncertainty loss weighting
/// (Kendall et al. 2018) and optional PCGrad (Yu et al. 2020); see <see cref="MultiTaskFineTuningTrainer"/>.
/// </summary>
/// <remarks>
/// The exported model has the same contract as <see cref="MLTransfer.Techniques.MultiTask.MultiTask"/>: <c>ImagePath</c> in, one
/// ONNX backbone pass, then per task <c>Score_T</c> (+ <c>PredictedLabel_T</c> for classification), ML.NET types only.
/// </remarks>
public sealed class MultiTaskFineTuning : ITransferTechnique
{
    /// <summary>Creates the technique.</summary>
    /// <param name="options">Options; null means the defaults.</param>
    public MultiTaskFineTuning(MultiTaskFineTuningOptions? options = null) => Options = options ?? new MultiTaskFineTuningOptions();

    /// <summary>The technique's options.</summary>
    public MultiTaskFineTuningOptions Options { get; }

    /// <inheritdoc />
    public string Name => "multi-task-fine-tuning";

    /// <inheritdoc />
    public IEstimator<ITransformer> CreateEstimator(MLContext mlContext) => new MultiTaskFineTuningEstimator(mlContext, Options);
}

/// <summary>The estimator of <see cref="MultiTaskFineTuning"/>: <c>Fit</c> fine-tunes and returns a <see cref="TransferModel"/>.</summary>
public sealed class MultiTaskFineTuningEstimator : IEstimator<TransferModel>
{
    private readonly MLContext _mlContext;
    private readonly MultiTaskFineTuningOptions _options;

    internal MultiTaskFineTuningEstimator(MLContext mlContext, MultiTaskFineTuningOptions options)
    {
        _mlContext = mlContext ?? throw new ArgumentNullException(nameof(mlContext));
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _options.Validate();
    }

    /// <summary>Trains on a data view with <c>ImagePath</c> and one column per task (e.g. <see cref="ImageManifest.ToDataView"/>).</summary>
    /// <param name="input">The labelled images.</param>
    public TransferModel Fit(IDataView input)
    {
        var (tasks, examples) = MultiTaskData.Read(input, _options.Tasks, _options.Kinds, _options.NumericClassLimit);
        var unreadable = examples.Select(e => (e, Problem: ImageFileCheck.Problem(e.ImagePath, decode: false))).Where(p => p.Problem is not null).ToList();
        var rejected = unreadable.Select(p => new RejectedImage(p.e.ImagePath, p.Problem!)).ToList();
        var usable = unreadable.Count == 0 ? examples : examples.Except(unreadable.Select(p => p.e)).ToList();
        var (train, validation) = _options.Validation is { Count: > 0 } explicitValidation
            ? (usable, explicitValidation)
            : MultiTaskData.Split(usable, _options.ValidationFraction, _options.Seed);
        var clock = Stopwatch.StartNew();
        var model = new MultiTaskFineTuningTrainer(_options).Fit(tasks, train, validation);
        var chain = model.ToMLNet(_mlContext, train[0].ImagePath, _options.GraphDirectory);
        if (_options.OnnxPath is { } onnxPath)
            model.SaveOnnx(onnxPath);
        var reports = model.History.LastOrDefault(h => h.IsBest && h.TaskValidation.Count > 0)?.TaskValidation
            ?? tasks.ToDictionary(t => t.Name, t => new TaskReport { Task = t.Name, Kind = t.Kind });
        return new TransferModel(chain, new TrainingReport
        {
            Technique = "multi-task-fine-tuning",
            TrainCount = train.Count,
            ValidationCount = validation.Count,
            Rejected = rejected,
            Tasks = reports,
            History = model.History.Select(h => new EpochMetrics(h.Epoch - 1, h.TrainLoss, double.NaN, double.NaN, h.ValidationScore ?? double.NaN, h.LearningRate)).ToList(),
            TrainingTime = clock.Elapsed,
        });
    }

    /// <inheritdoc />
    public SchemaShape GetOutputSchema(SchemaShape inputSchema) =>
        new MLTransfer.Techniques.MultiTask.MultiTask(new MultiTaskOptions
        {
            Tasks = _options.Tasks, Kinds = _options.Kinds, Backbone = _options.Backbone, Engine = { ImageSize = _options.ImageSize },
        }).CreateEstimator(_mlContext).GetOutputSchema(inputSchema);
}
