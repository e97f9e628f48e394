using SkiaSharp;

namespace MLTransfer.Data;

/// <summary>
/// Checks that a file is an image MLTransfer can decode, reading its header first so that a file claiming
/// enormous dimensions is rejected before any pixel memory is allocated.
/// </summary>
public static class ImageFileCheck
{
    /// <summary>File extensions treated as images (compared case-insensitively).</summary>
    public static readonly IReadOnlySet<string> Extensions =
        new HashSet<string>(StringComparer.OrdinalIgnoreCase) { ".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp" };

    /// <summary>Largest image accepted, in pixels (width × height). The default value is 64 megapixels.</summary>
    public const long DefaultMaxPixels = 64L * 1024 * 1024;

    /// <summary>True when the path has one of the <see cref="Extensions"/>.</summary>
    /// <param name="path">A file path.</param>
    public static bool HasImageExtension(string path) => Extensions.Contains(Path.GetExtension(path));

    /// <summary>Returns null when the image decodes, otherwise a one-line reason.</summary>
    /// <param name="path">The image file.</param>
    /// <param name="maxPixels">Largest accepted width × height.</param>
    /// <param name="decode">When true the whole image is decoded; when false only its header is read.</param>
    public static string? Problem(string path, long maxPixels = DefaultMaxPixels, bool decode = true)
    {
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists)
                return "file not found";
            if (info.Length == 0)
                return "empty file (0 bytes)";
            using var stream = File.OpenRead(path);
            using var codec = SKCodec.Create(stream, out var result);
            if (codec is null)
                return $"not a supported image ({Describe(result)})";
            var (width, height) = (codec.Info.Width, codec.Info.Height);
            if (width <= 0 || height <= 0)
                return "image has no pixels";
            if ((long)width * height > maxPixels)
                return $"image is {width}x{height}, over the limit of {maxPixels / 1_000_000.0:0.#} megapixels";
            if (!decode)
                return null;
            var target = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul);
            using var bitmap = new SKBitmap(target);
            var decoded = codec.GetPixels(target, bitmap.GetPixels());
            return decoded is SKCodecResult.Success ? null : $"image data is damaged ({Describe(decoded)})";
        }
        catch (IOException e)
        {
            return $"cannot read file: {e.Message}";
        }
        catch (UnauthorizedAccessException e)
        {
            return $"cannot read file: {e.Message}";
        }
    }

    internal static string Describe(SKCodecResult result) => result switch
    {
        SKCodecResult.IncompleteInput => "truncated",
        SKCodecResult.ErrorInInput => "corrupt data",
        SKCodecResult.Unimplemented => "unsupported format or pixel layout",
        SKCodecResult.InvalidInput => "unrecognised content",
        _ => result.ToString(),
    };
}
