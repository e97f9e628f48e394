using MLTransfer.Featurization;

namespace MLTransfer.Torch.Streaming;

/// <summary>
/// Random augmentation of training images: a random resized crop of the <em>original</em> picture (Szegedy et al. 2015,
/// "Going deeper with convolutions", with torchvision's parameters: area share and aspect ratio drawn, ten attempts,
/// then the centre), drawn onto the square canvas with the exported pipeline's Mitchell filter, then a horizontal flip
/// and colour jitter on the planar RGB values. All randomness comes from the <see cref="Random"/> passed in, in a fixed
/// order, so a seeded run repeats exactly.
/// </summary>
internal sealed class ImageAugmenter
{
    private static readonly double MinLogRatio = Math.Log(3.0 / 4.0);
    private static readonly double MaxLogRatio = Math.Log(4.0 / 3.0);

    private readonly int _size;
    private readonly double _minScale;
    private readonly double _maxScale;
    private readonly bool _flip;
    private readonly double _jitter;

    public ImageAugmenter(int size, double minScale, double maxScale, bool flip, double jitter)
    {
        _size = size;
        _minScale = minScale;
        _maxScale = maxScale;
        _flip = flip;
        _jitter = jitter;
    }

    /// <summary>True when <see cref="Load"/> gives the exact pixels whatever the generator.</summary>
    public bool IsIdentity => _minScale >= 1 && !_flip && _jitter <= 0;

    /// <summary>A text that changes whenever the augmentation would (for cache keys).</summary>
    public string Describe() => FormattableString.Invariant($"crop {_minScale}-{_maxScale} flip {_flip} jitter {_jitter}");

    /// <summary>Decodes <paramref name="encoded"/> and writes an augmented 3·size·size planar image; returns null or why the image cannot be used.</summary>
    public string? Load(ReadOnlySpan<byte> encoded, Span<float> target, Random random, long maxPixels)
    {
        var problem = ImagePreprocessor.TryLoadPixels(encoded, _size, target,
            (width, height) => _minScale < 1 ? RandomCrop(width, height, random) : ImagePreprocessor.CentrePlacement(width, height, _size), maxPixels);
        if (problem is not null)
            return problem;
        if (_flip && random.NextDouble() < 0.5)
            Mirror(target, _size);
        if (_jitter > 0)
        {
            var brightness = 1 + (((random.NextDouble() * 2) - 1) * _jitter);
            var contrast = 1 + (((random.NextDouble() * 2) - 1) * _jitter);
            var saturation = 1 + (((random.NextDouble() * 2) - 1) * _jitter);
            Jitter(target, _size * _size, (float)brightness, (float)contrast, (float)saturation);
        }
        return null;
    }

    /// <summary>torchvision's <c>RandomResizedCrop.get_params</c> on a <paramref name="width"/> × <paramref name="height"/> picture.</summary>
    internal ImagePlacement RandomCrop(int width, int height, Random random)
    {
        double area = (double)width * height;
        for (var attempt = 0; attempt < 10; attempt++)
        {
            var target = area * (_minScale + (random.NextDouble() * (_maxScale - _minScale)));
            var ratio = Math.Exp(MinLogRatio + (random.NextDouble() * (MaxLogRatio - MinLogRatio)));
            var w = Math.Sqrt(target * ratio);
            var h = Math.Sqrt(target / ratio);
            if (w <= width && h <= height)
            {
                var x = random.NextDouble() * (width - w);
                var y = random.NextDouble() * (height - h);
                return ImagePlacement.OfRegion(x, y, w, h, width, height, _size);
            }
        }

        // Fall back to the largest centred region within the aspect-ratio bounds, as torchvision does.
        double cw = width, ch = height;
        var inRatio = (double)width / height;
        if (inRatio < 3.0 / 4.0)
            ch = cw / (3.0 / 4.0);
        else if (inRatio > 4.0 / 3.0)
            cw = ch * (4.0 / 3.0);
        ch = Math.Min(ch, height);
        cw = Math.Min(cw, width);
        return ImagePlacement.OfRegion((width - cw) / 2, (height - ch) / 2, cw, ch, width, height, _size);
    }

    /// <summary>Mirrors a planar 3·size·size image left to right, in place.</summary>
    internal static void Mirror(Span<float> image, int size)
    {
        for (var row = 0; row < 3 * size; row++)
            image.Slice(row * size, size).Reverse();
    }

    private static void Jitter(Span<float> image, int plane, float brightness, float contrast, float saturation)
    {
        double graySum = 0;
        for (var k = 0; k < plane; k++)
            graySum += Gray(image, plane, k) * brightness;
        var grayMean = (float)(graySum / plane);
        for (var k = 0; k < plane; k++)
        {
            var r = image[k] * brightness;
            var g = image[plane + k] * brightness;
            var b = image[(2 * plane) + k] * brightness;
            r = grayMean + ((r - grayMean) * contrast);
            g = grayMean + ((g - grayMean) * contrast);
            b = grayMean + ((b - grayMean) * contrast);
            var gray = (0.299f * r) + (0.587f * g) + (0.114f * b);
            image[k] = Math.Clamp(gray + ((r - gray) * saturation), 0f, 255f);
            image[plane + k] = Math.Clamp(gray + ((g - gray) * saturation), 0f, 255f);
            image[(2 * plane) + k] = Math.Clamp(gray + ((b - gray) * saturation), 0f, 255f);
        }
    }

    private static float Gray(Span<float> image, int plane, int k) =>
        (0.299f * image[k]) + (0.587f * image[plane + k]) + (0.114f * image[(2 * plane) + k]);
}
