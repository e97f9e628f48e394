using MLTransfer.Data;

namespace MLTransfer.Explain;

/// <summary>What deleted pixels are replaced with in <see cref="Faithfulness.Measure"/>.</summary>
public enum DeletionFill
{
    /// <summary>
    /// The same pixels of a strongly blurred copy of the image (box filter ×3, σ ≈ 1/16 of the side): removes detail without
    /// adding the sharp-edged patches a flat fill leaves, which networks react to whatever their place.
    /// </summary>
    Blur,

    /// <summary>The image's mean colour.</summary>
    MeanColour,
}

/// <summary>The result of <see cref="Faithfulness.Measure"/>: mean probability drops of the predicted class.</summary>
/// <param name="Images">Images measured.</param>
/// <param name="Fraction">Share of each image's pixels deleted.</param>
/// <param name="MeanProbability">Mean probability of the predicted class on the intact images.</param>
/// <param name="SalientDrop">Mean drop when the most salient pixels are deleted.</param>
/// <param name="RandomDrop">Mean drop when as many pixels chosen by a random map are deleted.</param>
/// <param name="ShiftedDrop">Mean drop when the salient region, moved by a random circular shift (same shape, another place), is deleted.</param>
/// <param name="SalientLarger">Share of images whose salient drop exceeds their random drop.</param>
/// <param name="Accuracy">Share of images whose predicted class is their label (NaN when unlabelled).</param>
/// <param name="Skipped">Unreadable images.</param>
/// <param name="Method">The explanation method measured.</param>
/// <param name="Fill">What deleted pixels were replaced with.</param>
/// <param name="Seconds">Wall time.</param>
public sealed record FaithfulnessResult(int Images, double Fraction, double MeanProbability, double SalientDrop, double RandomDrop, double ShiftedDrop,
    double SalientLarger, double Accuracy, int Skipped, ExplanationMethod Method, DeletionFill Fill, double Seconds);

/// <summary>
/// Measures whether heat maps point at what the model uses (a deletion test in the spirit of Samek et al. 2017 and
/// Petsiuk et al. 2018): for each image, the predicted class's map ranks the pixels, the top
/// <c>fraction</c> are deleted (replaced by a blurred copy of the image, or its mean colour), and the drop of the predicted class's probability is compared
/// with the drop when the same number of pixels is deleted according to a random map of the same resolution, upsampled
/// the same way (so both deletions remove blobs of the same size; only their place differs). A second control deletes the
/// salient region itself moved by a random circular shift of at least a quarter of the side: the same shape elsewhere.
/// </summary>
public static class Faithfulness
{
    /// <summary>Runs the deletion test over images (streaming: memory does not grow with their number).</summary>
    /// <param name="explainer">The explainer of the model; the first map of each image is tested (the predicted class's, unless the explainer names a class).</param>
    /// <param name="images">Images; labels are optional and only used for the accuracy.</param>
    /// <param name="fraction">Share of pixels deleted. The default value is 0.2.</param>
    /// <param name="seed">Seed of the random maps. The default value is 0.</param>
    /// <param name="progress">Receives the number of images done; may be null.</param>
    /// <param name="fill">What deleted pixels are replaced with. The default value is <see cref="DeletionFill.Blur"/>.</param>
    public static FaithfulnessResult Measure(ImageExplainer explainer, IReadOnlyList<ImageExample> images, double fraction = 0.2, int seed = 0,
        IProgress<int>? progress = null, DeletionFill fill = DeletionFill.Blur)
    {
        ArgumentNullException.ThrowIfNull(explainer);
        ArgumentNullException.ThrowIfNull(images);
        if (fraction is <= 0 or >= 1)
            throw new ArgumentOutOfRangeException(nameof(fraction), fraction, "The deleted fraction must be between 0 and 1 (exclusive).");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var labels = images.GroupBy(e => e.ImagePath, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First().Label, StringComparer.Ordinal);
        var random = new Random(seed);
        double probability = 0, salientDrop = 0, randomDrop = 0, shiftedDrop = 0;
        int count = 0, larger = 0, correct = 0, labelled = 0, skipped = 0;
        foreach (var outcome in explainer.ExplainAll(images.Select(e => e.ImagePath)))
        {
            if (outcome.Explanation is not { } e)
            {
                skipped++;
                continue;
            }
            var map = e.Maps[0];
            var size = e.ImageSize;
            var noise = Enumerable.Range(0, map.Width * map.Height).Select(_ => (float)random.NextDouble()).ToArray();
            var replacement = fill == DeletionFill.Blur ? PixelDeletion.Blurred(e.Pixels, size, Math.Max(1, size / 16)) : PixelDeletion.MeanImage(e.Pixels, size);
            var ranking = map.Upsample(size);
            var salient = PixelDeletion.DeleteTop(e.Pixels, size, ranking, fraction, replacement);
            var randomly = PixelDeletion.DeleteTop(e.Pixels, size, ClassMap.Upsample(noise, map.Width, map.Height, size), fraction, replacement);
            var shifted = PixelDeletion.DeleteTop(e.Pixels, size, Shift(ranking, size, random), fraction, replacement);
            var scores = explainer.Probabilities([salient, randomly, shifted]);
            var p = e.Probabilities[map.ClassIndex];
            var ds = p - scores[0][map.ClassIndex];
            var dr = p - scores[1][map.ClassIndex];
            probability += p;
            salientDrop += ds;
            randomDrop += dr;
            shiftedDrop += p - scores[2][map.ClassIndex];
            larger += ds > dr ? 1 : 0;
            count++;
            if (labels.TryGetValue(e.ImagePath, out var label) && label.Length > 0)
            {
                labelled++;
                correct += label == e.PredictedLabel ? 1 : 0;
            }
            progress?.Report(count + skipped);
        }
        if (count == 0)
            throw new InvalidDataException("No image could be read for the faithfulness test.");
        return new FaithfulnessResult(count, fraction, probability / count, salientDrop / count, randomDrop / count, shiftedDrop / count, (double)larger / count,
            labelled == 0 ? double.NaN : (double)correct / labelled, skipped, explainer.Method, fill, clock.Elapsed.TotalSeconds);
    }

    // The ranking moved by (dx, dy), each between a quarter and three quarters of the side, wrapping around the edges.
    private static float[] Shift(float[] ranking, int size, Random random)
    {
        var dx = random.Next(size / 4, 3 * size / 4 + 1);
        var dy = random.Next(size / 4, 3 * size / 4 + 1);
        var shifted = new float[ranking.Length];
        for (var y = 0; y < size; y++)
            for (var x = 0; x < size; x++)
                shifted[(y + dy) % size * size + (x + dx) % size] = ranking[y * size + x];
        return shifted;
    }
}
