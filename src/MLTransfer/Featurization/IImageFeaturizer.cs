using MLTransfer.Backbones;
using MLTransfer.Data;

namespace MLTransfer.Featurization;

/// <summary>Turns image files into backbone feature vectors (the "bottleneck" values of transfer learning).</summary>
public interface IImageFeaturizer : IDisposable
{
    /// <summary>The backbone this featuriser runs.</summary>
    Backbone Backbone { get; }

    /// <summary>Square image size fed to the backbone.</summary>
    int ImageSize { get; }

    /// <summary>Length of each feature vector.</summary>
    int FeatureSize { get; }

    /// <summary>Path of the fused ONNX graph (<see cref="FeaturizerGraph"/>) whose outputs these features are.</summary>
    string GraphPath { get; }

    /// <summary>Featurises images, in order.</summary>
    /// <param name="imagePaths">The image files.</param>
    /// <param name="progress">Receives progress reports; may be null.</param>
    /// <param name="cancellationToken">Cancels the run.</param>
    /// <returns>One vector per path (null where the image could not be decoded, with the reason in <see cref="FeaturizationResult.Failed"/>).</returns>
    FeaturizationResult Featurize(IReadOnlyList<string> imagePaths, IProgress<FeaturizationProgress>? progress = null,
        CancellationToken cancellationToken = default);
}

/// <summary>Progress of a featurisation run.</summary>
/// <param name="Done">Images finished so far.</param>
/// <param name="Total">Images in the run.</param>
/// <param name="FromCache">Images served from the bottleneck cache so far.</param>
public readonly record struct FeaturizationProgress(int Done, int Total, int FromCache);

/// <summary>The output of <see cref="IImageFeaturizer.Featurize"/>.</summary>
public sealed class FeaturizationResult
{
    /// <summary>Creates a result.</summary>
    /// <param name="features">One vector per input path, null for failures.</param>
    /// <param name="failed">Images that could not be featurised.</param>
    /// <param name="fromCache">How many vectors came from the cache.</param>
    public FeaturizationResult(float[]?[] features, IReadOnlyList<RejectedImage> failed, int fromCache)
    {
        Features = features;
        Failed = failed;
        FromCache = fromCache;
    }

    /// <summary>One vector per input path, in order; null where the image failed.</summary>
    public float[]?[] Features { get; }

    /// <summary>Images that could not be featurised, with the reason.</summary>
    public IReadOnlyList<RejectedImage> Failed { get; }

    /// <summary>How many vectors came from the bottleneck cache.</summary>
    public int FromCache { get; }
}
