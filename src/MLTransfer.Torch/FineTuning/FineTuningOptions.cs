using System.Globalization;
using MLTransfer.Torch.Training;

namespace MLTransfer.Torch.FineTuning;

/// <summary>
/// Options of fine-tuning: training a pretrained backbone end to end, together with a new linear classification
/// head. The defaults follow fastai's <c>fine_tune</c> recipe (Howard &amp; Gugger 2020): head-only first, then the
/// whole network with smaller learning rates for earlier layers (Howard &amp; Ruder 2018, ULMFiT), one-cycle
/// learning rates (Smith 2018), light augmentation and label smoothing (Szegedy et al. 2016).
/// </summary>
public sealed class FineTuningOptions : Training.ILoopSettings
{
    /// <summary>The pretrained backbone to fine-tune; null means <see cref="Backbones.Backbone.ResNet18"/>. The default value is null.</summary>
    public Backbones.Backbone? Backbone { get; set; }

    /// <summary>The number of passes over the training images, including the head-only ones. The default value is 10.</summary>
    public int Epochs { get; set; } = 10;

    /// <summary>Images per optimisation step. The default value is 32.</summary>
    public int BatchSize { get; set; } = 32;

    /// <summary>
    /// The side, in pixels, that images are resized to (the same at training and prediction time). Smaller is much
    /// faster on CPUs; the backbone works at any size ≥ 32. The default value is 224.
    /// </summary>
    public int ImageSize { get; set; } = 224;

    /// <summary>The optimiser. The default value is <see cref="OptimizerKind.AdamW"/>.</summary>
    public OptimizerKind Optimizer { get; set; } = OptimizerKind.AdamW;

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
    /// The smallest share of the original picture's area a random resized crop keeps (aspect ratio drawn in [3/4, 4/3]);
    /// 1 disables cropping (the exported model's centre crop is used). Augmentations are re-drawn for every image in every
    /// epoch, from the original file. The default value is 0.5.
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
    /// Mixup's α (Zhang et al. 2018): each training batch is mixed with a shuffled copy of itself, λ·x + (1 − λ)·x′
    /// with λ ~ Beta(α, α), and the loss mixes the two labels alike. It mixes what the trained part of the network takes
    /// in: the images when the whole network trains, the cached lower-block outputs in top-blocks mode (manifold mixup,
    /// Verma et al. 2019), so it regularises top-blocks training without new cached views. 0 disables it; 0.2–0.4 is
    /// usual. With <see cref="CutMixAlpha"/> also set, each batch uses one of the two at random. The default value is 0.
    /// </summary>
    public double MixupAlpha { get; set; }

    /// <summary>
    /// CutMix's α (Yun et al. 2019): a box covering a share 1 − λ (λ ~ Beta(α, α)) of each training input is replaced
    /// by the same box of another input of the batch, and the loss mixes their labels by the areas. Like
    /// <see cref="MixupAlpha"/> it works on the images or, in top-blocks mode, on the cached feature maps. 0 disables
    /// it; 1 is usual. The default value is 0.
    /// </summary>
    public double CutMixAlpha { get; set; }

    /// <summary>
    /// Horizontal-flip test-time augmentation: the trained model (its TorchSharp predictions, the ML.NET <c>.zip</c> and the
    /// standalone <c>.onnx</c>) averages the backbone features of every image and of its mirror image, which usually scores a
    /// little better at twice the prediction cost. It changes nothing in training (the validation split that picks the
    /// best epoch is scored without it); the reports' validation metrics are the exported model's, with it. The default value is false.
    /// </summary>
    public bool TestTimeFlip { get; set; }

    /// <summary>
    /// How many networks to train and average (an ensemble, Hansen &amp; Salamon 1990; Lakshminarayanan et al. 2017): the
    /// first is the network a single run trains, the others train the same way on the same split (or each on its own fold,
    /// <see cref="EnsembleFolds"/>), each with its own seed
    /// (head initialisation, shuffling, drawn views and mixing). In top-blocks mode they share the cached lower-block
    /// outputs, so each extra member costs its training epochs only, and the exported model runs the frozen lower blocks
    /// once and each member's trained blocks on their output (with ResNet18's top 2 blocks, about a quarter of the
    /// backbone's work per extra member); in whole-network mode every member is a whole backbone. Predictions average the
    /// members' logits. The validation metrics reported at the end are the ensemble's (out-of-fold with folds); each member picks its best epoch
    /// and stops early on its own. With <see cref="CheckpointDirectory"/>, member k writes its checkpoints to the sub-folder
    /// <c>member{k}</c> (counted from 1), so a resumed run skips finished members. The default value is 1 (one network).
    /// </summary>
    public int EnsembleSize { get; set; } = 1;

    /// <summary>The largest <see cref="EnsembleSize"/> accepted.</summary>
    public const int MaxEnsembleSize = 16;

    /// <summary>
    /// Whether each member of an ensemble holds out its own validation fold (cross-validation bagging) instead of all
    /// sharing one split: member k holds out the k-th <see cref="ValidationFraction"/> of every class in the seeded shuffle
    /// of the single run's split (<see cref="Data.ImageFolder.StratifiedSplit"/> with fold k − 1), so member 1 is still the
    /// single run, the members' validation images are disjoint, and together they train on every image while each still
    /// picks its best epoch and stops early on images it never saw. Needs a split of the training images
    /// (<see cref="ValidationFraction"/> &gt; 0, no <see cref="Validation"/>) and at most ⌊1 / ValidationFraction⌋ members.
    /// The validation metrics reported at the end are then out-of-fold: every held-out image scored by the one member that
    /// did not train on it, an estimate for one member (the ensemble does at least as well on new images). Ignored with one
    /// member. The default value is false (one shared split).
    /// </summary>
    public bool EnsembleFolds { get; set; }

    /// <summary>
    /// The share of each class held out (stratified) as the validation split that reports accuracy, picks the best
    /// epoch and drives early stopping; 0 trains on everything. The default value is 0.1.
    /// </summary>
    public double ValidationFraction { get; set; } = 0.1;

    /// <summary>An explicit validation set used instead of a split of the training images. The default value is null.</summary>
    public IReadOnlyList<Data.ImageExample>? Validation { get; set; }

    /// <summary>
    /// The folder in which the fine-tuned backbone graph is written while the ML.NET chain is assembled; the file is
    /// deleted before <c>Fit</c> returns (the chain holds the graph, the saved <c>.zip</c> embeds it). Null means the
    /// system's temporary folder. The default value is null.
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
    /// Keep an exponential moving average of the weights, updated after every optimiser step with this per-step decay
    /// (Polyak averaging as in timm's model EMA; the first steps use min(decay, (1 + n)/(10 + n))). The average, not the
    /// last step's weights, is validated, kept as the best epoch and exported; it smooths the noise of the last steps.
    /// 0 keeps none; 0.99–0.9999 is usual (about 1/(1 − decay) steps are averaged). The default value is 0.
    /// </summary>
    public double WeightAverageDecay { get; set; }

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
    /// The fast option for CPUs, and the default: freeze all but the top <see cref="TopBlocks"/> blocks, compute the frozen
    /// blocks' outputs once per image (and per augmented view, see <see cref="TopBlockViews"/>) into an on-disk cache and
    /// train only the top on those cached outputs. Each epoch then costs one pass through about a quarter of ResNet18, and
    /// on the three datasets measured (docs/fine-tuning.md) it scored at or above whole-network fine-tuning in a third of
    /// the time or less. False trains the whole network on images streamed from their files. The default value is true.
    /// </summary>
    public bool TrainTopBlocksOnly { get; set; } = true;

    /// <summary>How many top blocks train when <see cref="TrainTopBlocksOnly"/> is set. The default value is 2.</summary>
    public int TopBlocks { get; set; } = 2;

    /// <summary>
    /// With <see cref="TrainTopBlocksOnly"/>: how many views of each training image are cached, the exact image and
    /// K − 1 augmented ones (crop, flip, jitter as set above, drawn once per view); every epoch each image is trained on one
    /// of its views, drawn at random. 1 trains on the exact images only (no augmentation). The default value is 3.
    /// </summary>
    public int TopBlockViews { get; set; } = 3;

    /// <summary>
    /// With <see cref="TrainTopBlocksOnly"/>: also cache the mirror image of every view, so that each epoch trains on an
    /// image or on its left-right mirror, drawn at random (the horizontal flip of streaming training, made exact on the
    /// cached outputs: the mirror of the exact image is what <see cref="TestTimeFlip"/> scores). Caching costs twice the
    /// views (time and disk); an epoch costs the same. Needs <see cref="TrainTopBlocksOnly"/> and <see cref="HorizontalFlip"/>. The default value is false.
    /// </summary>
    public bool TopBlockMirrors { get; set; }

    /// <summary>
    /// The bottleneck-cache folder under whose <c>blocks</c> sub-folder the lower-block outputs of top-blocks training are
    /// kept (keyed by the image's content, backbone, size, cut and view, so later runs reuse them); null means
    /// <see cref="IO.CacheLocation.Default"/>. The default value is null.
    /// </summary>
    public string? CacheDirectory { get; set; }

    /// <summary>The size bound of the lower-block cache folder (least recently used entries are evicted beyond it). The default value is 10 GiB.</summary>
    public long BlockCacheMaxBytes { get; set; } = 10L << 30;

    /// <summary>
    /// Whether cached lower-block outputs are stored as 16-bit floats (half the disk space and reading time; measured to
    /// leave accuracy unchanged, see docs/fine-tuning.md). The default value is true.
    /// </summary>
    public bool HalfPrecisionBlockCache { get; set; } = true;

    /// <summary>Threads libtorch uses; null uses <see cref="Environment.ProcessorCount"/>. The default value is null.</summary>
    public int? Threads { get; set; }

    /// <summary>Threads that read, decode and augment images while libtorch trains; null means half the cores (at least one). The default value is null.</summary>
    public int? DataThreads { get; set; }

    /// <summary>Called after every epoch with its metrics (loss, accuracy, images/s, ETA). The default value is null.</summary>
    public Action<TrainingEpochMetrics>? MetricsCallback { get; set; }

    /// <summary>Receives progress inside each epoch (step, images/s, ETA) about once a second. The default value is null.</summary>
    public IProgress<TrainingProgress>? Progress { get; set; }

    /// <summary>Receives progress of the pass that caches lower-block outputs in top-blocks mode. The default value is null.</summary>
    public IProgress<Featurization.FeaturizationProgress>? CachingProgress { get; set; }

    // How many disjoint validation folds a fraction allows (10 for 0.1).
    internal static int MaxFolds(double validationFraction) => (int)Math.Floor((1 / validationFraction) + 1e-9);

    /// <summary>Throws when an option is out of range.</summary>
    internal void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(Epochs, 1, nameof(Epochs));
        ArgumentOutOfRangeException.ThrowIfLessThan(BatchSize, 1, nameof(BatchSize));
        ArgumentOutOfRangeException.ThrowIfLessThan(ImageSize, 32, nameof(ImageSize));
        if (!(LearningRate > 0) || double.IsInfinity(LearningRate))
            throw new ArgumentOutOfRangeException(nameof(LearningRate), LearningRate, "must be a positive number.");
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

        if (!double.IsFinite(MixupAlpha) || MixupAlpha < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(MixupAlpha), MixupAlpha, "must be 0 (off) or positive.");
        }

        if (!double.IsFinite(CutMixAlpha) || CutMixAlpha < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(CutMixAlpha), CutMixAlpha, "must be 0 (off) or positive.");
        }

        if (ValidationFraction is < 0 or >= 1)
        {
            throw new ArgumentOutOfRangeException(nameof(ValidationFraction), ValidationFraction, "must be in [0, 1).");
        }

        ArgumentOutOfRangeException.ThrowIfNegative(EarlyStoppingPatience, nameof(EarlyStoppingPatience));
        if (!(WeightAverageDecay is >= 0 and < 1))
            throw new ArgumentOutOfRangeException(nameof(WeightAverageDecay), WeightAverageDecay, "must be 0 (none) or in (0, 1).");
        ArgumentOutOfRangeException.ThrowIfLessThan(TopBlocks, 1, nameof(TopBlocks));
        if (EnsembleSize is < 1 or > MaxEnsembleSize)
            throw new ArgumentOutOfRangeException(nameof(EnsembleSize), EnsembleSize, $"must be between 1 and {MaxEnsembleSize}.");
        if (EnsembleFolds && EnsembleSize > 1)
        {
            if (Validation is not null || ValidationFraction <= 0)
                throw new ArgumentException("EnsembleFolds needs a validation split of the training images (ValidationFraction > 0 and no explicit Validation set).", nameof(EnsembleFolds));
            if (EnsembleSize > MaxFolds(ValidationFraction))
                throw new ArgumentOutOfRangeException(nameof(EnsembleSize), EnsembleSize, string.Create(CultureInfo.InvariantCulture,
                    $"with EnsembleFolds and a validation fraction of {ValidationFraction}, at most {MaxFolds(ValidationFraction)} members hold out disjoint folds."));
        }
        ArgumentOutOfRangeException.ThrowIfLessThan(TopBlockViews, 1, nameof(TopBlockViews));
        if (TopBlockMirrors && !TrainTopBlocksOnly)
            throw new ArgumentException("TopBlockMirrors caches mirror images for top-blocks training; whole-network training flips the streamed images itself (HorizontalFlip).", nameof(TopBlockMirrors));
        if (TopBlockMirrors && !HorizontalFlip)
            throw new ArgumentException("TopBlockMirrors trains on mirror images; it needs HorizontalFlip.", nameof(TopBlockMirrors));
        ArgumentOutOfRangeException.ThrowIfLessThan(BlockCacheMaxBytes, 1, nameof(BlockCacheMaxBytes));
        if (DataThreads is < 1)
            throw new ArgumentOutOfRangeException(nameof(DataThreads), DataThreads, "must be at least 1.");
        if (Resume && CheckpointDirectory is null)
        {
            throw new ArgumentException("Resume needs a CheckpointDirectory.", nameof(Resume));
        }
    }
}
