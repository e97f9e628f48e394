using Microsoft.ML;

namespace MLTransfer.Techniques.DomainAdaptation;

/// <summary>
/// CORAL, CORrelation ALignment (Sun, Feng and Saenko 2016, "Return of Frustratingly Easy Domain Adaptation",
/// AAAI): aligns the second-order statistics of the two domains' frozen backbone features with a closed-form
/// linear map (whitening with one domain's covariance, re-colouring with the other's; both regularised), then
/// trains the head on labelled source features. No gradients, no target labels.
/// </summary>
/// <remarks>
/// <list type="table">
/// <item><term><see cref="CoralDirection.TargetToSource"/></term><description>the map
/// <c>x·C_t^{-1/2}·C_s^{1/2} + b</c> is folded into the exported ONNX graph as a <c>Gemm</c> after the
/// backbone's <c>Features</c>; the head is the one trained on raw source features.</description></item>
/// <item><term><see cref="CoralDirection.SourceToTarget"/> (default, the paper's)</term><description>source features are mapped
/// with <c>C_s^{-1/2}·C_t^{1/2}</c> before the head is trained; the exported graph is the plain backbone.</description></item>
/// </list>
/// Covariances are regularised with λ times the mean variance (the paper's λ = 1 for standardised features) and
/// decomposed with <see cref="CoralMath.SymmetricEigen"/>.
/// </remarks>
public sealed class Coral : ITransferTechnique
{
    /// <summary>Creates the technique.</summary>
    /// <param name="options">Options; null means the defaults (a target folder must then be set before fitting).</param>
    public Coral(CoralOptions? options = null) => Options = options ?? new CoralOptions();

    /// <summary>The options.</summary>
    public CoralOptions Options { get; }

    /// <inheritdoc />
    public string Name => "domain-adaptation/coral";

    /// <inheritdoc />
    public IEstimator<ITransformer> CreateEstimator(MLContext mlContext) => new CoralEstimator(mlContext, Options);
}

/// <summary>The estimator of <see cref="Coral"/>.</summary>
public sealed class CoralEstimator : DomainAdaptationEstimator
{
    private readonly CoralOptions _options;

    internal CoralEstimator(MLContext mlContext, CoralOptions options) : base(mlContext, options) => _options = options;

    /// <inheritdoc />
    public override string Method => "coral";

    /// <inheritdoc />
    protected override Adaptation Adapt(AdaptationContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var source = context.SourceTrain.Features;
        var target = context.Target.Features;
        if (_options.Direction == CoralDirection.SourceToTarget)
        {
            var map = CoralMath.Fit(source, target, _options.Regularization, _options.MatchMean);
            return new Adaptation
            {
                GraphPath = context.Featurizer.GraphPath,
                HeadTrainFeatures = map.Apply(source),
                HeadValidationFeatures = context.SourceValidation is null ? null : map.Apply(context.SourceValidation.Features),
            };
        }
        var toSource = CoralMath.Fit(target, source, _options.Regularization, _options.MatchMean);
        return new Adaptation
        {
            GraphPath = FeatureGraphEdits.AppendAffine(context.Featurizer.GraphPath, toSource, context.Engine.EffectiveGraphDirectory, "coral"),
            HeadTrainFeatures = source,
            TargetAsExported = (rows, _) => toSource.Apply(rows),
        };
    }
}
