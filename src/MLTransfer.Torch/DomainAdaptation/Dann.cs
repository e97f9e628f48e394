using Microsoft.ML;
using MLTransfer.Techniques;
using MLTransfer.Techniques.DomainAdaptation;
using MLTransfer.Torch.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace MLTransfer.Torch.DomainAdaptation;

/// <summary>
/// DANN, Domain-Adversarial Neural Networks (Ganin, Ustinova, Ajakan, Germain, Larochelle, Laviolette, Marchand
/// and Lempitsky 2016, "Domain-Adversarial Training of Neural Networks", JMLR 17): a domain discriminator
/// (bottleneck → hidden → ReLU → 1 logit) learns to tell source from target bottleneck features while a gradient
/// reversal layer makes the bottleneck learn features it cannot tell apart; the coefficient of the reversed
/// gradient follows the paper's warm-up <c>λ_p = 2/(1+exp(−10p))−1</c>.
/// </summary>
/// <remarks>
/// Trained with TorchSharp on cached frozen-backbone features (the trainable part is the new bottleneck and the
/// head; see <see cref="FeatureAdapterOptions"/>), no target labels. The bottleneck is exported as ONNX
/// <c>Gemm</c>+<c>Relu</c> nodes appended to the fused backbone graph and the head as ML.NET's scorer.
/// </remarks>
public sealed class Dann : ITransferTechnique
{
    /// <summary>Creates the technique.</summary>
    /// <param name="options">Options; null means the defaults (a target folder must then be set before fitting).</param>
    public Dann(DannOptions? options = null) => Options = options ?? new DannOptions();

    /// <summary>The options.</summary>
    public DannOptions Options { get; }

    /// <inheritdoc />
    public string Name => "domain-adaptation/dann";

    /// <inheritdoc />
    public IEstimator<ITransformer> CreateEstimator(MLContext mlContext) => new DannEstimator(mlContext, Options);

    /// <summary>The gradient reversal layer: the identity forward, the gradient multiplied by −<paramref name="lambda"/> backward.</summary>
    /// <param name="x">The input.</param>
    /// <param name="lambda">The coefficient.</param>
    public static Tensor GradientReversal(Tensor x, double lambda)
    {
        ArgumentNullException.ThrowIfNull(x);
        var constant = x.detach();
        return constant - (x - constant).Times(lambda);
    }
}

/// <summary>The estimator of <see cref="Dann"/>.</summary>
public sealed class DannEstimator : DomainAdaptationEstimator
{
    private readonly DannOptions _options;

    internal DannEstimator(MLContext mlContext, DannOptions options) : base(mlContext, options) => _options = options;

    /// <inheritdoc />
    public override string Method => _options.AdaptationWeight > 0 ? "dann" : "adapter-source-only";

    /// <inheritdoc />
    protected override Adaptation Adapt(AdaptationContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return FeatureAdapterTrainer.Train(context, _options, Method, () => new DomainAdversarialLoss(_options.BottleneckSize, _options.DiscriminatorHidden));
    }
}

/// <summary>
/// DANN's loss (tllib's <c>DomainAdversarialLoss</c>): a discriminator (bottleneck → hidden → ReLU → 1 logit) behind a
/// gradient reversal layer with the current coefficient, binary cross-entropy of source (1) against target (0).
/// </summary>
internal sealed class DomainAdversarialLoss : AdaptationLoss
{
    private readonly TorchSharp.Modules.Linear _hidden;
    private readonly TorchSharp.Modules.Linear _logit;

    public DomainAdversarialLoss(int bottleneck, int hidden)
    {
        _hidden = nn.Linear(bottleneck, hidden);
        _logit = nn.Linear(hidden, 1);
    }

    public override IReadOnlyList<(string Name, TorchSharp.Modules.Parameter Parameter)> Parameters =>
        [("discriminator:hidden:weight", _hidden.weight!), ("discriminator:hidden:bias", _hidden.bias!), ("discriminator:logit:weight", _logit.weight!), ("discriminator:logit:bias", _logit.bias!)];

    public override Tensor Compute(Tensor source, Tensor target, double coefficient)
    {
        var both = Dann.GradientReversal(cat([source, target], 0), coefficient);
        var domain = _logit.forward(nn.functional.relu(_hidden.forward(both))).squeeze(1);
        var truth = cat([ones(source.shape[0]), zeros(target.shape[0])], 0);
        return nn.functional.binary_cross_entropy_with_logits(domain, truth);
    }

    public override void Dispose()
    {
        _hidden.Dispose();
        _logit.Dispose();
    }
}
