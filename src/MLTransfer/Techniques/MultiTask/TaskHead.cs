using Microsoft.ML;
using Microsoft.ML.Data;
using MLTransfer.Data;
using MLTransfer.Evaluation;
using MLTransfer.Export;
using MLTransfer.Heads;

namespace MLTransfer.Techniques.MultiTask;

/// <summary>The trained head of one task on shared features: a softmax <see cref="LinearHead"/> or a <see cref="RegressionHead"/>.</summary>
public sealed class TaskHead
{
    /// <summary>A classification head.</summary>
    /// <param name="task">The task.</param>
    /// <param name="head">The softmax head.</param>
    public TaskHead(ManifestTask task, LinearHead head)
    {
        Task = task ?? throw new ArgumentNullException(nameof(task));
        Classifier = head ?? throw new ArgumentNullException(nameof(head));
    }

    /// <summary>A regression head.</summary>
    /// <param name="task">The task.</param>
    /// <param name="head">The linear regression head.</param>
    public TaskHead(ManifestTask task, RegressionHead head)
    {
        Task = task ?? throw new ArgumentNullException(nameof(task));
        Regressor = head ?? throw new ArgumentNullException(nameof(head));
    }

    /// <summary>The task.</summary>
    public ManifestTask Task { get; }

    /// <summary>The classification head; null for regression.</summary>
    public LinearHead? Classifier { get; }

    /// <summary>The regression head; null for classification.</summary>
    public RegressionHead? Regressor { get; }

    /// <summary>ML.NET transformers reading <c>Features</c> and writing <c>Score_T</c> (and <c>PredictedLabel_T</c>).</summary>
    /// <param name="mlContext">The ML.NET context.</param>
    public ITransformer ToMLNet(MLContext mlContext) => Classifier is not null
        ? Classifier.ToMLNet(mlContext, ImagePipeline.FeaturesColumn, MultiTaskColumns.Score(Task.Name), MultiTaskColumns.PredictedLabel(Task.Name))
        : Regressor!.ToMLNet(mlContext, ImagePipeline.FeaturesColumn, MultiTaskColumns.Score(Task.Name));

    /// <summary>
    /// Metrics of this head on feature vectors with their labels for this task; blank labels (and, for
    /// classification, labels of classes the head does not know) are skipped and counted in <see cref="TaskReport.Missing"/>.
    /// </summary>
    /// <param name="features">Feature vectors.</param>
    /// <param name="labels">This task's label of each vector.</param>
    /// <param name="trainCount">Labelled training images of the task, for the report.</param>
    public TaskReport Evaluate(IReadOnlyList<float[]> features, IReadOnlyList<string> labels, int trainCount = 0)
    {
        ArgumentNullException.ThrowIfNull(features);
        ArgumentNullException.ThrowIfNull(labels);
        var rows = Enumerable.Range(0, labels.Count).Where(i => labels[i].Length > 0).ToList();
        if (Classifier is { } c)
        {
            var index = c.Classes.Select((name, i) => (name, i)).ToDictionary(p => p.name, p => p.i, StringComparer.Ordinal);
            var known = rows.Where(i => index.ContainsKey(labels[i])).ToList();
            return new TaskReport
            {
                Task = Task.Name, Kind = TaskKind.Classification, TrainCount = trainCount, Missing = labels.Count - known.Count,
                Classification = ClassificationReport.Compute(c.Classes, known.Select(i => index[labels[i]]).ToArray(),
                    known.Select(i => c.Predict(features[i])).ToArray()),
            };
        }
        var truth = rows.Select(i => ImageManifest.TryParseNumber(labels[i], out var v) ? v
            : throw new InvalidDataException($"Task '{Task.Name}': '{labels[i]}' is not a number.")).ToArray();
        return new TaskReport
        {
            Task = Task.Name, Kind = TaskKind.Regression, TrainCount = trainCount, Missing = labels.Count - rows.Count,
            Regression = RegressionReport.Compute(truth, rows.Select(i => (double)Regressor!.Predict(features[i])).ToArray()),
        };
    }

    /// <summary>Chains the heads of all tasks after each other: one model part reading the shared <c>Features</c> once per image.</summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="heads">The heads.</param>
    public static ITransformer Chain(MLContext mlContext, IEnumerable<TaskHead> heads)
    {
        ArgumentNullException.ThrowIfNull(heads);
        var parts = heads.Select(h => h.ToMLNet(mlContext)).ToArray();
        if (parts.Length == 0)
            throw new ArgumentException("No heads.");
        return new TransformerChain<ITransformer>(parts);
    }
}
