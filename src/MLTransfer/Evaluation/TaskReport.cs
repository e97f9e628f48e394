using MLTransfer.Data;

namespace MLTransfer.Evaluation;

/// <summary>Metrics of one task of a multi-task model: a <see cref="ClassificationReport"/> or a <see cref="RegressionReport"/>.</summary>
public sealed class TaskReport
{
    /// <summary>The task's name.</summary>
    public required string Task { get; init; }

    /// <summary>Classification or regression.</summary>
    public TaskKind Kind { get; init; }

    /// <summary>Images with a label for this task in the training set.</summary>
    public int TrainCount { get; init; }

    /// <summary>Images skipped for this task because their label was missing (or, in evaluation, of a class the model does not know).</summary>
    public int Missing { get; init; }

    /// <summary>Classification metrics; null for regression.</summary>
    public ClassificationReport? Classification { get; init; }

    /// <summary>Regression metrics; null for classification.</summary>
    public RegressionReport? Regression { get; init; }

    /// <summary>
    /// One number where higher is better, for comparing epochs and averaging over tasks: micro-accuracy for
    /// classification, R² for regression (NaN when there were no labelled images).
    /// </summary>
    public double Score => Classification is { Count: > 0 } c ? c.MicroAccuracy
        : Regression is { Count: > 0 } r ? r.RSquared : double.NaN;

    /// <summary>The report's JSON shape (snake_case keys), as printed under <c>"tasks"</c> by <c>mltransfer evaluate --json</c>.</summary>
    public Dictionary<string, object?> ToJson()
    {
        var json = new Dictionary<string, object?> { ["kind"] = Kind == TaskKind.Regression ? "regression" : "classification", ["missing"] = Missing };
        if (Classification is { } c)
        {
            json["n"] = c.Count;
            json["micro_accuracy"] = c.MicroAccuracy;
            json["macro_accuracy"] = c.MacroAccuracy;
            json["log_loss"] = c.LogLoss;
            json["classes"] = c.Classes;
            json["confusion_matrix"] = c.ConfusionMatrix;
        }
        if (Regression is { } r)
        {
            json["n"] = r.Count;
            json["mae"] = r.MeanAbsoluteError;
            json["rmse"] = r.RootMeanSquaredError;
            json["r2"] = double.IsNaN(r.RSquared) ? null : r.RSquared;
        }
        return json;
    }
}
