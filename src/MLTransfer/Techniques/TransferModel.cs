using Microsoft.ML;
using Microsoft.ML.Data;
using MLTransfer.Evaluation;

namespace MLTransfer.Techniques;

/// <summary>
/// A model trained by an MLTransfer technique: an ML.NET transformer chain made only of ML.NET's own
/// transforms (so <c>mlContext.Model.Save</c> writes a <c>.zip</c> any ML.NET app loads), plus what was learnt
/// while training it.
/// </summary>
/// <remarks>
/// Dispose the model when done with it: ML.NET keeps a temporary copy of the ONNX graph of some models (those loaded
/// from a <c>.zip</c>, such as fine-tuned ones) and deletes it only when the chain is disposed.
/// </remarks>
public sealed class TransferModel : ITransformer, IDisposable
{
    /// <summary>Creates a model.</summary>
    /// <param name="chain">The ML.NET-only transformer chain.</param>
    /// <param name="report">What happened while training.</param>
    public TransferModel(ITransformer chain, TrainingReport report)
    {
        Chain = chain ?? throw new ArgumentNullException(nameof(chain));
        Report = report ?? throw new ArgumentNullException(nameof(report));
    }

    /// <summary>The ML.NET transformer chain that is saved.</summary>
    public ITransformer Chain { get; }

    /// <summary>Training report: classes, rejected images, cache hits, validation metrics.</summary>
    public TrainingReport Report { get; }

    /// <inheritdoc />
    public bool IsRowToRowMapper => Chain.IsRowToRowMapper;

    /// <inheritdoc />
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) => Chain.GetOutputSchema(inputSchema);

    /// <inheritdoc />
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => Chain.GetRowToRowMapper(inputSchema);

    /// <inheritdoc />
    public IDataView Transform(IDataView input) => Chain.Transform(input);

    /// <summary>Saves the inner ML.NET chain, so the file reloads as ML.NET's own <c>TransformerChain</c>.</summary>
    /// <param name="ctx">The save context.</param>
    void ICanSaveModel.Save(ModelSaveContext ctx) => Chain.Save(ctx);

    /// <summary>Disposes the chain (and with it any temporary file ML.NET keeps for its ONNX graph).</summary>
    public void Dispose() => (Chain as IDisposable)?.Dispose();
}

/// <summary>What happened while a technique trained a model.</summary>
public sealed class TrainingReport
{
    /// <summary>The technique's name.</summary>
    public string Technique { get; init; } = "";

    /// <summary>Class names in score order.</summary>
    public IReadOnlyList<string> Classes { get; init; } = [];

    /// <summary>Images used for training.</summary>
    public int TrainCount { get; init; }

    /// <summary>Images held out for validation (with <see cref="OutOfFold"/>, the members' folds together).</summary>
    public int ValidationCount { get; init; }

    /// <summary>
    /// Whether the validation metrics are out-of-fold: an ensemble whose members each held out their own fold, every
    /// held-out image scored by the one member that did not train on it (so <see cref="TrainCount"/> is every image).
    /// </summary>
    public bool OutOfFold { get; init; }

    /// <summary>Images that could not be used, with the reason.</summary>
    public IReadOnlyList<Data.RejectedImage> Rejected { get; init; } = [];

    /// <summary>Feature vectors served from the bottleneck cache.</summary>
    public int FromCache { get; init; }

    /// <summary>Metrics on the validation split, if there was one.</summary>
    public ClassificationReport? Validation { get; init; }

    /// <summary>
    /// Per-task validation metrics of multi-task models, keyed by task name (empty for single-task techniques).
    /// </summary>
    public IReadOnlyDictionary<string, TaskReport> Tasks { get; init; } = new Dictionary<string, TaskReport>();

    /// <summary>Per-epoch history for techniques that train with epochs; empty otherwise.</summary>
    public IReadOnlyList<EpochMetrics> History { get; init; } = [];

    /// <summary>
    /// The model's probabilities for each validation image (in <see cref="Classes"/> order), for per-image views such as the
    /// worst predictions of the HTML report; empty when there was no validation set or the technique does not record them.
    /// </summary>
    public IReadOnlyList<ImagePrediction> ValidationPredictions { get; init; } = [];

    /// <summary>Domain adaptation: source and target features before and after adaptation, projected to 2-D; null for other techniques.</summary>
    public DomainProjection? Domains { get; init; }

    /// <summary>Wall time of featurisation.</summary>
    public TimeSpan FeaturizationTime { get; init; }

    /// <summary>Wall time of training.</summary>
    public TimeSpan TrainingTime { get; init; }

    /// <summary>The L2 regularisation the L-BFGS head of feature extraction was trained with (chosen or given); null for other heads.</summary>
    public float? HeadL2Regularization { get; init; }
}

/// <summary>
/// Source and target features projected onto their two leading principal components, before adaptation (raw backbone
/// features) and after (what the head reads); each array holds the source points, then the target points.
/// </summary>
/// <param name="Method">The adaptation method.</param>
/// <param name="Before">Source and target points of the raw features.</param>
/// <param name="After">Source and target points of the adapted features.</param>
public sealed record DomainProjection(string Method, (double X, double Y)[][] Before, (double X, double Y)[][] After);

/// <summary>Metrics of one training epoch, as passed to metrics callbacks.</summary>
/// <param name="Epoch">Zero-based epoch.</param>
/// <param name="TrainLoss">Mean training loss.</param>
/// <param name="TrainAccuracy">Training accuracy.</param>
/// <param name="ValidationLoss">Validation loss, NaN when there is no validation set.</param>
/// <param name="ValidationAccuracy">Validation accuracy, NaN when there is no validation set.</param>
/// <param name="LearningRate">Learning rate at the end of the epoch.</param>
public sealed record EpochMetrics(int Epoch, double TrainLoss, double TrainAccuracy, double ValidationLoss, double ValidationAccuracy, double LearningRate);
