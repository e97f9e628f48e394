using MLTransfer.Backbones;
using MLTransfer.Data;
using MLTransfer.Featurization;

namespace MLTransfer.Techniques.DomainAdaptation;

/// <summary>
/// Options every domain-adaptation method shares: the labelled source images come from the data view given to
/// <c>Fit</c> (<c>ImagePath</c>, <c>Label</c>); the unlabelled target images from <see cref="TargetFolder"/> or
/// <see cref="TargetImages"/>. Target labels are never read.
/// </summary>
public class DomainAdaptationOptions
{
    /// <summary>Folder of unlabelled target-domain images, searched recursively (sub-folders allowed, their names ignored). The default value is null.</summary>
    public string? TargetFolder { get; set; }

    /// <summary>Unlabelled target image files, used instead of (or besides) <see cref="TargetFolder"/>. The default value is null.</summary>
    public IReadOnlyList<string>? TargetImages { get; set; }

    /// <summary>The frozen backbone; null means <see cref="Backbone.ResNet18"/>. The default value is null.</summary>
    public Backbone? Backbone { get; set; }

    /// <summary>Featurisation engine options (image size, cache, threads). The default value is a new <see cref="FeaturizerOptions"/>.</summary>
    public FeaturizerOptions Engine { get; set; } = new();

    /// <summary>Share of each source class held out for validation (the only data used for any model selection). The default value is 0.1.</summary>
    public double ValidationFraction { get; set; } = 0.1;

    /// <summary>L2 regularisation of the L-BFGS multinomial logistic-regression head. The default value is 1 (ML.NET's default).</summary>
    public float HeadL2Regularization { get; set; } = 1f;

    /// <summary>Seed of the split and training. The default value is 0.</summary>
    public int Seed { get; set; }

    /// <summary>Fail on the first image that cannot be decoded instead of skipping it. The default value is false.</summary>
    public bool Strict { get; set; }

    /// <summary>Receives featurisation progress. The default value is null.</summary>
    public IProgress<FeaturizationProgress>? Progress { get; set; }

    /// <summary>Featuriser over <see cref="Backbone"/>; null means an <see cref="OnnxImageFeaturizer"/>. The default value is null.</summary>
    public IImageFeaturizer? Featurizer { get; set; }

    /// <summary>
    /// Rounds of class-balanced self-training after adaptation (Zou, Yu, Kumar and Wang 2018, "Unsupervised Domain
    /// Adaptation for Semantic Segmentation via Class-Balanced Self-Training", ECCV): the head labels the target
    /// images, the most confident share of each predicted class joins the source features, and the head is
    /// retrained; the share grows linearly to <see cref="SelfTrainingFraction"/> over the rounds. Uses no target
    /// labels. Applies to the L-BFGS head (closed-form methods). The default value is 0 (off).
    /// </summary>
    public int SelfTrainingRounds { get; set; }

    /// <summary>Share of each predicted target class kept as pseudo-labels in the last self-training round. The default value is 0.5.</summary>
    public double SelfTrainingFraction { get; set; } = 0.5;

    /// <summary>Rows per domain kept in <see cref="DomainAdaptationResult"/> for projection plots. The default value is 500.</summary>
    public int ProjectionSamples { get; set; } = 500;
}

/// <summary>Which way <see cref="Coral"/> aligns the two domains.</summary>
public enum CoralDirection
{
    /// <summary>
    /// Target features are re-coloured to the source statistics (<c>x·C_t^{-1/2}·C_s^{1/2}</c>, means matched)
    /// inside the exported ONNX graph; the head is trained on raw source features. Every image the model scores
    /// goes through the transform, so the model is meant for target-domain images.
    /// </summary>
    TargetToSource,

    /// <summary>
    /// The paper's form: source features are whitened and re-coloured with the target covariance
    /// (<c>x·C_s^{-1/2}·C_t^{1/2}</c>, means matched) and the head is trained on them; target features reach the
    /// head unchanged, so the exported graph is the plain backbone.
    /// </summary>
    SourceToTarget,
}

/// <summary>Options of <see cref="Coral"/>.</summary>
public sealed class CoralOptions : DomainAdaptationOptions
{
    /// <summary>Which domain is transformed. The default value is <see cref="CoralDirection.SourceToTarget"/>, the paper's form (better on MNIST↔USPS, see docs/benchmarks/domain-adaptation.md).</summary>
    public CoralDirection Direction { get; set; } = CoralDirection.SourceToTarget;

    /// <summary>Covariance regularisation λ, relative to the mean feature variance (the paper's λ = 1 on standardised features). The default value is 1.</summary>
    public double Regularization { get; set; } = 1;

    /// <summary>Also match the means (first-order statistics), not only the covariances. The default value is true.</summary>
    public bool MatchMean { get; set; } = true;
}

/// <summary>Options of <see cref="AdaBN"/>.</summary>
public sealed class AdaBNOptions : DomainAdaptationOptions
{
    /// <summary>Images of each domain used to re-estimate BatchNorm statistics (a deterministic, seeded sample when there are more). The default value is 256.</summary>
    public int MaxTargetImages { get; set; } = 256;

    /// <summary>
    /// Also re-estimate the statistics on the source images and compute the source features the head is trained
    /// on with them. In the paper the network was trained on the source, so its statistics are the source's; a
    /// pretrained backbone carries ImageNet statistics instead, and normalising each domain with its own
    /// statistics is what makes the head transfer. The default value is true.
    /// </summary>
    public bool SourceStatistics { get; set; } = true;

    /// <summary>Images per ONNX Runtime batch while collecting statistics. The default value is 32.</summary>
    public int StatisticsBatchSize { get; set; } = 32;
}

/// <summary>Options of <see cref="SourceOnly"/>: no adaptation, the baseline every method is compared with.</summary>
public sealed class SourceOnlyOptions : DomainAdaptationOptions
{
}

/// <summary>Unlabelled target images: every image file under a folder, recursively, in ordinal path order.</summary>
public static class TargetImages
{
    /// <summary>Lists the target images of the options (folder and explicit list), de-duplicated, in order.</summary>
    /// <param name="options">The options.</param>
    /// <exception cref="ArgumentException">No target images were given or found.</exception>
    public static IReadOnlyList<string> Resolve(DomainAdaptationOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var paths = new List<string>();
        if (options.TargetFolder is { } folder)
            paths.AddRange(List(folder));
        if (options.TargetImages is { } images)
            paths.AddRange(images);
        var distinct = paths.Distinct(StringComparer.Ordinal).ToList();
        if (distinct.Count < 2)
            throw new ArgumentException(
                "Domain adaptation needs unlabelled target images: set TargetFolder (or TargetImages) to at least 2 images of the domain the model will meet.");
        return distinct;
    }

    /// <summary>Every image file under a folder, recursively (hidden folders and links to folders skipped, see <see cref="ImageFileScan"/>), ordinal path order.</summary>
    /// <param name="folder">The folder.</param>
    public static IReadOnlyList<string> List(string folder)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        var root = Path.GetFullPath(folder);
        if (!Directory.Exists(root))
            throw new DirectoryNotFoundException($"Target image folder '{root}' does not exist.");
        return ImageFileScan.Run(root).Images;
    }

    /// <summary>A deterministic sample of at most <paramref name="count"/> items (all of them, in order, when there are fewer).</summary>
    /// <param name="items">The items.</param>
    /// <param name="count">Maximum count.</param>
    /// <param name="seed">Seed of the sample.</param>
    public static IReadOnlyList<T> Sample<T>(IReadOnlyList<T> items, int count, int seed)
    {
        ArgumentNullException.ThrowIfNull(items);
        if (items.Count <= count)
            return items;
        var order = Enumerable.Range(0, items.Count).ToArray();
        new Random(seed).Shuffle(order);
        return order.Take(count).Order().Select(i => items[i]).ToList();
    }
}

/// <summary>The closed-form domain-adaptation methods of <see cref="TransferCatalog.DomainAdaptation(string, DomainAdaptationMethod, int?, int)"/>.</summary>
public enum DomainAdaptationMethod
{
    /// <summary>CORAL correlation alignment (<see cref="Coral"/>).</summary>
    Coral,
    /// <summary>Adaptive BatchNorm (<see cref="AdaBN"/>).</summary>
    AdaBN,
    /// <summary>No adaptation (<see cref="SourceOnly"/>), the baseline.</summary>
    SourceOnly,
}
