namespace MLTransfer.Data;

/// <summary>Options for reading a multi-task image manifest (<see cref="ImageManifest"/>).</summary>
public sealed class ImageManifestOptions
{
    /// <summary>Task columns to read, in this order; null means every column after <c>path</c>. The default value is null.</summary>
    public IReadOnlyList<string>? Tasks { get; set; }

    /// <summary>Declared kinds of some tasks; the others are inferred (see <see cref="ImageManifest.InferKind"/>). The default value is null.</summary>
    public IReadOnlyDictionary<string, TaskKind>? Kinds { get; set; }

    /// <summary>
    /// A numeric column with at most this many distinct values is read as classes, with more as a regression
    /// target (see <see cref="ImageManifest.InferKind"/>). The default value is 10.
    /// </summary>
    public int NumericClassLimit { get; set; } = ImageManifest.DefaultNumericClassLimit;

    /// <summary>Fail on the first unreadable image instead of listing and skipping it. The default value is false.</summary>
    public bool Strict { get; set; }

    /// <summary>Fully decode every image while reading (catches truncated files early). The default value is true.</summary>
    public bool DecodeCheck { get; set; } = true;

    /// <summary>Largest accepted image, in pixels (width × height). The default value is 64 megapixels.</summary>
    public long MaxPixels { get; set; } = ImageFileCheck.DefaultMaxPixels;
}
