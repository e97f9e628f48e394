namespace MLTransfer.Explain;

/// <summary>Deleting parts of a model-input image (planar RGB, 0–255) by filling them with the image's mean colour.</summary>
internal static class PixelDeletion
{
    /// <summary>The mean of each colour plane.</summary>
    public static float[] MeanColour(float[] pixels, int size)
    {
        var plane = size * size;
        var mean = new float[3];
        for (var c = 0; c < 3; c++)
        {
            double sum = 0;
            for (var i = 0; i < plane; i++)
                sum += pixels[c * plane + i];
            mean[c] = (float)(sum / plane);
        }
        return mean;
    }

    /// <summary>Fills the rectangle [x0, x1) × [y0, y1) with a colour, in place.</summary>
    public static void FillRectangle(float[] pixels, int size, float[] colour, int x0, int y0, int x1, int y1)
    {
        var plane = size * size;
        for (var c = 0; c < 3; c++)
            for (var y = y0; y < y1; y++)
                pixels.AsSpan(c * plane + y * size + x0, x1 - x0).Fill(colour[c]);
    }

    /// <summary>
    /// A copy of the image with the <paramref name="fraction"/> of pixels ranked highest by <paramref name="ranking"/>
    /// (one value per pixel, row-major) replaced by the same pixels of <paramref name="replacement"/> (same layout as the
    /// image); ties are broken by pixel order.
    /// </summary>
    public static float[] DeleteTop(float[] pixels, int size, float[] ranking, double fraction, float[] replacement)
    {
        var plane = size * size;
        var count = (int)Math.Round(plane * fraction);
        var order = Enumerable.Range(0, plane).ToArray();
        Array.Sort(ranking.ToArray(), order, Comparer<float>.Create((a, b) => b.CompareTo(a)));
        var copy = (float[])pixels.Clone();
        for (var i = 0; i < count; i++)
            for (var c = 0; c < 3; c++)
                copy[c * plane + order[i]] = replacement[c * plane + order[i]];
        return copy;
    }

    /// <summary>The image filled with its mean colour.</summary>
    public static float[] MeanImage(float[] pixels, int size)
    {
        var plane = size * size;
        var colour = MeanColour(pixels, size);
        var result = new float[3 * plane];
        for (var c = 0; c < 3; c++)
            result.AsSpan(c * plane, plane).Fill(colour[c]);
        return result;
    }

    /// <summary>The image blurred by three passes of a (2r+1)-pixel box filter per axis (close to a Gaussian of σ ≈ r), edges clamped.</summary>
    public static float[] Blurred(float[] pixels, int size, int radius)
    {
        var plane = size * size;
        var result = (float[])pixels.Clone();
        var line = new float[size];
        for (var c = 0; c < 3; c++)
        {
            var channel = result.AsSpan(c * plane, plane);
            for (var pass = 0; pass < 3; pass++)
            {
                for (var y = 0; y < size; y++)
                    BoxLine(channel, y * size, 1, size, radius, line);
                for (var x = 0; x < size; x++)
                    BoxLine(channel, x, size, size, radius, line);
            }
        }
        return result;
    }

    private static void BoxLine(Span<float> values, int start, int step, int length, int radius, float[] line)
    {
        for (var i = 0; i < length; i++)
            line[i] = values[start + i * step];
        double sum = 0;
        for (var i = -radius; i <= radius; i++)
            sum += line[Math.Clamp(i, 0, length - 1)];
        var width = 2 * radius + 1;
        for (var i = 0; i < length; i++)
        {
            values[start + i * step] = (float)(sum / width);
            sum += line[Math.Min(i + radius + 1, length - 1)] - line[Math.Max(i - radius, 0)];
        }
    }
}
