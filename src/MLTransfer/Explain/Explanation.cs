namespace MLTransfer.Explain;

/// <summary>Where one class's score comes from in one image: a coarse grid of values, upsampled bilinearly to the image.</summary>
public sealed class ClassMap
{
    /// <summary>Creates a map.</summary>
    /// <param name="className">The class explained.</param>
    /// <param name="classIndex">Its index in the model's score order.</param>
    /// <param name="probability">The model's probability of the class for the image.</param>
    /// <param name="width">Grid columns.</param>
    /// <param name="height">Grid rows.</param>
    /// <param name="values">Grid values, row-major, <paramref name="width"/> × <paramref name="height"/>.</param>
    public ClassMap(string className, int classIndex, float probability, int width, int height, float[] values)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (width < 1 || height < 1 || values.Length != width * height)
            throw new ArgumentException($"A {width}×{height} map needs {width * height} values, got {values.Length}.", nameof(values));
        Class = className;
        ClassIndex = classIndex;
        Probability = probability;
        Width = width;
        Height = height;
        Values = values;
    }

    /// <summary>The class explained.</summary>
    public string Class { get; }

    /// <summary>The class's index in the model's score order.</summary>
    public int ClassIndex { get; }

    /// <summary>The model's probability of the class for the image.</summary>
    public float Probability { get; }

    /// <summary>Grid columns (7 for ResNet18's class-activation maps at 224 px).</summary>
    public int Width { get; }

    /// <summary>Grid rows.</summary>
    public int Height { get; }

    /// <summary>
    /// The raw grid, row-major: for class-activation maps the class logit's contribution of each position (their mean is
    /// the logit), for occlusion the drop of the class probability when the position is covered.
    /// </summary>
    public float[] Values { get; }

    /// <summary>The map upsampled bilinearly (cell centres at the centres of the image's cells) to a square image, row-major.</summary>
    /// <param name="size">Side of the square image in pixels.</param>
    public float[] Upsample(int size) => Upsample(Values, Width, Height, size);

    internal static float[] Upsample(float[] grid, int width, int height, int size)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 1);
        var result = new float[size * size];
        var (x0, x1, wx) = Taps(width, size);
        var (y0, y1, wy) = Taps(height, size);
        for (var y = 0; y < size; y++)
        {
            var top = y0[y] * width;
            var bottom = y1[y] * width;
            for (var x = 0; x < size; x++)
            {
                var upper = grid[top + x0[x]] * (1 - wx[x]) + grid[top + x1[x]] * wx[x];
                var lower = grid[bottom + x0[x]] * (1 - wx[x]) + grid[bottom + x1[x]] * wx[x];
                result[y * size + x] = upper * (1 - wy[y]) + lower * wy[y];
            }
        }
        return result;
    }

    private static (int[] Low, int[] High, float[] Weight) Taps(int cells, int size)
    {
        var low = new int[size];
        var high = new int[size];
        var weight = new float[size];
        for (var i = 0; i < size; i++)
        {
            var position = Math.Clamp((i + 0.5) * cells / size - 0.5, 0, cells - 1);
            low[i] = (int)Math.Floor(position);
            high[i] = Math.Min(low[i] + 1, cells - 1);
            weight[i] = (float)(position - low[i]);
        }
        return (low, high, weight);
    }
}

/// <summary>The explanation of one image: the model's prediction and one map per explained class.</summary>
public sealed class Explanation
{
    /// <summary>The image file.</summary>
    public required string ImagePath { get; init; }

    /// <summary>How the maps were computed.</summary>
    public required ExplanationMethod Method { get; init; }

    /// <summary>Class names in score order.</summary>
    public required IReadOnlyList<string> Classes { get; init; }

    /// <summary>The model's probabilities for the image, in class order (its ML.NET head on its own backbone graph).</summary>
    public required float[] Probabilities { get; init; }

    /// <summary>The most probable class.</summary>
    public string PredictedLabel => Classes[Array.IndexOf(Probabilities, Probabilities.Max())];

    /// <summary>The maps, one per explained class.</summary>
    public required IReadOnlyList<ClassMap> Maps { get; init; }

    /// <summary>Side of the square image the model sees, in pixels.</summary>
    public required int ImageSize { get; init; }

    /// <summary>The image as the model sees it (decoded, centre-cropped, resized): planar RGB, 0–255, 3 × <see cref="ImageSize"/>².</summary>
    public required float[] Pixels { get; init; }

    /// <summary>
    /// Class-activation maps: the largest difference between the model's probabilities and the softmax of the maps' spatial
    /// means over all classes (zero up to float rounding when the maps are exact). NaN for occlusion.
    /// </summary>
    public double ReconstructionError { get; init; } = double.NaN;
}

/// <summary>One image of <see cref="ImageExplainer.ExplainAll"/>: its explanation, or why it could not be read.</summary>
/// <param name="ImagePath">The image file.</param>
/// <param name="Explanation">The explanation; null when the image could not be used.</param>
/// <param name="Problem">Why the image could not be used; null on success.</param>
public sealed record ExplanationOutcome(string ImagePath, Explanation? Explanation, string? Problem);
