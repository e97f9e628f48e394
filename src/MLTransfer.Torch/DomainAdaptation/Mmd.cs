using Microsoft.ML;
using MLTransfer.Techniques;
using MLTransfer.Techniques.DomainAdaptation;
using MLTransfer.Torch.Training;
using static TorchSharp.torch;

namespace MLTransfer.Torch.DomainAdaptation;

/// <summary>
/// Discrepancy-based deep domain adaptation: the bottleneck and head are trained on labelled source features while
/// a statistical distance between the source and target bottleneck features of each mini-batch is minimised —
/// multi-kernel MMD with Gaussian kernels (Long, Cao, Wang and Jordan 2015, "Learning Transferable Features with
/// Deep Adaptation Networks", ICML; bandwidths 1/4…4 × the batch's mean squared distance) or the Deep CORAL
/// loss (Sun and Saenko 2016, "Deep CORAL: Correlation Alignment for Deep Domain Adaptation", ECCV workshops).
/// </summary>
/// <remarks>Same network, training loop, schedule and export as <see cref="Dann"/>; no target labels.</remarks>
public sealed class Mmd : ITransferTechnique
{
    /// <summary>Creates the technique.</summary>
    /// <param name="options">Options; null means the defaults (a target folder must then be set before fitting).</param>
    public Mmd(MmdOptions? options = null) => Options = options ?? new MmdOptions();

    /// <summary>The options.</summary>
    public MmdOptions Options { get; }

    /// <inheritdoc />
    public string Name => "domain-adaptation/mmd";

    /// <inheritdoc />
    public IEstimator<ITransformer> CreateEstimator(MLContext mlContext) => new MmdEstimator(mlContext, Options);

    /// <summary>Squared multi-kernel MMD between two batches of row vectors (biased estimate, Gaussian kernels).</summary>
    /// <param name="source">[n, d].</param>
    /// <param name="target">[m, d].</param>
    public static Tensor MmdLoss(Tensor source, Tensor target)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(target);
        var n = source.shape[0];
        var all = cat([source, target], 0);
        var squares = all.Power(2).sum(1, keepdim: true);
        var distances = (squares.Plus(squares.t()) - all.mm(all.t()).Times(2)).AtLeast(0);
        var bandwidth = distances.detach().mean().AtLeast(1e-6);
        Tensor? kernel = null;
        foreach (var factor in new[] { 0.25, 0.5, 1, 2, 4 })
        {
            var k = (-distances / bandwidth.Times(factor)).exp();
            kernel = kernel is null ? k : kernel.Plus(k);
        }
        var ss = kernel!.narrow(0, 0, n).narrow(1, 0, n).mean();
        var tt = kernel.narrow(0, n, all.shape[0] - n).narrow(1, n, all.shape[0] - n).mean();
        var st = kernel.narrow(0, 0, n).narrow(1, n, all.shape[0] - n).mean();
        return ss.Plus(tt) - st.Times(2);
    }

    /// <summary>The Deep CORAL loss ‖C_s − C_t‖²_F / (4d²) between two batches of row vectors.</summary>
    /// <param name="source">[n, d].</param>
    /// <param name="target">[m, d].</param>
    public static Tensor DeepCoralLoss(Tensor source, Tensor target)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(target);
        var d = source.shape[1];
        return (Covariance(source) - Covariance(target)).Power(2).sum().DividedBy(4.0 * d * d);
    }

    private static Tensor Covariance(Tensor x)
    {
        var centred = x - x.mean([0], keepdim: true);
        return centred.t().mm(centred).DividedBy(Math.Max(1, x.shape[0] - 1));
    }
}

/// <summary>The estimator of <see cref="Mmd"/>.</summary>
public sealed class MmdEstimator : DomainAdaptationEstimator
{
    private readonly MmdOptions _options;

    internal MmdEstimator(MLContext mlContext, MmdOptions options) : base(mlContext, options) => _options = options;

    /// <inheritdoc />
    public override string Method => _options.AdaptationWeight <= 0 ? "adapter-source-only" : _options.Loss == DiscrepancyLoss.Mmd ? "mmd" : "deep-coral";

    /// <inheritdoc />
    protected override Adaptation Adapt(AdaptationContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return FeatureAdapterTrainer.Train(context, _options, Method, () => new DiscrepancyAdaptationLoss(_options.Loss));
    }
}

/// <summary>The discrepancy losses as an <see cref="AdaptationLoss"/> (no parameters of their own): coefficient × MMD or Deep CORAL.</summary>
internal sealed class DiscrepancyAdaptationLoss(DiscrepancyLoss kind) : AdaptationLoss
{
    public override Tensor Compute(Tensor source, Tensor target, double coefficient) =>
        (kind == DiscrepancyLoss.Mmd ? Mmd.MmdLoss(source, target) : Mmd.DeepCoralLoss(source, target)).Times(coefficient);
}
