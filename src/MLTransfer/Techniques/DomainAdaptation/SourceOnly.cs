using Microsoft.ML;

namespace MLTransfer.Techniques.DomainAdaptation;

/// <summary>
/// The source-only baseline of domain adaptation: the same frozen backbone, head, split and budget as the
/// adaptation methods, trained on labelled source features with the target images ignored (they are only
/// featurised, so the feature plots can show the domain gap). Every adapted result is reported beside it.
/// </summary>
public sealed class SourceOnly : ITransferTechnique
{
    /// <summary>Creates the technique.</summary>
    /// <param name="options">Options; null means the defaults.</param>
    public SourceOnly(SourceOnlyOptions? options = null) => Options = options ?? new SourceOnlyOptions();

    /// <summary>The options.</summary>
    public SourceOnlyOptions Options { get; }

    /// <inheritdoc />
    public string Name => "domain-adaptation/source-only";

    /// <inheritdoc />
    public IEstimator<ITransformer> CreateEstimator(MLContext mlContext) => new SourceOnlyEstimator(mlContext, Options);
}

/// <summary>The estimator of <see cref="SourceOnly"/>.</summary>
public sealed class SourceOnlyEstimator : DomainAdaptationEstimator
{
    internal SourceOnlyEstimator(MLContext mlContext, SourceOnlyOptions options) : base(mlContext, options)
    {
    }

    /// <inheritdoc />
    public override string Method => "source-only";

    /// <inheritdoc />
    protected override Adaptation Adapt(AdaptationContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return new Adaptation { GraphPath = context.Featurizer.GraphPath, HeadTrainFeatures = context.SourceTrain.Features };
    }
}
