using MLTransfer.Data;

namespace MLTransfer.Prediction;

/// <summary>Options of <see cref="ImageClassifier"/>.</summary>
/// <remarks>
/// Any MLTransfer <c>.zip</c> loads with the same options, whatever its technique or backbone (a quantised backbone is just
/// another graph in the <c>.zip</c>).
/// </remarks>
public sealed class ImageClassifierOptions
{
    /// <summary>Largest accepted image in pixels (width × height), read from the image's header before any pixel memory is allocated. The default value is 64 megapixels.</summary>
    public long MaxPixels { get; set; } = ImageFileCheck.DefaultMaxPixels;

    /// <summary>Largest encoded image read from a <see cref="Stream"/>, in bytes. The default value is 64 MiB.</summary>
    public long MaxImageBytes { get; set; } = 64L << 20;

    /// <summary>
    /// Whether <see cref="ImageClassifier.PredictAsync(ReadOnlyMemory{byte}, CancellationToken)"/> runs images that arrive within
    /// <see cref="BatchDelay"/> of each other as one batch (dynamic batching, as Triton and TorchServe do); when false every call
    /// runs alone. The default value is true.
    /// </summary>
    public bool DynamicBatching { get; set; } = true;

    /// <summary>Most images run in one batch, by dynamic batching and by the batch methods. The default value is 8.</summary>
    public int MaxBatchSize { get; set; } = 8;

    /// <summary>How long a dynamic batch waits for more images after its first one arrived. The default value is 2 ms.</summary>
    public TimeSpan BatchDelay { get; set; } = TimeSpan.FromMilliseconds(2);

    /// <summary>
    /// Batches run at the same time on the one shared ONNX Runtime session; 0 means two on a machine with at least two cores,
    /// else one (as <see cref="Featurization.FeaturizerOptions.InferenceThreads"/>). The default value is 0.
    /// </summary>
    public int InferenceThreads { get; set; }

    /// <summary>ONNX Runtime intra-op threads of each run; 0 means the cores divided by the inference threads. The default value is 0.</summary>
    public int IntraOpThreads { get; set; }

    /// <summary>The number of inference threads <see cref="InferenceThreads"/> resolves to on this machine.</summary>
    public int EffectiveInferenceThreads => InferenceThreads > 0 ? InferenceThreads : Math.Min(2, Environment.ProcessorCount);

    /// <summary>The number of intra-op threads <see cref="IntraOpThreads"/> resolves to on this machine.</summary>
    public int EffectiveIntraOpThreads => IntraOpThreads > 0 ? IntraOpThreads : Math.Max(1, Environment.ProcessorCount / EffectiveInferenceThreads);

    /// <summary>A copy of these options.</summary>
    public ImageClassifierOptions Clone() => (ImageClassifierOptions)MemberwiseClone();

    internal void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxPixels, 1, nameof(MaxPixels));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxImageBytes, 1, nameof(MaxImageBytes));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxBatchSize, 1, nameof(MaxBatchSize));
        ArgumentOutOfRangeException.ThrowIfLessThan(BatchDelay, TimeSpan.Zero, nameof(BatchDelay));
        ArgumentOutOfRangeException.ThrowIfNegative(InferenceThreads, nameof(InferenceThreads));
        ArgumentOutOfRangeException.ThrowIfNegative(IntraOpThreads, nameof(IntraOpThreads));
    }
}
