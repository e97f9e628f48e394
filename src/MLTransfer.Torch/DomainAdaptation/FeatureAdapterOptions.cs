using MLTransfer.Techniques.DomainAdaptation;

namespace MLTransfer.Torch.DomainAdaptation;

/// <summary>
/// Options of the gradient domain-adaptation methods: on top of the frozen backbone (whose pooled features are
/// computed once and cached, for CPU speed) a new trainable block — a dense bottleneck with ReLU — and a softmax
/// head are trained end to end with TorchSharp on labelled source features, with an extra loss that uses the
/// unlabelled target features. The trained block is folded into the exported ONNX graph, the head becomes an
/// ML.NET scorer, so the <c>.zip</c> stays ML.NET-only.
/// </summary>
public abstract class FeatureAdapterOptions : DomainAdaptationOptions
{
    /// <summary>Width of the trainable bottleneck (the head reads it). The default value is 256.</summary>
    public int BottleneckSize { get; set; } = 256;

    /// <summary>Passes over the source training features (fixed budget: no early stopping, so no selection at all). The default value is 20.</summary>
    public int Epochs { get; set; } = 20;

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
