using SkiaSharp;

namespace MLTransfer.Explain;

/// <summary>Renders explanations as PNG images: the image as the model sees it, with a class's map laid over it.</summary>
public static class HeatMapImage
{
    private static readonly ScottPlot.IColormap Colours = new ScottPlot.Colormaps.Turbo();

    /// <summary>
    /// The image with the class's map laid over it (min-max normalised, Turbo colours: blue low, red high), as PNG bytes.
    /// </summary>
    /// <param name="explanation">The explanation.</param>
    /// <param name="map">One of its maps; null means the first.</param>
    /// <param name="size">Side of the PNG in pixels; null means the model's image size, at least 224.</param>
    /// <param name="opacity">Opacity of the colours at the map's maximum, in [0, 1]. The default value is 0.6.</param>
    public static byte[] Overlay(Explanation explanation, ClassMap? map = null, int? size = null, double opacity = 0.6)
    {
        ArgumentNullException.ThrowIfNull(explanation);
        map ??= explanation.Maps[0];
        var s = explanation.ImageSize;
        var heat = Normalise(map.Upsample(s));
        var plane = s * s;
        using var bitmap = new SKBitmap(new SKImageInfo(s, s, SKColorType.Rgba8888, SKAlphaType.Opaque));
        var pixels = explanation.Pixels;
        for (var i = 0; i < plane; i++)
        {
            var colour = Colours.GetColor(heat[i]);
            var a = opacity * (0.35 + 0.65 * heat[i]);
            bitmap.SetPixel(i % s, i / s, new SKColor(
                Blend(pixels[i], colour.R, a), Blend(pixels[plane + i], colour.G, a), Blend(pixels[2 * plane + i], colour.B, a)));
        }
        return Encode(bitmap, size ?? Math.Max(s, 224));
    }

    /// <summary>The image as the model sees it (decoded, centre-cropped, resized), as PNG bytes.</summary>
    /// <param name="explanation">The explanation.</param>
    /// <param name="size">Side of the PNG in pixels; null means the model's image size, at least 224.</param>
    public static byte[] Photo(Explanation explanation, int? size = null)
    {
        ArgumentNullException.ThrowIfNull(explanation);
        return Photo(explanation.Pixels, explanation.ImageSize, size ?? Math.Max(explanation.ImageSize, 224));
    }

    /// <summary>An image file centre-cropped and resized to a square (as ML.NET's image transforms do), as PNG bytes; null when it cannot be read.</summary>
    /// <param name="imagePath">The image file.</param>
    /// <param name="size">Side of the PNG in pixels.</param>
    public static byte[]? Thumbnail(string imagePath, int size)
    {
        var pixels = new float[Featurization.ImagePreprocessor.PixelCount(size)];
        return Featurization.ImagePreprocessor.TryLoadPixels(imagePath, size, pixels) is null ? Photo(pixels, size, size) : null;
    }

    private static byte[] Photo(float[] pixels, int s, int size)
    {
        var plane = s * s;
        using var bitmap = new SKBitmap(new SKImageInfo(s, s, SKColorType.Rgba8888, SKAlphaType.Opaque));
        for (var i = 0; i < plane; i++)
            bitmap.SetPixel(i % s, i / s, new SKColor(Byte(pixels[i]), Byte(pixels[plane + i]), Byte(pixels[2 * plane + i])));
        return Encode(bitmap, size);
    }

    private static float[] Normalise(float[] values)
    {
        var min = values.Min();
        var range = values.Max() - min;
        return values.Select(v => range > 0 ? (v - min) / range : 0f).ToArray();
    }

    private static byte Blend(float image, byte colour, double alpha) => Byte((float)(image * (1 - alpha) + colour * alpha));

    private static byte Byte(float value) => (byte)Math.Clamp(Math.Round(value), 0, 255);

    private static byte[] Encode(SKBitmap bitmap, int size)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 1);
        using var surface = SKSurface.Create(new SKImageInfo(size, size, SKColorType.Rgba8888, SKAlphaType.Premul));
        using (var image = SKImage.FromBitmap(bitmap))
            surface.Canvas.DrawImage(image, new SKRect(0, 0, bitmap.Width, bitmap.Height), new SKRect(0, 0, size, size), new SKSamplingOptions(SKCubicResampler.Mitchell));
        using var snapshot = surface.Snapshot();
        using var png = snapshot.Encode(SKEncodedImageFormat.Png, 100);
        return png.ToArray();
    }
}
