namespace MLTransfer.Torch.FineTuning;

/// <summary>
/// Random augmentation of RGB planar images in 0–255 (random resized crop, horizontal flip, colour jitter), in plain
/// C# so it can run on a worker thread while libtorch trains. All randomness comes from the <see cref="Random"/>
/// passed in, so a seeded run repeats exactly.
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

    /// <summary>True when <see cref="Augment"/> changes anything.</summary>
    public bool IsIdentity => _minScale >= 1 && !_flip && _jitter <= 0;

    /// <summary>Writes an augmented copy of <paramref name="source"/> (3·size·size) into <paramref name="target"/>.</summary>
    public void Augment(float[] source, Span<float> target, Random random)
    {
        int s = _size;
        int plane = s * s;

        // Random resized crop (Szegedy et al. 2015 "Going deeper with convolutions"; torchvision's parameters).
        double x0 = 0, y0 = 0, w = s, h = s;
        if (_minScale < 1)
        {
            for (int attempt = 0; attempt < 10; attempt++)
            {
                double area = plane * (_minScale + (random.NextDouble() * (_maxScale - _minScale)));
                double ratio = Math.Exp(MinLogRatio + (random.NextDouble() * (MaxLogRatio - MinLogRatio)));
                double cw = Math.Sqrt(area * ratio);
                double ch = Math.Sqrt(area / ratio);
                if (cw <= s && ch <= s)
                {
                    w = cw;
                    h = ch;
                    x0 = random.NextDouble() * (s - cw);
                    y0 = random.NextDouble() * (s - ch);
                    break;
                }
            }
        }

        bool flip = _flip && random.NextDouble() < 0.5;
        double brightness = 1, contrast = 1, saturation = 1;
        if (_jitter > 0)
        {
            brightness = 1 + (((random.NextDouble() * 2) - 1) * _jitter);
            contrast = 1 + (((random.NextDouble() * 2) - 1) * _jitter);
            saturation = 1 + (((random.NextDouble() * 2) - 1) * _jitter);
        }

        // Bilinear resampling of the crop back to size × size, mirrored when flipping.
        double sx = w / s;
        double sy = h / s;
        for (int i = 0; i < s; i++)
        {
            double fy = Math.Clamp(y0 + ((i + 0.5) * sy) - 0.5, 0, s - 1);
            int iy = (int)fy;
            int iy1 = Math.Min(iy + 1, s - 1);
            float ty = (float)(fy - iy);
            for (int j = 0; j < s; j++)
            {
                int col = flip ? s - 1 - j : j;
                double fx = Math.Clamp(x0 + ((col + 0.5) * sx) - 0.5, 0, s - 1);
                int ix = (int)fx;
                int ix1 = Math.Min(ix + 1, s - 1);
                float tx = (float)(fx - ix);
                for (int c = 0; c < 3; c++)
                {
                    int p = c * plane;
                    float top = source[p + (iy * s) + ix] + ((source[p + (iy * s) + ix1] - source[p + (iy * s) + ix]) * tx);
                    float bottom = source[p + (iy1 * s) + ix] + ((source[p + (iy1 * s) + ix1] - source[p + (iy1 * s) + ix]) * tx);
                    target[p + (i * s) + j] = top + ((bottom - top) * ty);
                }
            }
        }

        if (_jitter > 0)
        {
            Jitter(target, plane, (float)brightness, (float)contrast, (float)saturation);
        }
    }

    private static void Jitter(Span<float> image, int plane, float brightness, float contrast, float saturation)
    {
        double graySum = 0;
        for (int k = 0; k < plane; k++)
        {
            graySum += Gray(image, plane, k) * brightness;
        }

        float grayMean = (float)(graySum / plane);
        for (int k = 0; k < plane; k++)
        {
            float r = image[k] * brightness;
            float g = image[plane + k] * brightness;
            float b = image[(2 * plane) + k] * brightness;
            r = grayMean + ((r - grayMean) * contrast);
            g = grayMean + ((g - grayMean) * contrast);
            b = grayMean + ((b - grayMean) * contrast);
            float gray = (0.299f * r) + (0.587f * g) + (0.114f * b);
            image[k] = Math.Clamp(gray + ((r - gray) * saturation), 0f, 255f);
            image[plane + k] = Math.Clamp(gray + ((g - gray) * saturation), 0f, 255f);
            image[(2 * plane) + k] = Math.Clamp(gray + ((b - gray) * saturation), 0f, 255f);
        }
    }

    private static float Gray(Span<float> image, int plane, int k) =>
        (0.299f * image[k]) + (0.587f * image[plane + k]) + (0.114f * image[(2 * plane) + k]);
}
