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
    /// (one value per pixel, row-major) filled with the image's mean colour; ties are broken by pixel order.
    /// </summary>
    public static float[] DeleteTop(float[] pixels, int size, float[] ranking, double fraction)
    {
        var plane = size * size;
        var count = (int)Math.Round(plane * fraction);
        var order = Enumerable.Range(0, plane).ToArray();
        Array.Sort(ranking.ToArray(), order, Comparer<float>.Create((a, b) => b.CompareTo(a)));
        var colour = MeanColour(pixels, size);
        var copy = (float[])pixels.Clone();
        for (var i = 0; i < count; i++)
            for (var c = 0; c < 3; c++)
                copy[c * plane + order[i]] = colour[c];
        return copy;
    }
}
