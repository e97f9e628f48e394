using MLTransfer.Data;
using MLTransfer.Torch.FineTuning;

namespace MLTransfer.Torch.MultiTask;

/// <summary>How the tasks' losses are combined into the one loss the shared backbone trains on.</summary>
public enum LossWeighting
{
    /// <summary>The sum of the task losses (regression targets are standardised, so their losses are on a comparable scale).</summary>
    Equal,
    /// <summary>A weighted sum with <see cref="MultiTaskFineTuningOptions.TaskWeights"/> (missing tasks weigh 1).</summary>
    Fixed,
    /// <summary>
    /// Homoscedastic uncertainty weighting (Kendall, Gal and Cipolla 2018, "Multi-Task Learning Using Uncertainty to Weigh
    /// Losses for Scene Geometry and Semantics"): one learnt s = log σ² per task; a regression loss L contributes
    /// ½·e^(−s)·L + ½·s, a classification loss e^(−s)·L + ½·s.
    /// </summary>
    Uncertainty,
}

/// <summary>How the tasks' gradients on the shared backbone are combined.</summary>
public enum GradientBalancing
{
    /// <summary>The gradient of the combined loss.</summary>
    None,
    /// <summary>
    /// PCGrad (Yu, Kumar, Gupta, Levine, Hausman and Finn 2020, "Gradient Surgery for Multi-Task Learning"): each task's
    /// backbone gradient is projected onto the normal plane of every other task's gradient it conflicts with (negative
    /// dot product), in a random task order, and the projected gradients are summed. Costs one backward pass per task.
    /// </summary>
    PCGrad,
}

/// <summary>Options of multi-task fine-tuning: a shared backbone trained jointly with one head per task.</summary>
public sealed class MultiTaskFineTuningOptions
{
    /// <summary>Task columns to learn, in this order; null means every input column except <c>ImagePath</c>. The default value is null.</summary>
    public IReadOnlyList<string>? Tasks { get; set; }

    /// <summary>Declared task kinds; undeclared ones are inferred (<see cref="ImageManifest.InferKind"/>). The default value is null.</summary>
    public IReadOnlyDictionary<string, TaskKind>? Kinds { get; set; }

    /// <summary>See <see cref="ImageManifest.InferKind"/>. The default value is 10.</summary>
    public int NumericClassLimit { get; set; } = ImageManifest.DefaultNumericClassLimit;

    /// <summary>The pretrained backbone; null means ResNet18. The default value is null.</summary>
    public Backbones.Backbone? Backbone { get; set; }

    /// <summary>Square input size in pixels. The default value is 224.</summary>
    public int ImageSize { get; set; } = 224;

    /// <summary>Passes over the training images. The default value is 6.</summary>
    public int Epochs { get; set; } = 6;

    /// <summary>Epochs training the heads only (backbone frozen) before the whole network trains. The default value is 1.</summary>
    public int UnfreezeAfterEpochs { get; set; } = 1;

    /// <summary>Images per step. The default value is 32.</summary>
    public int BatchSize { get; set; } = 32;

    /// <summary>Peak learning rate of the heads (AdamW, one-cycle schedule per phase). The default value is 1e-3.</summary>
    public double LearningRate { get; set; } = 1e-3;

    /// <summary>The backbone's learning rate as a share of <see cref="LearningRate"/>. The default value is 0.1.</summary>
    public double BackboneLearningRateFactor { get; set; } = 0.1;

    /// <summary>AdamW weight decay. The default value is 1e-4.</summary>
    public double WeightDecay { get; set; } = 1e-4;

    /// <summary>How task losses are combined. The default value is <see cref="LossWeighting.Uncertainty"/>.</summary>
    public LossWeighting Weighting { get; set; } = LossWeighting.Uncertainty;

    /// <summary>Task weights for <see cref="LossWeighting.Fixed"/>, by task name. The default value is null (all 1).</summary>
    public IReadOnlyDictionary<string, double>? TaskWeights { get; set; }

    /// <summary>Gradient balancing on the shared backbone. The default value is <see cref="GradientBalancing.None"/>.</summary>
    public GradientBalancing Balancing { get; set; } = GradientBalancing.None;

    /// <summary>
    /// Keep the backbone's BatchNorm running statistics while fine-tuning (BatchNorm scales and biases still train), so the
    /// features the heads see in training match the exported model's; steadier with small batches and few images. The default value is true.
    /// </summary>
    public bool FreezeBatchNormStatistics { get; set; } = true;

    /// <summary>Random horizontal flips of training images. The default value is true.</summary>
    public bool HorizontalFlip { get; set; } = true;

    /// <summary>Smallest area share of the random resized crop; 1 disables cropping. The default value is 1.</summary>
    public double RandomResizedCropMinScale { get; set; } = 1.0;

    /// <summary>Share of the images (seeded random split) held out for per-task validation and early stopping. The default value is 0.1.</summary>
    public double ValidationFraction { get; set; } = 0.1;

    /// <summary>An explicit validation set (labels in task order) used instead of a split. The default value is null.</summary>
    public IReadOnlyList<MultiLabelExample>? Validation { get; set; }

    /// <summary>
    /// Stop after this many whole-network epochs without improving the mean of the tasks' validation scores
    /// (accuracy for classification, R² for regression); the best epoch's weights are kept; 0 disables. The default value is 2.
    /// </summary>
    public int EarlyStoppingPatience { get; set; } = 2;

    /// <summary>Seed of the split, shuffles, augmentation and initialisation. The default value is 0.</summary>
    public int Seed { get; set; }

    /// <summary>libtorch threads; null means one per core. The default value is null.</summary>
    public int? Threads { get; set; }

    /// <summary>Folder for the fine-tuned ONNX graph the exported chain reads; null means <c>$TMPDIR/mltransfer/fine-tuned</c>. The default value is null.</summary>
    public string? GraphDirectory { get; set; }

    /// <summary>Also write a standalone ONNX model here, with one output <c>Score_T</c> per task. The default value is null (no ONNX file).</summary>
    public string? OnnxPath { get; set; }

    /// <summary>Receives per-task metrics after every epoch. The default value is null.</summary>
    public Action<MultiTaskEpochMetrics>? MetricsCallback { get; set; }

    internal void Validate()
    {
        if (Epochs < 1 || BatchSize < 2 || ImageSize < 16 || LearningRate <= 0 || BackboneLearningRateFactor < 0 || UnfreezeAfterEpochs < 0)
            throw new ArgumentOutOfRangeException(nameof(MultiTaskFineTuningOptions),
                "Epochs ≥ 1, BatchSize ≥ 2, ImageSize ≥ 16, LearningRate > 0, BackboneLearningRateFactor ≥ 0 and UnfreezeAfterEpochs ≥ 0 are required.");
        if (ValidationFraction is < 0 or >= 1)
            throw new ArgumentOutOfRangeException(nameof(ValidationFraction), ValidationFraction, "The validation fraction must be in [0, 1).");
        if (RandomResizedCropMinScale is <= 0 or > 1)
            throw new ArgumentOutOfRangeException(nameof(RandomResizedCropMinScale), RandomResizedCropMinScale, "Must be in (0, 1].");
    }
}

/// <summary>Metrics of one epoch of multi-task fine-tuning.</summary>
/// <param name="Epoch">1-based epoch.</param>
/// <param name="Epochs">Epochs planned.</param>
/// <param name="Phase">Heads only or the whole network.</param>
/// <param name="TrainLoss">Mean combined (weighted) training loss.</param>
/// <param name="TaskTrainLosses">Mean unweighted training loss per task (cross-entropy, or MSE on standardised targets).</param>
/// <param name="TaskWeights">Effective weight of each task at the end of the epoch (e^(−s) for uncertainty weighting).</param>
/// <param name="Validation">Per-task validation metrics; empty without a validation set.</param>
/// <param name="MeanValidationScore">Mean over tasks of <see cref="Evaluation.TaskReport.Score"/>; NaN without a validation set.</param>
/// <param name="IsBest">Whether this epoch is the best so far (its weights are kept).</param>
/// <param name="Elapsed">Time since training started.</param>
public sealed record MultiTaskEpochMetrics(int Epoch, int Epochs, FineTuningPhase Phase, double TrainLoss,
    IReadOnlyDictionary<string, double> TaskTrainLosses, IReadOnlyDictionary<string, double> TaskWeights,
    IReadOnlyDictionary<string, Evaluation.TaskReport> Validation, double MeanValidationScore, bool IsBest, TimeSpan Elapsed);
