using Microsoft.ML;
using MLTransfer.Data;
using MLTransfer.Evaluation;
using MLTransfer.Explain;
using MLTransfer.Techniques;

namespace MLTransfer.Reporting;

/// <summary>One of the worst predictions (largest loss) of a model, with its pictures.</summary>
/// <param name="ImagePath">The image file.</param>
/// <param name="Label">Its true class.</param>
/// <param name="Predicted">The predicted class.</param>
/// <param name="LabelProbability">The probability the model gave the true class.</param>
/// <param name="PredictedProbability">The probability of the predicted class.</param>
/// <param name="Photo">The image as the model sees it, PNG.</param>
/// <param name="HeatMap">The predicted class's heat map over the image, PNG; null when the model could not be explained.</param>
public sealed record WorstPrediction(string ImagePath, string Label, string Predicted, float LabelProbability, float PredictedProbability, byte[] Photo, byte[]? HeatMap);

/// <summary>Options of <see cref="ModelReport"/>.</summary>
public sealed class ModelReportOptions
{
    /// <summary>How many of the worst predictions (largest loss) the gallery shows. The default value is 12.</summary>
    public int WorstPredictions { get; set; } = 12;

    /// <summary>Side of the gallery's pictures in pixels. The default value is 176.</summary>
    public int PictureSize { get; set; } = 176;

    /// <summary>Whether the gallery shows heat maps (<see cref="ImageExplainer"/>). The default value is true.</summary>
    public bool HeatMaps { get; set; } = true;
}

/// <summary>
/// Everything one HTML report shows (see <see cref="HtmlReport"/>): a summary, the training curves, the metrics with
/// confusion matrix and per-class precision/recall/F1, a gallery of the worst predictions with heat maps, the rejected
/// images, and, where they apply, the domain-adaptation projection and one section per task.
/// </summary>
public sealed class ModelReport
{
    /// <summary>The report's title.</summary>
    public required string Title { get; init; }

    /// <summary>A line under the title (e.g. the model's path).</summary>
    public string? Subtitle { get; init; }

    /// <summary>Summary rows, label and value.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Summary { get; init; } = [];

    /// <summary>What <see cref="Metrics"/> were measured on. The default value is <c>Validation</c>.</summary>
    public string MetricsLabel { get; init; } = "Validation";

    /// <summary>The metrics; null when there were none (no validation split).</summary>
    public ClassificationReport? Metrics { get; init; }

    /// <summary>Per-epoch metrics of techniques that train with epochs.</summary>
    public IReadOnlyList<EpochMetrics> History { get; init; } = [];

    /// <summary>The worst predictions, worst first.</summary>
    public IReadOnlyList<WorstPrediction> WorstPredictions { get; init; } = [];

    /// <summary>How the gallery's heat maps were made (e.g. "class-activation maps"); null when there are none.</summary>
    public string? HeatMapMethod { get; init; }

    /// <summary>Images that could not be used, with the reason.</summary>
    public IReadOnlyList<RejectedImage> Rejected { get; init; } = [];

    /// <summary>Domain adaptation: source and target features before and after adaptation.</summary>
    public DomainProjection? Domains { get; init; }

    /// <summary>Multi-task models: metrics per task.</summary>
    public IReadOnlyDictionary<string, TaskReport> Tasks { get; init; } = new Dictionary<string, TaskReport>();

    /// <summary>The report of a freshly trained model: its training report, plus the worst validation predictions with heat maps.</summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="model">The trained model.</param>
    /// <param name="modelPath">Where the model was saved (shown in the report).</param>
    /// <param name="options">Options; null means the defaults.</param>
    /// <param name="rejected">Images rejected before training (e.g. by <see cref="ImageFolder.Load"/>), listed with the model's own; null means none.</param>
    public static ModelReport FromTraining(MLContext mlContext, TransferModel model, string modelPath, ModelReportOptions? options = null,
        IReadOnlyList<RejectedImage>? rejected = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        var r = model.Report;
        var allRejected = (rejected ?? []).Concat(r.Rejected).DistinctBy(x => x.Path, StringComparer.Ordinal).ToList();
        var summary = new List<KeyValuePair<string, string>>
        {
            new("Technique", r.Technique),
            new("Classes", r.Classes.Count > 0 ? $"{r.Classes.Count}: {string.Join(", ", r.Classes.Take(20))}{(r.Classes.Count > 20 ? ", …" : "")}" : "-"),
        };
        if (r.Tasks.Count > 0)
            summary.Add(new("Tasks", string.Join(", ", r.Tasks.Keys)));
        summary.Add(new("Train / validation images", $"{r.TrainCount:N0} / {r.ValidationCount:N0}{(r.OutOfFold ? " (out-of-fold)" : "")}"));
        summary.Add(new("Rejected (unreadable)", allRejected.Count.ToString("N0")));
        if (r.FromCache > 0)
            summary.Add(new("Features from cache", $"{r.FromCache:N0}"));
        summary.Add(new("Featurisation time", $"{r.FeaturizationTime.TotalSeconds:F1} s"));
        summary.Add(new("Training time", $"{r.TrainingTime.TotalSeconds:F1} s"));
        if (r.History.Count > 0)
            summary.Add(new("Epochs", r.History.Count.ToString("N0")));
        var (worst, method) = Worst(mlContext, model, r.ValidationPredictions, options ?? new ModelReportOptions());
        return new ModelReport
        {
            Title = $"{Path.GetFileName(modelPath)}: {r.Technique}",
            Subtitle = Path.GetFullPath(modelPath),
            Summary = summary,
            Metrics = r.Validation,
            History = r.History,
            WorstPredictions = worst,
            HeatMapMethod = method,
            Rejected = allRejected,
            Domains = r.Domains,
            Tasks = r.Tasks,
        };
    }

    /// <summary>The report of a saved model evaluated on a labelled folder.</summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="model">The model.</param>
    /// <param name="modelPath">The model file (shown in the report).</param>
    /// <param name="folder">The evaluated folder (shown in the report).</param>
    /// <param name="metrics">The metrics.</param>
    /// <param name="predictions">The model's probabilities per image.</param>
    /// <param name="rejected">Images that could not be used.</param>
    /// <param name="options">Options; null means the defaults.</param>
    public static ModelReport FromEvaluation(MLContext mlContext, ITransformer model, string modelPath, string folder, ClassificationReport metrics,
        IReadOnlyList<ImagePrediction> predictions, IReadOnlyList<RejectedImage> rejected, ModelReportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(metrics);
        var (worst, method) = Worst(mlContext, model, predictions, options ?? new ModelReportOptions());
        return new ModelReport
        {
            Title = $"{Path.GetFileName(modelPath)}: evaluation",
            Subtitle = Path.GetFullPath(modelPath),
            Summary =
            [
                new("Evaluated folder", Path.GetFullPath(folder)),
                new("Images", metrics.Count.ToString("N0")),
                new("Classes", $"{metrics.Classes.Count}: {string.Join(", ", metrics.Classes.Take(20))}{(metrics.Classes.Count > 20 ? ", …" : "")}"),
                new("Rejected (unreadable)", rejected.Count.ToString("N0")),
            ],
            MetricsLabel = "Evaluation",
            Metrics = metrics,
            WorstPredictions = worst,
            HeatMapMethod = method,
            Rejected = rejected,
        };
    }

    /// <summary>The <paramref name="count"/> predictions with the largest loss (−log of the true class's probability), worst first.</summary>
    /// <param name="predictions">Per-image predictions.</param>
    /// <param name="classes">The model's classes, the order of the probabilities.</param>
    /// <param name="count">How many to keep.</param>
    public static IReadOnlyList<ImagePrediction> TopLosses(IReadOnlyList<ImagePrediction> predictions, IReadOnlyList<string> classes, int count)
    {
        ArgumentNullException.ThrowIfNull(predictions);
        ArgumentNullException.ThrowIfNull(classes);
        var index = classes.Select((c, i) => (c, i)).ToDictionary(p => p.c, p => p.i, StringComparer.Ordinal);
        return predictions.Where(p => index.ContainsKey(p.Label))
            .OrderByDescending(p => -Math.Log(Math.Max(p.Probabilities[index[p.Label]], 1e-15)))
            .ThenBy(p => p.ImagePath, StringComparer.Ordinal)
            .Take(count).ToList();
    }

    private static (IReadOnlyList<WorstPrediction> Worst, string? Method) Worst(MLContext mlContext, ITransformer model, IReadOnlyList<ImagePrediction> predictions,
        ModelReportOptions options)
    {
        if (predictions.Count == 0 || options.WorstPredictions <= 0)
            return ([], null);
        IReadOnlyList<string> classes;
        try
        {
            classes = ModelEvaluator.Classes(model);
        }
        catch (InvalidDataException)
        {
            return ([], null);
        }
        var worst = TopLosses(predictions, classes, options.WorstPredictions);
        var explanations = new Dictionary<string, Explanation>(StringComparer.Ordinal);
        string? method = null;
        if (options.HeatMaps)
        {
            try
            {
                using var explainer = new ImageExplainer(mlContext, model);
                method = explainer.Method == ExplanationMethod.ClassActivationMap ? "class-activation maps" : "occlusion sensitivity";
                foreach (var outcome in explainer.ExplainAll(worst.Select(w => w.ImagePath).Distinct(StringComparer.Ordinal)))
                    if (outcome.Explanation is { } e)
                        explanations[outcome.ImagePath] = e;
            }
            catch (Exception e) when (e is InvalidDataException or ArgumentException or MissingMethodException)
            {
                method = null;
            }
        }
        var size = options.PictureSize;
        var result = new List<WorstPrediction>();
        foreach (var p in worst)
        {
            var predicted = Array.IndexOf(p.Probabilities, p.Probabilities.Max());
            var labelProbability = p.Probabilities[classes.ToList().IndexOf(p.Label)];
            byte[]? photo, heat = null;
            if (explanations.TryGetValue(p.ImagePath, out var e))
            {
                photo = HeatMapImage.Photo(e, size);
                heat = HeatMapImage.Overlay(e, size: size);
            }
            else
                photo = HeatMapImage.Thumbnail(p.ImagePath, size);
            if (photo is null)
                continue;
            result.Add(new WorstPrediction(p.ImagePath, p.Label, classes[predicted], labelProbability, p.Probabilities[predicted], photo, heat));
        }
        return (result, explanations.Count > 0 ? method : null);
    }
}
