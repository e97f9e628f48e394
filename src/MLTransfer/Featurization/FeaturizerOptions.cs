namespace MLTransfer.Featurization;

/// <summary>Options of the featurisation engine shared by every technique.</summary>
public sealed class FeaturizerOptions
{
    /// <summary>Square size images are resized (centre-cropped) to; null means the backbone's native size. The default value is null.</summary>
    public int? ImageSize { get; set; }

    /// <summary>
    /// Cache folder: the on-disk bottleneck cache, and fused graphs in its <c>graphs/</c> sub-folder unless <see cref="GraphDirectory"/>
    /// is set; null means the default cache folder (<see cref="IO.CacheLocation.Default"/>). The default value is null.
    /// </summary>
    public string? CacheDirectory { get; set; }

    /// <summary>Whether to read and write the bottleneck cache. The default value is true.</summary>
    public bool UseCache { get; set; } = true;

    /// <summary>Size limit of the bottleneck cache in bytes; older entries are evicted beyond it. The default value is <see cref="BottleneckCache.DefaultMaxBytes"/> (2 GiB).</summary>
    public long CacheMaxBytes { get; set; } = BottleneckCache.DefaultMaxBytes;

    /// <summary>Images per inference batch. The default value is 8.</summary>
    public int BatchSize { get; set; } = 8;

    /// <summary>
    /// Threads reading, hashing, decoding and resizing images while inference runs; 0 means one per two cores (at least one).
    /// The default value is 0.
    /// </summary>
    public int DecodeThreads { get; set; }

    /// <summary>
    /// Threads running inference batches at the same time on the one shared ONNX Runtime session; 0 means two on a machine with
    /// at least two cores, else one. Independent batches on single-threaded runs avoid the per-layer synchronisation of one
    /// multi-threaded run. The default value is 0.
    /// </summary>
    public int InferenceThreads { get; set; }

    /// <summary>ONNX Runtime intra-op threads of each run; 0 means the cores divided by <see cref="EffectiveInferenceThreads"/>. The default value is 0.</summary>
    public int IntraOpThreads { get; set; }

    /// <summary>
    /// Folder where fused backbone graphs are kept; null means <c>graphs/</c> in the cache folder (<see cref="CacheDirectory"/>,
    /// or the default cache folder when <see cref="UseCache"/> is false, so that a cache folder given with the cache off is not
    /// touched). The default value is null.
    /// </summary>
    public string? GraphDirectory { get; set; }

    /// <summary>The folder fused graphs go to (see <see cref="GraphDirectory"/>).</summary>
    public string EffectiveGraphDirectory => GraphDirectory ?? IO.CacheLocation.Graphs(UseCache ? CacheDirectory : null);

    /// <summary>
    /// Whether the engine's session runs the fused graph rewritten for speed by <see cref="Backbones.InferenceGraph"/>: input
    /// normalisation folded into the first convolution, wide 3×3 convolutions in Winograd form. The exported models keep the
    /// plain graph; the two compute the same function and their features differ by float rounding only (~2e-5 on
    /// ResNet18). The default value is true.
    /// </summary>
    public bool OptimizeGraph { get; set; } = true;

    /// <summary>Largest accepted image in pixels (width × height), checked before decoding. The default value is 64 megapixels.</summary>
    public long MaxPixels { get; set; } = Data.ImageFileCheck.DefaultMaxPixels;

    /// <summary>The number of inference threads <see cref="InferenceThreads"/> resolves to on this machine.</summary>
    public int EffectiveInferenceThreads => InferenceThreads > 0 ? InferenceThreads : Math.Min(2, Environment.ProcessorCount);

    /// <summary>The number of decode threads <see cref="DecodeThreads"/> resolves to on this machine.</summary>
    public int EffectiveDecodeThreads => DecodeThreads > 0 ? DecodeThreads : Math.Max(1, Environment.ProcessorCount / 2);

    /// <summary>A copy of these options (all settings, so that callers changing one or two never drop the others).</summary>
    public FeaturizerOptions Clone() => (FeaturizerOptions)MemberwiseClone();
}
