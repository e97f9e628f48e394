using Microsoft.ML;
using MLTransfer.Techniques;

namespace MLTransfer.Heads;

/// <summary>Metric watched by early stopping.</summary>
public enum EarlyStoppingMetric
{
    /// <summary>Validation accuracy (higher is better).</summary>
    Accuracy,
    /// <summary>Validation cross-entropy loss (lower is better).</summary>
    Loss,
}

/// <summary>
/// Early stopping, named as in ML.NET's <c>ImageClassificationTrainer.EarlyStopping</c>: stop when the metric has
/// not improved by <see cref="MinDelta"/> for <see cref="Patience"/> epochs, and keep the best epoch's weights.
/// </summary>
public sealed class EarlyStopping
{
    /// <summary>Creates the criterion.</summary>
    /// <param name="minDelta">Smallest change that counts as an improvement. The default value is 0.01.</param>
    /// <param name="patience">Epochs without improvement before stopping. The default value is 20.</param>
    /// <param name="metric">Metric to watch. The default value is <see cref="EarlyStoppingMetric.Accuracy"/>.</param>
    public EarlyStopping(float minDelta = 0.01f, int patience = 20, EarlyStoppingMetric metric = EarlyStoppingMetric.Accuracy)
    {
        MinDelta = minDelta;
        Patience = patience;
        Metric = metric;
    }

    /// <summary>Smallest change that counts as an improvement.</summary>
    public float MinDelta { get; }

    /// <summary>Epochs without improvement before stopping.</summary>
    public int Patience { get; }

    /// <summary>Metric to watch.</summary>
    public EarlyStoppingMetric Metric { get; }
}

/// <summary>
/// Options of the image-classification head: a softmax layer trained with mini-batch SGD with momentum on the
/// frozen backbone's features. Property names match ML.NET's <c>ImageClassificationTrainer.Options</c>
/// (<c>Microsoft.ML.Vision</c>), so code written for that trainer ports by changing one call.
/// </summary>
public sealed class ImageClassificationHeadOptions
{
    /// <summary>Number of passes over the training features. The default value is 200.</summary>
    public int Epoch { get; set; } = 200;

    /// <summary>Images per gradient step. The default value is 10.</summary>
    public int BatchSize { get; set; } = 10;

    /// <summary>SGD learning rate (on standardised features). The default value is 0.01.</summary>
    public float LearningRate { get; set; } = 0.01f;

    /// <summary>SGD momentum. The default value is 0.9.</summary>
    public float Momentum { get; set; } = 0.9f;

    /// <summary>L2 weight decay. The default value is 0.0001.</summary>
    public float L2Regularization { get; set; } = 1e-4f;

    /// <summary>Early stopping on the validation set; null disables it. The default value is <c>new EarlyStopping()</c>.</summary>
    public EarlyStopping? EarlyStoppingCriteria { get; set; } = new();

    /// <summary>An explicit validation set (with <c>ImagePath</c> and <c>Label</c> columns); when null, <see cref="ValidationSetFraction"/> of the training images is held out. The default value is null.</summary>
    public IDataView? ValidationSet { get; set; }

    /// <summary>
    /// Share of training images held out for validation when <see cref="ValidationSet"/> is null. Null means the
    /// technique's own validation fraction when it has one (e.g. the CLI's <c>--validation-fraction</c>), otherwise
    /// <see cref="EarlyStoppingValidationFraction"/> (0.1) when early stopping is on and none when it is off. The default value is null.
    /// </summary>
    public float? ValidationSetFraction { get; set; }

    /// <summary>The share held out when early stopping is on and no validation set or fraction is given: 0.1.</summary>
    public const float EarlyStoppingValidationFraction = 0.1f;

    /// <summary>Called after every epoch with its metrics. The default value is null.</summary>
    public Action<EpochMetrics>? MetricsCallback { get; set; }

    /// <summary>
    /// Folder of the bottleneck cache (feature vectors), used unless the engine options name a cache folder themselves;
    /// null means the engine's default cache folder. The default value is null.
    /// </summary>
    public string? WorkspacePath { get; set; }

    /// <summary>Read the training images' vectors from the bottleneck cache when present; false computes them afresh (and does not read or write the cache). The default value is true.</summary>
    public bool ReuseTrainSetBottleneckCachedValues { get; set; } = true;

    /// <summary>Read the validation images' vectors from the bottleneck cache when present; false computes them afresh (and does not read or write the cache). The default value is true.</summary>
    public bool ReuseValidationSetBottleneckCachedValues { get; set; } = true;
}
