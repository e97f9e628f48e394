using Microsoft.ML;
using Microsoft.ML.Data;
using MLTransfer.Data;
using MLTransfer.Export;
using MLTransfer.Techniques.MultiTask;

namespace MLTransfer.Evaluation;

/// <summary>Runs a multi-task model (saved or trained) over a labelled manifest and computes each task's metrics.</summary>
public static class MultiTaskEvaluator
{
    /// <summary>
    /// The tasks of a model, read from its output schema: a vector <c>Score_T</c> is a classification task, a scalar
    /// one a regression task.
    /// </summary>
    /// <param name="model">A model with an <c>ImagePath</c> input.</param>
    public static IReadOnlyDictionary<string, TaskKind> Tasks(ITransformer model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var builder = new DataViewSchema.Builder();
        builder.AddColumn(ImagePipeline.ImagePathColumn, TextDataViewType.Instance);
        var output = model.GetOutputSchema(builder.ToSchema());
        return output.Where(c => !c.IsHidden && c.Name.StartsWith(MultiTaskColumns.ScorePrefix, StringComparison.Ordinal))
            .ToDictionary(c => c.Name[MultiTaskColumns.ScorePrefix.Length..], c => c.Type is VectorDataViewType ? TaskKind.Classification : TaskKind.Regression,
                StringComparer.Ordinal);
    }

    /// <summary>
    /// Predicts every image once and scores each task the model and the manifest share. Missing labels, and labels of
    /// classes the model does not know, are skipped and counted in <see cref="TaskReport.Missing"/>.
    /// </summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="model">The multi-task model.</param>
    /// <param name="manifest">Labelled images.</param>
    /// <exception cref="InvalidDataException">The model and the manifest share no task.</exception>
    public static IReadOnlyDictionary<string, TaskReport> Evaluate(MLContext mlContext, ITransformer model, ImageManifest manifest)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentNullException.ThrowIfNull(manifest);
        var modelTasks = Tasks(model);
        var shared = manifest.Tasks.Select((task, index) => (task.Name, Index: index)).Where(p => modelTasks.ContainsKey(p.Name)).ToList();
        if (shared.Count == 0)
            throw new InvalidDataException(
                $"The model's tasks ('{string.Join("', '", modelTasks.Keys)}') and the manifest's ('{string.Join("', '", manifest.Tasks.Select(t => t.Name))}') have none in common.");
        var input = mlContext.Data.LoadFromEnumerable(manifest.Examples.Select(e => new ImageExample { ImagePath = e.ImagePath }));
        var output = model.Transform(input);
        var columns = shared.Select(p => output.Schema[MultiTaskColumns.Score(p.Name)]).ToArray();
        var classification = new List<float[]>[shared.Count];
        var regression = new List<double>[shared.Count];
        using (var cursor = output.GetRowCursor(columns))
        {
            var vectorGetters = columns.Select(c => c.Type is VectorDataViewType ? cursor.GetGetter<VBuffer<float>>(c) : null).ToArray();
            var scalarGetters = columns.Select(c => c.Type is VectorDataViewType ? null : cursor.GetGetter<float>(c)).ToArray();
            for (var t = 0; t < shared.Count; t++)
            {
                classification[t] = [];
                regression[t] = [];
            }
            var vector = default(VBuffer<float>);
            var scalar = 0f;
            while (cursor.MoveNext())
                for (var t = 0; t < shared.Count; t++)
                {
                    if (vectorGetters[t] is { } vg)
                    {
                        vg(ref vector);
                        classification[t].Add(vector.DenseValues().ToArray());
                    }
                    else
                    {
                        scalarGetters[t]!(ref scalar);
                        regression[t].Add(scalar);
                    }
                }
        }
        var reports = new Dictionary<string, TaskReport>(StringComparer.Ordinal);
        for (var t = 0; t < shared.Count; t++)
        {
            var (name, index) = shared[t];
            var labels = manifest.Examples.Select(e => e.Labels[index]).ToList();
            reports[name] = modelTasks[name] == TaskKind.Classification
                ? Classify(name, ModelEvaluator.Classes(model, MultiTaskColumns.Score(name)), labels, classification[t])
                : Regress(name, labels, regression[t]);
        }
        return reports;
    }

    private static TaskReport Classify(string task, IReadOnlyList<string> classes, IReadOnlyList<string> labels, IReadOnlyList<float[]> scores)
    {
        var index = classes.Select((c, i) => (c, i)).ToDictionary(p => p.c, p => p.i, StringComparer.Ordinal);
        var rows = Enumerable.Range(0, labels.Count).Where(i => index.ContainsKey(labels[i])).ToList();
        return new TaskReport
        {
            Task = task, Kind = TaskKind.Classification, Missing = labels.Count - rows.Count,
            Classification = ClassificationReport.Compute(classes, rows.Select(i => index[labels[i]]).ToArray(), rows.Select(i => scores[i]).ToArray()),
        };
    }

    private static TaskReport Regress(string task, IReadOnlyList<string> labels, IReadOnlyList<double> predictions)
    {
        var truth = new List<double>();
        var predicted = new List<double>();
        for (var i = 0; i < labels.Count; i++)
            if (ImageManifest.TryParseNumber(labels[i], out var value))
            {
                truth.Add(value);
                predicted.Add(predictions[i]);
            }
        return new TaskReport { Task = task, Kind = TaskKind.Regression, Missing = labels.Count - truth.Count, Regression = RegressionReport.Compute(truth, predicted) };
    }
}
