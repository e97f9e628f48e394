using MLTransfer.Data;

namespace MLTransfer.Prediction;

/// <summary>What a model predicts for one image: one <see cref="TaskPrediction"/> per task (a single-task model has one).</summary>
public sealed class ImagePrediction
{
    internal ImagePrediction(IReadOnlyList<TaskPrediction> tasks) => Tasks = tasks;

    /// <summary>One entry per task of the model, in the model's task order.</summary>
    public IReadOnlyList<TaskPrediction> Tasks { get; }

    /// <summary>The prediction of one task of a multi-task model.</summary>
    /// <param name="task">The task name.</param>
    /// <exception cref="KeyNotFoundException">The model has no such task.</exception>
    public TaskPrediction this[string task] =>
        Tasks.FirstOrDefault(t => t.Task == task) ?? throw new KeyNotFoundException($"The model has no task '{task}'; it has: {string.Join(", ", Tasks.Select(t => t.Task))}.");

    /// <summary>The predicted class of a single-task classifier (the <c>.zip</c>'s <c>PredictedLabel</c>).</summary>
    /// <exception cref="InvalidOperationException">The model has several tasks; use <see cref="Tasks"/>.</exception>
    public string Label => Single.Label!;

    /// <summary>The class probabilities of a single-task classifier, in the model's class order (the <c>.zip</c>'s <c>Score</c>).</summary>
    /// <exception cref="InvalidOperationException">The model has several tasks; use <see cref="Tasks"/>.</exception>
    public IReadOnlyList<float> Scores => Single.Scores;

    private TaskPrediction Single => Tasks is [{ Kind: TaskKind.Classification } only] ? only
        : throw new InvalidOperationException($"The model has {Tasks.Count} tasks ({string.Join(", ", Tasks.Select(t => t.Task))}); read them from Tasks.");
}

/// <summary>The prediction of one task.</summary>
public sealed class TaskPrediction
{
    internal TaskPrediction(string task, TaskKind kind, string? label, IReadOnlyList<string> classes, float[] scores, float value)
    {
        Task = task;
        Kind = kind;
        Label = label;
        Classes = classes;
        Scores = scores;
        Value = value;
    }

    /// <summary>The task name; empty for the one task of a single-task model.</summary>
    public string Task { get; }

    /// <summary>Classification or regression.</summary>
    public TaskKind Kind { get; }

    /// <summary>Classification: the predicted class (<c>PredictedLabel</c> / <c>PredictedLabel_T</c>); regression: null.</summary>
    public string? Label { get; }

    /// <summary>Classification: the class names in score order; regression: empty.</summary>
    public IReadOnlyList<string> Classes { get; }

    /// <summary>Classification: one probability per class of <see cref="Classes"/> (<c>Score</c> / <c>Score_T</c>); regression: empty.</summary>
    public IReadOnlyList<float> Scores { get; }

    /// <summary>Regression: the predicted number (<c>Score_T</c>); classification: NaN.</summary>
    public float Value { get; }

    /// <summary>The <paramref name="count"/> most probable classes, most probable first (ties keep class order).</summary>
    /// <param name="count">How many; more than the classes gives all of them.</param>
    public IReadOnlyList<ClassScore> Top(int count)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        return Classes.Select((c, i) => new ClassScore(c, Scores[i])).OrderByDescending(p => p.Score).Take(count).ToList();
    }
}

/// <summary>A class and its probability.</summary>
/// <param name="Label">The class name.</param>
/// <param name="Score">Its probability.</param>
public readonly record struct ClassScore(string Label, float Score);

/// <summary>The outcome of one image of a batch: a prediction, or the reason the image was rejected.</summary>
public sealed class PredictionOutcome
{
    internal PredictionOutcome(ImagePrediction? prediction, string? error)
    {
        Prediction = prediction;
        Error = error;
    }

    /// <summary>The prediction; null when the image was rejected.</summary>
    public ImagePrediction? Prediction { get; }

    /// <summary>Why the image was rejected (as <see cref="InvalidImageException.Reason"/>); null on success.</summary>
    public string? Error { get; }

    /// <summary>Whether the image was predicted.</summary>
    public bool Succeeded => Prediction is not null;
}

/// <summary>What a loaded model is: its tasks and classes, the technique and backbone that made it, its image size.</summary>
public sealed class ImageClassifierInfo
{
    internal ImageClassifierInfo(string? technique, string? backbone, int imageSize, IReadOnlyList<ModelTask> tasks, bool isMultiTask)
    {
        Technique = technique;
        Backbone = backbone;
        ImageSize = imageSize;
        Tasks = tasks;
        IsMultiTask = isMultiTask;
    }

    /// <summary>The technique that trained the model (e.g. <c>feature-extraction</c>), or null when the file does not record it.</summary>
    public string? Technique { get; }

    /// <summary>The backbone the model's graph was built from (e.g. <c>resnet18</c>), or null when the graph does not record it.</summary>
    public string? Backbone { get; }

    /// <summary>The square size images are resized to.</summary>
    public int ImageSize { get; }

    /// <summary>The model's tasks; a single-task model has one, named "".</summary>
    public IReadOnlyList<ModelTask> Tasks { get; }

    /// <summary>Whether the model is a multi-task one (columns <c>Score_T</c>), rather than a single-task classifier (<c>Score</c>).</summary>
    public bool IsMultiTask { get; }
}

/// <summary>One task of a model.</summary>
/// <param name="Name">The task name; "" for a single-task model.</param>
/// <param name="Kind">Classification or regression.</param>
/// <param name="Classes">Classification: the class names in score order; regression: empty.</param>
public sealed record ModelTask(string Name, TaskKind Kind, IReadOnlyList<string> Classes);

/// <summary>Counts of the images and batches an <see cref="ImageClassifier"/> has run.</summary>
/// <param name="Images">Images run through the graph.</param>
/// <param name="Batches">ONNX Runtime runs (batches) they took.</param>
public readonly record struct PredictionStatistics(long Images, long Batches)
{
    /// <summary>Images per batch on average; 0 before the first batch.</summary>
    public double MeanBatchSize => Batches == 0 ? 0 : (double)Images / Batches;
}
