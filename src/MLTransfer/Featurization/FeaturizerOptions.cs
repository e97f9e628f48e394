namespace MLTransfer.Featurization;

/// <summary>Options of the featurisation engine shared by every technique.</summary>
public sealed class FeaturizerOptions
{
    /// <summary>Square size images are resized (centre-cropped) to; null means the backbone's native size. The default value is null.</summary>
    public int? ImageSize { get; set; }

    /// <summary>Folder of the on-disk bottleneck cache; null means <c>$TMPDIR/mltransfer/cache</c>. The default value is null.</summary>
    public string? CacheDirectory { get; set; }

    /// <summary>Whether to read and write the bottleneck cache. The default value is true.</summary>
    public bool UseCache { get; set; } = true;

    /// <summary>Images per inference batch. The default value is 8.</summary>
    public int BatchSize { get; set; } = 8;

    /// <summary>Threads decoding and resizing images while inference runs. The default value is 1.</summary>
    public int DecodeThreads { get; set; } = 1;

    /// <summary>ONNX Runtime intra-op threads; 0 means one per core. The default value is 0.</summary>
    public int IntraOpThreads { get; set; }

    /// <summary>Folder where fused backbone graphs are kept; null means <c>$TMPDIR/mltransfer/graphs</c>. The default value is null.</summary>
    public string? GraphDirectory { get; set; }
}
