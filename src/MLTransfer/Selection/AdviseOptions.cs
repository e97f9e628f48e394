using MLTransfer.Backbones;
using MLTransfer.Featurization;

namespace MLTransfer.Selection;

/// <summary>Options of <see cref="Advisor"/>: which candidate feature sources to score, on how many images.</summary>
public sealed class AdviseOptions
{
    /// <summary>The default image sizes: 128, 160 and 224 pixels.</summary>
    public static readonly IReadOnlyList<int> DefaultImageSizes = [128, 160, 224];

    /// <summary>Backbones to compare; null or empty means <see cref="Backbone.ResNet18"/> alone. The default value is null.</summary>
    public IReadOnlyList<Backbone>? Backbones { get; set; }

    /// <summary>
    /// Stages whose pooled outputs are scored (<see cref="BackboneStages"/>), the same names for every backbone; null means the
    /// last <see cref="DefaultLayerCount"/> stages of each backbone (ResNet18: <c>layer2</c>, <c>layer3</c>, <c>layer4</c>), or
    /// its output alone when it has no stages. The default value is null.
    /// </summary>
    public IReadOnlyList<string>? Layers { get; set; }

    /// <summary>How many of a backbone's last stages are scored when <see cref="Layers"/> is null. The default value is 3.</summary>
    public int DefaultLayerCount { get; set; } = 3;

    /// <summary>Square image sizes to score, each a size the backbones accept. The default value is <see cref="DefaultImageSizes"/> (128, 160, 224).</summary>
    public IReadOnlyList<int> ImageSizes { get; set; } = DefaultImageSizes;

    /// <summary>
    /// Most images scored: a stratified, seeded sample of the folder when it has more (0 means all). LogME and k-NN rank
    /// feature sources well from a few hundred images, and time and memory then stay the same for any folder size.
    /// The default value is 1,000.
    /// </summary>
    public int MaxImages { get; set; } = 1000;

    /// <summary>Neighbours of the k-NN leave-one-out accuracy. The default value is <see cref="NearestNeighbors.DefaultNeighbors"/> (10).</summary>
    public int Neighbors { get; set; } = NearestNeighbors.DefaultNeighbors;

    /// <summary>Seed of the sample. The default value is 0.</summary>
    public int Seed { get; set; }

    /// <summary>
    /// Featurisation engine options (cache, threads); <see cref="FeaturizerOptions.ImageSize"/> and
    /// <see cref="FeaturizerOptions.Layers"/> are set per candidate. The default value is a new <see cref="FeaturizerOptions"/>.
    /// </summary>
    public FeaturizerOptions Engine { get; set; } = new();

    /// <summary>Receives featurisation progress of each backbone pass. The default value is null.</summary>
    public IProgress<FeaturizationProgress>? Progress { get; set; }

    /// <summary>Receives one line per step (pass started, candidate scored). The default value is null.</summary>
    public Action<string>? Log { get; set; }
}
