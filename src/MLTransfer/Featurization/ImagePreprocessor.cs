using Microsoft.ML.Data;
using MLTransfer.Data;
using SkiaSharp;

namespace MLTransfer.Featurization;

/// <summary>
/// Decodes, resizes and extracts the pixels of one image exactly as ML.NET 6's image transforms do
/// (<c>LoadImages</c> → <c>ResizeImages(IsoCrop, Center)</c> → <c>ExtractPixels(Rgb, planar, scale 1, offset 0)</c>),
/// but without building an <c>IDataView</c> per image, so it can run on many threads at once.
/// </summary>
/// <remarks>
/// ML.NET decodes with <c>SKBitmap.Decode</c>, converts any pixel layout other than BGRA/RGBA to BGRA, leaves an image
/// already at the target size untouched, and otherwise draws it scaled by the larger of the two aspect ratios onto an
/// opaque target, centred, with a Mitchell cubic resampler. This class repeats those steps; a test checks that its
/// output is bit-identical to the transforms' output on real images of several formats.
/// </remarks>
public static class ImagePreprocessor
{
    /// <summary>Number of floats one image occupies: 3 planes of <paramref name="imageSize"/>².</summary>
    /// <param name="imageSize">Square image size in pixels.</param>
    public static int PixelCount(int imageSize) => 3 * imageSize * imageSize;

    /// <summary>Decodes an encoded image and writes its planar RGB pixels (0–255) to <paramref name="destination"/>.</summary>
    /// <param name="encoded">The bytes of the image file.</param>
    /// <param name="imageSize">Square output size in pixels.</param>
    /// <param name="destination">Receives <see cref="PixelCount"/> floats: the R plane, then G, then B, rows top to bottom.</param>
    /// <param name="maxPixels">Largest accepted width × height, checked before any pixel memory is allocated. The default value is <see cref="ImageFileCheck.DefaultMaxPixels"/>.</param>
    /// <returns>Null on success, otherwise a one-line reason the image could not be used.</returns>
    /// <remarks>Unlike ML.NET, which silently keeps the decoded part of a truncated file, a truncated or damaged image is rejected.</remarks>
    public static string? TryLoadPixels(ReadOnlySpan<byte> encoded, int imageSize, Span<float> destination, long maxPixels = ImageFileCheck.DefaultMaxPixels) =>
        TryLoadPixels(encoded, imageSize, destination, maxPixels, allowFastResize: true);

    /// <summary>
    /// Decodes an encoded image and draws the whole of it at a chosen place on the square canvas (scaled, possibly
    /// stretched, the parts outside the canvas cut off), with the same Mitchell filter as ML.NET's <c>ResizeImages</c>;
    /// for example a random crop of the original picture for augmentation. The placement that
    /// <see cref="CentrePlacement"/> gives reproduces the pixels of <see cref="TryLoadPixels(ReadOnlySpan{byte}, int, Span{float}, long)"/>
    /// except for images already at the canvas size, which that method copies unchanged.
    /// </summary>
    /// <param name="encoded">The bytes of the image file.</param>
    /// <param name="imageSize">Square output size in pixels.</param>
    /// <param name="destination">Receives <see cref="PixelCount"/> floats: the R plane, then G, then B.</param>
    /// <param name="placement">Given the decoded width and height, where the image is drawn; it must cover the whole canvas.</param>
    /// <param name="maxPixels">Largest accepted width × height. The default value is <see cref="ImageFileCheck.DefaultMaxPixels"/>.</param>
    /// <returns>Null on success, otherwise a one-line reason the image could not be used.</returns>
    public static string? TryLoadPixels(ReadOnlySpan<byte> encoded, int imageSize, Span<float> destination, Func<int, int, ImagePlacement> placement,
        long maxPixels = ImageFileCheck.DefaultMaxPixels)
    {
        ArgumentNullException.ThrowIfNull(placement);
        return TryLoadPixels(encoded, imageSize, destination, maxPixels, allowFastResize: true, placement);
    }

    /// <summary>Where ML.NET's <c>ResizeImages(IsoCrop, Center)</c> draws an image of the given size on a square canvas.</summary>
    /// <param name="width">The image's width.</param>
    /// <param name="height">The image's height.</param>
    /// <param name="imageSize">The canvas side.</param>
    public static ImagePlacement CentrePlacement(int width, int height, int imageSize)
    {
        var r = CentreCropRectangle(width, height, imageSize);
        return new ImagePlacement(r.Left, r.Top, r.Right, r.Bottom);
    }

    // allowFastResize: false always draws with SkiaSharp (tests compare the two).
    internal static string? TryLoadPixels(ReadOnlySpan<byte> encoded, int imageSize, Span<float> destination, long maxPixels, bool allowFastResize,
        Func<int, int, ImagePlacement>? placement = null)
    {
        CheckDestination(imageSize, destination);
        if (encoded.IsEmpty)
            return "empty file (0 bytes)";
        var decoded = Decode(encoded, maxPixels, out var problem);
        if (decoded is null)
            return problem;
        using (decoded)
            return FromBitmap(decoded, imageSize, destination, allowFastResize, placement);
    }

    /// <summary>
    /// Writes the planar RGB pixels (0–255) of an already decoded ML.NET image to <paramref name="destination"/>, exactly as
    /// <c>ResizeImages(IsoCrop, Center)</c> → <c>ExtractPixels</c> would for that image.
    /// </summary>
    /// <param name="image">The image (BGRA or RGBA, 8 bits per channel, premultiplied alpha as ML.NET keeps it).</param>
    /// <param name="imageSize">Square output size in pixels.</param>
    /// <param name="destination">Receives <see cref="PixelCount"/> floats: the R plane, then G, then B, rows top to bottom.</param>
    /// <returns>Null on success, otherwise a one-line reason the image could not be used.</returns>
    public static string? TryLoadPixels(MLImage image, int imageSize, Span<float> destination)
    {
        ArgumentNullException.ThrowIfNull(image);
        CheckDestination(imageSize, destination);
        if (image.PixelFormat is not MLPixelFormat.Bgra32 and not MLPixelFormat.Rgba32)
            return $"unsupported pixel layout ({image.PixelFormat})";
        if (image.Width <= 0 || image.Height <= 0)
            return "image has no pixels";
        var pixels = image.Pixels;
        var colorType = image.PixelFormat == MLPixelFormat.Bgra32 ? SKColorType.Bgra8888 : SKColorType.Rgba8888;
        var opaque = true;
        for (var i = 3; i < pixels.Length && opaque; i += 4)
            opaque = pixels[i] == 255;
        // The same bitmap ML.NET holds: decoded images are opaque or premultiplied, and an opaque one may take the fast resize.
        using var bitmap = new SKBitmap(new SKImageInfo(image.Width, image.Height, colorType, opaque ? SKAlphaType.Opaque : SKAlphaType.Premul));
        pixels.CopyTo(bitmap.GetPixelSpan());
        return FromBitmap(bitmap, imageSize, destination, allowFastResize: true);
    }

    private static void CheckDestination(int imageSize, Span<float> destination)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(imageSize, 1);
        if (destination.Length < PixelCount(imageSize))
            throw new ArgumentException($"The destination holds {destination.Length} floats; {PixelCount(imageSize)} are needed.", nameof(destination));
    }

    // The steps after decoding: any layout other than BGRA/RGBA to BGRA, then no resize at the target size, else the centre crop
    // (or the placement, when one is given).
    private static string? FromBitmap(SKBitmap decoded, int imageSize, Span<float> destination, bool allowFastResize,
        Func<int, int, ImagePlacement>? placement = null)
    {
        SKBitmap? converted = null;
        try
        {
            var source = decoded;
            if (source.Width <= 0 || source.Height <= 0)
                return "image has no pixels";
            if (source.ColorType is not SKColorType.Bgra8888 and not SKColorType.Rgba8888)
            {
                if (!source.CanCopyTo(SKColorType.Bgra8888))
                    return $"unsupported pixel layout ({source.ColorType})";
                converted = source.Copy(SKColorType.Bgra8888);
                if (converted is null)
                    return $"unsupported pixel layout ({source.ColorType})";
                source = converted;
            }
            if (placement is null && source.Width == imageSize && source.Height == imageSize)
            {
                ExtractPlanarRgb(source, imageSize, destination);
                return null;
            }
            var rectangle = placement is null ? CentreCropRectangle(source.Width, source.Height, imageSize)
                : placement(source.Width, source.Height).ToRect(imageSize);
            if (allowFastResize && CubicResampler.IsExact && CubicResampler.TryResize(source, rectangle, imageSize, destination))
                return null;
            return ResizeWithSkia(source, rectangle, imageSize, destination);
        }
        finally
        {
            converted?.Dispose();
        }
    }

    /// <summary>Reads an image file and writes its planar RGB pixels; see <see cref="TryLoadPixels(ReadOnlySpan{byte}, int, Span{float}, long)"/>.</summary>
    /// <param name="path">The image file.</param>
    /// <param name="imageSize">Square output size in pixels.</param>
    /// <param name="destination">Receives <see cref="PixelCount"/> floats.</param>
    /// <param name="maxPixels">Largest accepted width × height. The default value is <see cref="ImageFileCheck.DefaultMaxPixels"/>.</param>
    /// <returns>Null on success, otherwise a one-line reason.</returns>
    public static string? TryLoadPixels(string path, int imageSize, Span<float> destination, long maxPixels = ImageFileCheck.DefaultMaxPixels)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return e is FileNotFoundException ? "file not found" : $"cannot read file: {e.Message}";
        }
        return TryLoadPixels(bytes, imageSize, destination, maxPixels);
    }

    // Same steps as SKBitmap.Decode(SKCodec), which ML.NET's MLImage.CreateFromStream calls (SkiaSharp 3 keeps the codec's
    // colour space, which matters for JPEGs with an embedded profile such as CMYK ones), but the codec's result is checked:
    // only a complete decode is accepted.
    internal static SKBitmap? Decode(ReadOnlySpan<byte> encoded, long maxPixels, out string? problem)
    {
        using var data = SKData.CreateCopy(encoded);
        var stream = new SKMemoryStream(data);
        using var codec = SKCodec.Create(stream, out var created); // the codec owns the stream
        if (codec is null)
        {
            stream.Dispose();
            problem = $"not a supported image ({ImageFileCheck.Describe(created)})";
            return null;
        }
        var info = codec.Info;
        if (info.Width <= 0 || info.Height <= 0)
        {
            problem = "image has no pixels";
            return null;
        }
        if ((long)info.Width * info.Height > maxPixels)
        {
            problem = $"image is {info.Width}x{info.Height}, over the limit of {maxPixels / 1_000_000.0:0.#} megapixels";
            return null;
        }
        if (info.AlphaType == SKAlphaType.Unpremul)
            info.AlphaType = SKAlphaType.Premul;
        var bitmap = new SKBitmap(info);
        var result = codec.GetPixels(info, bitmap.GetPixels());
        if (result != SKCodecResult.Success)
        {
            bitmap.Dispose();
            problem = $"image data is damaged ({ImageFileCheck.Describe(result)})";
            return null;
        }
        problem = null;
        return bitmap;
    }

    // Same geometry as ML.NET's MLImage.ResizeWithCrop with the centre anchor: where the image is drawn on the size² canvas.
    internal static SKRect CentreCropRectangle(int width, int height, int size)
    {
        var widthAspect = (float)size / width;
        var heightAspect = (float)size / height;
        var destX = 0;
        var destY = 0;
        float aspect;
        if (heightAspect < widthAspect)
        {
            aspect = widthAspect;
            destY = (int)((size - (height * aspect)) / 2);
        }
        else
        {
            aspect = heightAspect;
            destX = (int)((size - (width * aspect)) / 2);
        }
        return new SKRect(destX, destY, destX + (int)(width * aspect), destY + (int)(height * aspect));
    }

    // What ML.NET does: draw with SkiaSharp's Mitchell cubic onto an opaque canvas, then read the pixels back.
    internal static string? ResizeWithSkia(SKBitmap source, SKRect rectangle, int size, Span<float> destination)
    {
        using var target = new SKBitmap(size, size, isOpaque: true);
        using (var canvas = new SKCanvas(target))
        using (var image = SKImage.FromBitmap(source))
            canvas.DrawImage(image, new SKRect(0, 0, source.Width, source.Height), rectangle, new SKSamplingOptions(SKCubicResampler.Mitchell));
        if (target.ColorType is not SKColorType.Bgra8888 and not SKColorType.Rgba8888)
            return $"unsupported pixel layout after resizing ({target.ColorType})";
        ExtractPlanarRgb(target, size, destination);
        return null;
    }

    private static void ExtractPlanarRgb(SKBitmap bitmap, int size, Span<float> destination)
    {
        ReadOnlySpan<byte> pixels = bitmap.GetPixelSpan();
        var (red, green, blue) = bitmap.ColorType == SKColorType.Bgra8888 ? (2, 1, 0) : (0, 1, 2);
        var plane = size * size;
        var r = destination[..plane];
        var g = destination.Slice(plane, plane);
        var b = destination.Slice(2 * plane, plane);
        var rowBytes = bitmap.RowBytes;
        for (var y = 0; y < size; y++)
        {
            var row = pixels.Slice(y * rowBytes, size * 4);
            var offset = y * size;
            for (var x = 0; x < size; x++)
            {
                var p = x * 4;
                r[offset + x] = row[p + red];
                g[offset + x] = row[p + green];
                b[offset + x] = row[p + blue];
            }
        }
    }
}

/// <summary>
/// Where a whole image is drawn on a square canvas, in canvas pixels (left, top, right, bottom edges); it may reach
/// beyond the canvas, whose outside is cut off.
/// </summary>
/// <param name="Left">The left edge of the drawn image.</param>
/// <param name="Top">The top edge.</param>
/// <param name="Right">The right edge.</param>
/// <param name="Bottom">The bottom edge.</param>
public readonly record struct ImagePlacement(float Left, float Top, float Right, float Bottom)
{
    /// <summary>The placement that shows the region (<paramref name="x"/>, <paramref name="y"/>, <paramref name="width"/>, <paramref name="height"/>) of a source image, in its pixels, stretched over the whole canvas.</summary>
    /// <param name="x">The region's left edge in source pixels.</param>
    /// <param name="y">The region's top edge.</param>
    /// <param name="width">The region's width.</param>
    /// <param name="height">The region's height.</param>
    /// <param name="sourceWidth">The image's width.</param>
    /// <param name="sourceHeight">The image's height.</param>
    /// <param name="imageSize">The canvas side.</param>
    public static ImagePlacement OfRegion(double x, double y, double width, double height, int sourceWidth, int sourceHeight, int imageSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        var scaleX = imageSize / width;
        var scaleY = imageSize / height;
        return new ImagePlacement((float)(-x * scaleX), (float)(-y * scaleY), (float)((sourceWidth - x) * scaleX), (float)((sourceHeight - y) * scaleY));
    }

    internal SKRect ToRect(int imageSize)
    {
        if (!(Left <= 0.001f && Top <= 0.001f && Right >= imageSize - 0.001f && Bottom >= imageSize - 0.001f))
            throw new ArgumentException($"The image placed at ({Left}, {Top})–({Right}, {Bottom}) does not cover the {imageSize}-pixel canvas.");
        return new SKRect(Math.Min(Left, 0), Math.Min(Top, 0), Math.Max(Right, imageSize), Math.Max(Bottom, imageSize));
    }
}
