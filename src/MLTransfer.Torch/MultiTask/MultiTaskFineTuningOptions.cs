using MLTransfer.Data;
using MLTransfer.Torch.Training;

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
    /// <summary>
    /// GradNorm (Chen, Badrinarayanan, Lee and Rabinovich 2018, "GradNorm: Gradient Normalization for Adaptive Loss
    /// Balancing in Deep Multitask Networks"): learnt weights w_t of the sum Σ w_t·L_t, trained so that each task's
    /// gradient norm on the last shared layer, G_t = ‖∇_W w_t·L_t‖, moves towards mean(G)·r_t^α, where r_t is the task's
    /// loss ratio L_t/L_t(0) relative to the mean ratio (<see cref="MultiTaskFineTuningOptions.GradNormAlpha"/>); the
    /// weights are renormalised to sum to the number of tasks after every step. Applies once the backbone trains.
    /// </summary>
    GradNorm,
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
public sealed class MultiTaskFineTuningOptions : Training.ILoopSettings
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

    /// <summary>GradNorm's asymmetry α: how strongly tasks that train slower get larger gradients. The default value is 1.5.</summary>
    public double GradNormAlpha { get; set; } = 1.5;

    /// <summary>
    /// What the backbone's BatchNorm layers do while it trains; <see cref="BatchNormMode.Frozen"/> keeps the pretrained
    /// statistics (scales and biases still train), so the features the heads see in training match the exported model's;
    /// steadier with small batches and few images. The default value is <see cref="BatchNormMode.Frozen"/>.
    /// </summary>
    public BatchNormMode BatchNorm { get; set; } = BatchNormMode.Frozen;

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

    /// <summary>
    /// Keep an exponential moving average of the weights, updated after every optimiser step with this per-step decay
    /// (Polyak averaging as in timm's model EMA; the first steps use min(decay, (1 + n)/(10 + n))). The average, not the
    /// last step's weights, is validated, kept as the best epoch and exported; it smooths the noise of the last steps.
    /// 0 keeps none; 0.99–0.9999 is usual (about 1/(1 − decay) steps are averaged). The default value is 0.
    /// </summary>
    public double WeightAverageDecay { get; set; }

    /// <summary>Seed of the split, shuffles, augmentation and initialisation. The default value is 0.</summary>
    public int Seed { get; set; }

    /// <summary>libtorch threads; null means one per core. The default value is null.</summary>
    public int? Threads { get; set; }

    /// <summary>Threads that read, decode and augment images while libtorch trains; null means half the cores (at least one). The default value is null.</summary>
    public int? DataThreads { get; set; }

    /// <summary>A folder where a checkpoint is written (atomically) after every epoch; null writes none. The default value is null.</summary>
    public string? CheckpointDirectory { get; set; }

    /// <summary>Continue from the checkpoint in <see cref="CheckpointDirectory"/> when there is one; the result equals an uninterrupted run. The default value is false.</summary>
    public bool Resume { get; set; }

    /// <summary>Where the fine-tuned ONNX graph is written while the exported chain is assembled (deleted before <c>Fit</c> returns); null means the system's temporary folder. The default value is null.</summary>
    public string? GraphDirectory { get; set; }

    /// <summary>Also write a standalone ONNX model here, with one output <c>Score_T</c> per task. The default value is null (no ONNX file).</summary>
    public string? OnnxPath { get; set; }

    /// <summary>Receives the metrics of every epoch, per-task ones included. The default value is null.</summary>
    public Action<TrainingEpochMetrics>? MetricsCallback { get; set; }

    /// <summary>Receives progress inside each epoch (step, images/s, ETA) about once a second. The default value is null.</summary>
    public IProgress<TrainingProgress>? Progress { get; set; }

    internal void Validate()
    {
        if (Epochs < 1 || BatchSize < 2 || ImageSize < 16 || LearningRate <= 0 || BackboneLearningRateFactor < 0 || UnfreezeAfterEpochs < 0)
            throw new ArgumentOutOfRangeException(nameof(MultiTaskFineTuningOptions),
                "Epochs ≥ 1, BatchSize ≥ 2, ImageSize ≥ 16, LearningRate > 0, BackboneLearningRateFactor ≥ 0 and UnfreezeAfterEpochs ≥ 0 are required.");
        if (ValidationFraction is < 0 or >= 1)
            throw new ArgumentOutOfRangeException(nameof(ValidationFraction), ValidationFraction, "The validation fraction must be in [0, 1).");
        if (RandomResizedCropMinScale is <= 0 or > 1)
            throw new ArgumentOutOfRangeException(nameof(RandomResizedCropMinScale), RandomResizedCropMinScale, "Must be in (0, 1].");
        if (!(LearningRate > 0) || double.IsInfinity(LearningRate))
            throw new ArgumentOutOfRangeException(nameof(LearningRate), LearningRate, "must be a positive number.");
        if (!(GradNormAlpha >= 0))
            throw new ArgumentOutOfRangeException(nameof(GradNormAlpha), GradNormAlpha, "must not be negative.");
        if (DataThreads is < 1)
            throw new ArgumentOutOfRangeException(nameof(DataThreads), DataThreads, "must be at least 1.");
        if (Resume && CheckpointDirectory is null)
            throw new ArgumentException("Resume needs a CheckpointDirectory.", nameof(Resume));
    }
}
