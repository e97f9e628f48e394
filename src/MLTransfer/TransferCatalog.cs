using Microsoft.ML;
using MLTransfer.Techniques;
using MLTransfer.Techniques.DomainAdaptation;
using MLTransfer.Techniques.FeatureExtraction;

namespace MLTransfer;

/// <summary>
/// The entry point of MLTransfer: <c>mlContext.Transfer()</c> returns this catalog, with one method per
/// transfer-learning technique, each with a simple overload and an options overload. Techniques living in other
/// assemblies (fine-tuning, adversarial domain adaptation) add their methods as extension methods on this type,
/// and any <see cref="ITransferTechnique"/> runs through <see cref="Use(ITransferTechnique)"/>.
/// </summary>
public sealed class TransferCatalog
{
    internal TransferCatalog(MLContext context) => Context = context;

    /// <summary>The ML.NET context every estimator built from this catalog uses.</summary>
    public MLContext Context { get; }

    /// <summary>Builds the estimator of any technique, including one written outside MLTransfer.</summary>
    /// <param name="technique">The technique.</param>
    public IEstimator<ITransformer> Use(ITransferTechnique technique)
    {
        ArgumentNullException.ThrowIfNull(technique);
        return technique.CreateEstimator(Context);
    }

    /// <summary>
    /// Feature extraction: a frozen pretrained backbone (ResNet18 by default) and a new head trained on its features.
    /// Fit it on a data view with <c>ImagePath</c> and <c>Label</c> text columns.
    /// </summary>
    /// <param name="head">Which head to train. The default value is <see cref="HeadKind.LbfgsMaximumEntropy"/>.</param>
    /// <param name="imageSize">Square input size; null means the backbone's native size.</param>
    /// <param name="seed">Seed of the split and training.</param>
    public FeatureExtractionEstimator FeatureExtraction(HeadKind head = HeadKind.LbfgsMaximumEntropy, int? imageSize = null, int seed = 0) =>
        FeatureExtraction(new FeatureExtractionOptions { Head = head, Engine = { ImageSize = imageSize }, Seed = seed });

    /// <summary>Feature extraction with full options.</summary>
    /// <param name="options">The options.</param>
    public FeatureExtractionEstimator FeatureExtraction(FeatureExtractionOptions options) =>
        new(Context, options ?? throw new ArgumentNullException(nameof(options)));

    /// <summary>
    /// The image-classification head on frozen features, with the option names of ML.NET's
    /// <c>ImageClassificationTrainer</c> (<c>Epoch</c>, <c>BatchSize</c>, <c>LearningRate</c>, <c>EarlyStoppingCriteria</c>,
    /// <c>ValidationSet</c>, <c>ValidationSetFraction</c>, <c>MetricsCallback</c>, <c>WorkspacePath</c>, ...).
    /// </summary>
    /// <param name="options">The head's options.</param>
    /// <param name="backbone">The frozen backbone; null means ResNet18.</param>
    public FeatureExtractionEstimator ImageClassification(Heads.ImageClassificationHeadOptions options, Backbones.Backbone? backbone = null) =>
        FeatureExtraction(new FeatureExtractionOptions { Head = HeadKind.ImageClassification, ImageClassification = options, Backbone = backbone, ValidationFraction = 0 });

    /// <summary>
    /// Domain adaptation with a closed-form method on the frozen backbone's features: labelled source images
    /// (the data view given to <c>Fit</c>: <c>ImagePath</c>, <c>Label</c>) and unlabelled target images from a folder.
    /// </summary>
    /// <param name="targetFolder">Folder of unlabelled target-domain images (searched recursively; labels ignored).</param>
    /// <param name="method">The method. The default value is <see cref="DomainAdaptationMethod.Coral"/>.</param>
    /// <param name="imageSize">Square input size; null means the backbone's native size.</param>
    /// <param name="seed">Seed of the split and training.</param>
    public DomainAdaptationEstimator DomainAdaptation(string targetFolder, DomainAdaptationMethod method = DomainAdaptationMethod.Coral, int? imageSize = null, int seed = 0)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(targetFolder);
        return method switch
        {
            DomainAdaptationMethod.Coral => DomainAdaptation(new CoralOptions { TargetFolder = targetFolder, Engine = { ImageSize = imageSize }, Seed = seed }),
            DomainAdaptationMethod.AdaBN => DomainAdaptation(new AdaBNOptions { TargetFolder = targetFolder, Engine = { ImageSize = imageSize }, Seed = seed }),
            DomainAdaptationMethod.SourceOnly => DomainAdaptation(new SourceOnlyOptions { TargetFolder = targetFolder, Engine = { ImageSize = imageSize }, Seed = seed }),
            _ => throw new ArgumentOutOfRangeException(nameof(method), method, "Unknown domain-adaptation method."),
        };
    }

    /// <summary>CORAL domain adaptation (Sun, Feng and Saenko 2016) with full options.</summary>
    /// <param name="options">The options; <see cref="DomainAdaptationOptions.TargetFolder"/> or <see cref="DomainAdaptationOptions.TargetImages"/> is required.</param>
    public DomainAdaptationEstimator DomainAdaptation(CoralOptions options) =>
        new CoralEstimator(Context, options ?? throw new ArgumentNullException(nameof(options)));

    /// <summary>AdaBN domain adaptation (Li et al. 2016) with full options.</summary>
    /// <param name="options">The options; <see cref="DomainAdaptationOptions.TargetFolder"/> or <see cref="DomainAdaptationOptions.TargetImages"/> is required.</param>
    public DomainAdaptationEstimator DomainAdaptation(AdaBNOptions options) =>
        new AdaBNEstimator(Context, options ?? throw new ArgumentNullException(nameof(options)));

    /// <summary>The source-only baseline of domain adaptation (same backbone, head and split, no adaptation).</summary>
    /// <param name="options">The options; target images are featurised only for the report's plots.</param>
    public DomainAdaptationEstimator DomainAdaptation(SourceOnlyOptions options) =>
        new SourceOnlyEstimator(Context, options ?? throw new ArgumentNullException(nameof(options)));
}

/// <summary>Extension methods that attach MLTransfer to <see cref="MLContext"/>.</summary>
public static class MLContextTransferExtensions
{
    /// <summary>Returns the transfer-learning catalog for this context.</summary>
    /// <param name="mlContext">The ML.NET context.</param>
    public static TransferCatalog Transfer(this MLContext mlContext)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        return new TransferCatalog(mlContext);
    }
}
