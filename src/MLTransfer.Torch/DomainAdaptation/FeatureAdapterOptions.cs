using MLTransfer.Techniques.DomainAdaptation;
using MLTransfer.Torch.Training;

namespace MLTransfer.Torch.DomainAdaptation;

/// <summary>
/// Options of the gradient domain-adaptation methods: a new trainable bottleneck (dense + ReLU) and a softmax head
/// — and, with <see cref="TrainedBackboneBlocks"/>, the backbone's top residual blocks below them — are trained end
/// to end with TorchSharp on labelled source images, with an extra loss that uses the unlabelled target images,
/// through the training loop every TorchSharp technique shares. Whatever stays frozen is computed once per image (pooled
/// features in memory, lower-block outputs in the on-disk block cache). The trained blocks are
/// written back into the exported ONNX graph and the bottleneck is folded into it, the head becomes an ML.NET
/// scorer, so the <c>.zip</c> stays ML.NET-only.
/// </summary>
public abstract class FeatureAdapterOptions : DomainAdaptationOptions
{
    /// <summary>Width of the trainable bottleneck (the head reads it). The default value is 256.</summary>
    public int BottleneckSize { get; set; } = 256;

    /// <summary>Passes over the source training images (a fixed budget unless <see cref="EarlyStoppingPatience"/> is set). The default value is 20.</summary>
    public int Epochs { get; set; } = 20;

    /// <summary>
    /// Stop after this many epochs without a better accuracy on the source validation split and keep the best epoch's
    /// weights (the only selection signal: target labels are never read); 0 trains the fixed budget and keeps the last
    /// epoch. The default value is 0.
    /// </summary>
    public int EarlyStoppingPatience { get; set; }

    /// <summary>
    /// Keep an exponential moving average of the weights, updated after every optimiser step with this per-step decay
    /// (Polyak averaging as in timm's model EMA; the first steps use min(decay, (1 + n)/(10 + n))). The average, not the
    /// last step's weights, is validated, kept as the best epoch and exported; it smooths the noise of the last steps.
    /// 0 keeps none; 0.99–0.9999 is usual (about 1/(1 − decay) steps are averaged). The default value is 0.
    /// </summary>
    public double WeightAverageDecay { get; set; }

    /// <summary>A folder where a checkpoint is written (atomically) after every epoch; null writes none. The default value is null.</summary>
    public string? CheckpointDirectory { get; set; }

    /// <summary>Continue from the checkpoint in <see cref="CheckpointDirectory"/> when there is one; the result equals an uninterrupted run. The default value is false.</summary>
    public bool Resume { get; set; }

    /// <summary>Receives the metrics of every epoch (loss, source validation accuracy, images/s, ETA). The default value is null.</summary>
    public Action<TrainingEpochMetrics>? MetricsCallback { get; set; }

    /// <summary>Receives progress inside each epoch (step, images/s, ETA) about once a second. The default value is null.</summary>
    public IProgress<TrainingProgress>? TrainingProgress { get; set; }

    /// <summary>With <see cref="TrainedBackboneBlocks"/>: the size bound of the on-disk lower-block cache (under <c>blocks</c> in the engine's cache folder). The default value is 10 GiB.</summary>
    public long BlockCacheMaxBytes { get; set; } = 10L << 30;

    /// <summary>With <see cref="TrainedBackboneBlocks"/>: store cached lower-block outputs as 16-bit floats. The default value is true.</summary>
    public bool HalfPrecisionBlockCache { get; set; } = true;

    /// <summary>Source images per step (the same number of target images is drawn). The default value is 64.</summary>
    public int BatchSize { get; set; } = 64;

    /// <summary>Adam learning rate. The default value is 0.001.</summary>
    public double LearningRate { get; set; } = 1e-3;

    /// <summary>Adam weight decay (L2). The default value is 0.0005.</summary>
    public double WeightDecay { get; set; } = 5e-4;

    /// <summary>
    /// Weight of the adaptation loss at the end of training; it ramps up with the schedule of Ganin et al. 2016,
    /// <c>w·(2/(1+exp(−10p))−1)</c> for training progress p ∈ [0,1]. 0 trains the same network without
    /// adaptation: the gradient methods' source-only peer. The default value is 1.
    /// </summary>
    public double AdaptationWeight { get; set; } = 1;

    /// <summary>
    /// How many of the backbone's top residual blocks (ResNet18 has 8 basic blocks; the pooling belongs to the top
    /// one) train together with the bottleneck, the head and the adaptation loss. The blocks below are frozen and
    /// their output is computed once per image into the on-disk block cache; 0 trains on cached pooled features only.
    /// The default value is 0.
    /// </summary>
    public int TrainedBackboneBlocks { get; set; }

    /// <summary>
    /// The trained backbone blocks' learning rate as a share of <see cref="LearningRate"/> (pretrained layers learn
    /// 10× slower than new ones, as in Ganin et al. 2016). With trained blocks every rate also anneals as
    /// <c>μ/(1+10p)^0.75</c> (their schedule). The default value is 0.1.
    /// </summary>
    public double BackboneLearningRateFactor { get; set; } = 0.1;

    /// <summary>How the BatchNorm layers of the trained backbone blocks normalise source and target images. The default value is <see cref="DomainBatchNorm.PerDomain"/>.</summary>
    public DomainBatchNorm BatchNorm { get; set; } = DomainBatchNorm.PerDomain;
}

/// <summary>BatchNorm policy of the trained backbone blocks of the gradient domain-adaptation methods.</summary>
public enum DomainBatchNorm
{
    /// <summary>
    /// Domain-specific statistics: source and target batches pass separately, each normalised by its own batch
    /// statistics; after training the running statistics are re-estimated on the source images (for the head and the
    /// source validation) and then on the target images, which the exported model uses (the idea of AdaBN, Li et al.
    /// 2016, and of domain-specific BatchNorm, Chang et al. 2019). The source-only peer never sees the target.
    /// </summary>
    PerDomain,

    /// <summary>Each step normalises one batch that mixes source and target images; the exported model keeps the running statistics of those mixed batches.</summary>
    Mixed,

    /// <summary>The pretrained running statistics normalise every batch and are exported unchanged; scale and shift still train.</summary>
    Frozen,
}

/// <summary>Options of <see cref="Dann"/>.</summary>
public sealed class DannOptions : FeatureAdapterOptions
{
    /// <summary>Hidden width of the domain discriminator (bottleneck → hidden → ReLU → 1 logit). The default value is 256.</summary>
    public int DiscriminatorHidden { get; set; } = 256;
}

/// <summary>Which discrepancy <see cref="Mmd"/> minimises between the source and target bottleneck features.</summary>
public enum DiscrepancyLoss
{
    /// <summary>Multi-kernel maximum mean discrepancy with Gaussian kernels (Long, Cao, Wang and Jordan 2015, "Learning Transferable Features with Deep Adaptation Networks").</summary>
    Mmd,
    /// <summary>The Deep CORAL loss <c>‖C_s − C_t‖²_F / (4d²)</c> (Sun and Saenko 2016, "Deep CORAL: Correlation Alignment for Deep Domain Adaptation").</summary>
    DeepCoral,
}

/// <summary>Options of <see cref="Mmd"/>.</summary>
public sealed class MmdOptions : FeatureAdapterOptions
{
    /// <summary>The discrepancy. The default value is <see cref="DiscrepancyLoss.Mmd"/>.</summary>
    public DiscrepancyLoss Loss { get; set; } = DiscrepancyLoss.Mmd;
}
