namespace MLTransfer.Techniques.MultiTask;

/// <summary>Names of the per-task output columns every multi-task model (frozen or fine-tuned) produces.</summary>
public static class MultiTaskColumns
{
    /// <summary>Prefix of the score column: probabilities (classification) or the predicted number (regression).</summary>
    public const string ScorePrefix = "Score_";

    /// <summary>Prefix of the predicted-class column (classification only).</summary>
    public const string PredictedLabelPrefix = "PredictedLabel_";

    /// <summary><c>Score_T</c>.</summary>
    /// <param name="task">The task name.</param>
    public static string Score(string task) => ScorePrefix + task;

    /// <summary><c>PredictedLabel_T</c>.</summary>
    /// <param name="task">The task name.</param>
    public static string PredictedLabel(string task) => PredictedLabelPrefix + task;
}
