namespace MLTransfer.Torch.FineTuning;

/// <summary>
/// Options of fine-tuning: training a pretrained backbone end to end, together with a new linear classification
/// head. The defaults follow fastai's <c>fine_tune</c> recipe (Howard &amp; Gugger 2020): head-only first, then the
/// whole network with smaller learning rates for earlier layers (Howard &amp; Ruder 2018, ULMFiT), one-cycle
/// learning rates (Smith 2018), light augmentation and label smoothing (Szegedy et al. 2016).
/// </summary>
public sealed class FineTuningOptions
{
    /// <summary>The pretrained backbone to fine-tune; null means <see cref="Backbones.Backbone.ResNet18"/>. The default value is null.</summary>
    public Backbones.Backbone? Backbone { get; set; }

    /// <summary>The number of passes over the training images, including the head-only ones. The default value is 6.</summary>
    public int Epochs { get; set; } = 6;

    /// <summary>Images per optimisation step. The default value is 32.</summary>
    public int BatchSize { get; set; } = 32;

    /// <summary>
    /// The side, in pixels, that images are resized to (the same at training and prediction time). Smaller is much
    /// faster on CPUs; the backbone works at any size ≥ 32. The default value is 224.
    /// </summary>
    public int ImageSize { get; set; } = 224;

    /// <summary>The optimiser. The default value is <see cref="FineTuningOptimizer.AdamW"/>.</summary>
    public FineTuningOptimizer Optimizer { get; set; } = FineTuningOptimizer.AdamW;

    /// <summary>
    /// The peak learning rate of the head; backbone layers get smaller ones (see <see cref="LayerLearningRateDecay"/>).
    /// The default value is 0.001.
    /// </summary>
    public double LearningRate { get; set; } = 1e-3;

    /// <summary>Weight decay (decoupled for AdamW, L2 for SGD). The default value is 0.0001.</summary>
    public double WeightDecay { get; set; } = 1e-4;

    /// <summary>The learning-rate schedule, restarted at each phase. The default value is <see cref="LearningRateSchedule.OneCycle"/>.</summary>
    public LearningRateSchedule Schedule { get; set; } = LearningRateSchedule.OneCycle;

    /// <summary>
    /// The length of the learning-rate warm-up, in epochs (fractions allowed), capped at half of each phase.
    /// The default value is 1.
    /// </summary>
    public double WarmupEpochs { get; set; } = 1;

    /// <summary>
    /// Gradual unfreezing (Howard &amp; Ruder 2018): the first epochs train only the new head on the frozen backbone,
    /// then the whole network trains. 0 trains the whole network from the start. The default value is 1.
    /// </summary>
    public int UnfreezeAfterEpochs { get; set; } = 1;

    /// <summary>
    /// Discriminative learning rates (Howard &amp; Ruder 2018): the backbone is split into blocks (at its residual
    /// additions), the top block trains at LearningRate × decay, the one below at LearningRate × decay², and so on.
    /// 1 gives every layer the same rate. The default value is 0.7.
    /// </summary>
    public double LayerLearningRateDecay { get; set; } = 0.7;

    /// <summary>What BatchNormalization layers do while the backbone trains. The default value is <see cref="BatchNormMode.Train"/>.</summary>
    public BatchNormMode BatchNormMode { get; set; } = BatchNormMode.Train;

    /// <summary>
    /// The smallest share of the image area a random resized crop keeps (aspect ratio drawn in [3/4, 4/3]); 1
    /// disables cropping. Augmentations are re-drawn for every image in every epoch. The default value is 0.5.
    /// </summary>
    public double RandomResizedCropMinScale { get; set; } = 0.5;

    /// <summary>The largest share of the image area a random resized crop keeps. The default value is 1.</summary>
    public double RandomResizedCropMaxScale { get; set; } = 1.0;

    /// <summary>Whether images are mirrored left-right with probability ½. The default value is true.</summary>
    public bool HorizontalFlip { get; set; } = true;

    /// <summary>
    /// Colour jitter strength s: brightness, contrast and saturation are each scaled by a factor drawn in [1 − s, 1 + s];
    /// 0 disables it. The default value is 0.2.
    /// </summary>
    public double ColorJitter { get; set; } = 0.2;

    /// <summary>Label smoothing of the cross-entropy loss (Szegedy et al. 2016). The default value is 0.1.</summary>
    public double LabelSmoothing { get; set; } = 0.1;

    /// <summary>
    /// The share of each class held out (stratified) as the validation split that reports accuracy, picks the best
    /// epoch and drives early stopping; 0 trains on everything. The default value is 0.1.
    /// </summary>
    public double ValidationFraction { get; set; } = 0.1;

    /// <summary>An explicit validation set used instead of a split of the training images. The default value is null.</summary>
    public IReadOnlyList<Data.ImageExample>? Validation { get; set; }

    /// <summary>
    /// The folder where the fine-tuned backbone graph read by the exported ML.NET chain is written (the <c>.zip</c>
    /// embeds it when saved); null means <c>$TMPDIR/mltransfer/fine-tuned</c>. The default value is null.
    /// </summary>
    public string? GraphDirectory { get; set; }

    /// <summary>
    /// When set, the fine-tuned network with its head (Gemm → Softmax, output <c>Probabilities</c>) is also written
    /// to this path as a standalone ONNX model, atomically. The default value is null.
    /// </summary>
    public string? OnnxExportPath { get; set; }

    /// <summary>
    /// Stop when validation accuracy has not improved for this many epochs (the best epoch's weights are kept);
    /// 0 never stops early. The default value is 3.
    /// </summary>
    public int EarlyStoppingPatience { get; set; } = 3;

    /// <summary>
    /// The seed of everything random (split, shuffling, augmentation, head initialisation, libtorch): a run is
    /// repeatable given the seed and the thread count. The default value is 0.
    /// </summary>
    public int Seed { get; set; }

    /// <summary>
    /// A folder where a checkpoint is written (atomically) after every epoch; null writes none. The default value is null.
    /// </summary>
    public string? CheckpointDirectory { get; set; }

    /// <summary>
    /// Continue from the checkpoint in <see cref="CheckpointDirectory"/> when there is one (e.g. after the process was
    /// killed); the result equals an uninterrupted run with the same options. The default value is false.
    /// </summary>
    public bool Resume { get; set; }

    /// <summary>
    /// The fast option for CPUs: freeze all but the top <see cref="TopBlocks"/> blocks, compute the frozen blocks'
    /// outputs once for every image and train only the top on those cached outputs. Augmentation is then limited to
    /// none, since the cache holds the un-augmented images. The default value is false.
    /// </summary>
    public bool TrainTopBlocksOnly { get; set; }

    /// <summary>How many top blocks train when <see cref="TrainTopBlocksOnly"/> is set. The default value is 2.</summary>
    public int TopBlocks { get; set; } = 2;

    /// <summary>Threads libtorch uses; null uses <see cref="Environment.ProcessorCount"/>. The default value is null.</summary>
    public int? Threads { get; set; }

    /// <summary>Called after every epoch with its metrics (loss, accuracy, images/s, ETA). The default value is null.</summary>
    public Action<FineTuningEpochMetrics>? MetricsCallback { get; set; }

    /// <summary>Throws when an option is out of range.</summary>
    internal void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(Epochs, 1, nameof(Epochs));
        ArgumentOutOfRangeException.ThrowIfLessThan(BatchSize, 1, nameof(BatchSize));
        ArgumentOutOfRangeException.ThrowIfLessThan(ImageSize, 32, nameof(ImageSize));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(LearningRate, nameof(LearningRate));
        ArgumentOutOfRangeException.ThrowIfNegative(WeightDecay, nameof(WeightDecay));
        ArgumentOutOfRangeException.ThrowIfNegative(WarmupEpochs, nameof(WarmupEpochs));
        ArgumentOutOfRangeException.ThrowIfNegative(UnfreezeAfterEpochs, nameof(UnfreezeAfterEpochs));
        if (LayerLearningRateDecay is <= 0 or > 1)
        {
            throw new ArgumentOutOfRangeException(nameof(LayerLearningRateDecay), LayerLearningRateDecay, "must be in (0, 1].");
        }

        if (RandomResizedCropMinScale <= 0 || RandomResizedCropMinScale > RandomResizedCropMaxScale || RandomResizedCropMaxScale > 1)
        {
            throw new ArgumentOutOfRangeException(nameof(RandomResizedCropMinScale), "need 0 < min ≤ max ≤ 1.");
        }

        if (ColorJitter is < 0 or >= 1)
        {
            throw new ArgumentOutOfRangeException(nameof(ColorJitter), ColorJitter, "must be in [0, 1).");
        }

        if (LabelSmoothing is < 0 or >= 1)
        {
            throw new ArgumentOutOfRangeException(nameof(LabelSmoothing), LabelSmoothing, "must be in [0, 1).");
        }

        if (ValidationFraction is < 0 or >= 1)
        {
            throw new ArgumentOutOfRangeException(nameof(ValidationFraction), ValidationFraction, "must be in [0, 1).");
        }

        ArgumentOutOfRangeException.ThrowIfNegative(EarlyStoppingPatience, nameof(EarlyStoppingPatience));
        ArgumentOutOfRangeException.ThrowIfLessThan(TopBlocks, 1, nameof(TopBlocks));
        if (Resume && CheckpointDirectory is null)
        {
            throw new ArgumentException("Resume needs a CheckpointDirectory.", nameof(Resume));
        }
    }
}
