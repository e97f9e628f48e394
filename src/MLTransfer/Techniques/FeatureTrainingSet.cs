using MLTransfer.Data;
using MLTransfer.Featurization;

namespace MLTransfer.Techniques;

/// <summary>Featurised, labelled images ready for head training: what techniques on frozen features share.</summary>
public sealed class FeatureTrainingSet
{
    private FeatureTrainingSet(IReadOnlyList<ImageExample> examples, float[][] features, IReadOnlyList<RejectedImage> rejected, int fromCache)
    {
        Examples = examples;
        Features = features;
        Rejected = rejected;
        FromCache = fromCache;
    }

    /// <summary>The images that featurised, in input order.</summary>
    public IReadOnlyList<ImageExample> Examples { get; }

    /// <summary>One feature vector per example.</summary>
    public float[][] Features { get; }

    /// <summary>Images that could not be featurised.</summary>
    public IReadOnlyList<RejectedImage> Rejected { get; }

    /// <summary>Vectors served from the bottleneck cache.</summary>
    public int FromCache { get; }

    /// <summary>
    /// The classes of a training set in ordinal order, checking there are at least two and that the validation set
    /// (if any) has no class the training set lacks.
    /// </summary>
    /// <param name="train">The training set.</param>
    /// <param name="validation">The validation set, or null.</param>
    public static string[] Classes(FeatureTrainingSet train, FeatureTrainingSet? validation)
    {
        ArgumentNullException.ThrowIfNull(train);
        var classes = train.Examples.Select(e => e.Label).Distinct().OrderBy(c => c, StringComparer.Ordinal).ToArray();
        if (classes.Length < 2)
            throw new InvalidDataException($"Training needs at least 2 classes with readable images; found {classes.Length}.");
        if (validation is not null)
            Evaluation.ModelEvaluator.CheckLabels(classes, validation.Examples.Select(e => e.Label));
        return classes;
    }

    /// <summary>Class index of each example.</summary>
    /// <param name="classes">Class names.</param>
    public int[] LabelIndices(IReadOnlyList<string> classes)
    {
        var index = classes.Select((c, i) => (c, i)).ToDictionary(p => p.c, p => p.i, StringComparer.Ordinal);
        return Examples.Select(e => index.TryGetValue(e.Label, out var i) ? i
            : throw new InvalidDataException($"Label '{e.Label}' of '{e.ImagePath}' is not one of the classes '{string.Join("', '", classes)}'.")).ToArray();
    }

    /// <summary>Featurises examples, dropping (and reporting) the ones that fail, or throwing in strict mode.</summary>
    /// <param name="featurizer">The featuriser.</param>
    /// <param name="examples">The images.</param>
    /// <param name="strict">Throw on the first failed image.</param>
    /// <param name="progress">Progress receiver; may be null.</param>
    /// <param name="cancellationToken">Cancels the run.</param>
    public static FeatureTrainingSet Create(IImageFeaturizer featurizer, IReadOnlyList<ImageExample> examples, bool strict,
        IProgress<FeaturizationProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(featurizer);
        var result = featurizer.Featurize(examples.Select(e => e.ImagePath).ToList(), progress, cancellationToken);
        if (strict && result.Failed.Count > 0)
            throw new InvalidDataException($"Unreadable image '{result.Failed[0].Path}': {result.Failed[0].Reason} (strict mode).");
        var kept = new List<ImageExample>();
        var features = new List<float[]>();
        for (var i = 0; i < examples.Count; i++)
            if (result.Features[i] is { } f)
            {
                kept.Add(examples[i]);
                features.Add(f);
            }
        return new FeatureTrainingSet(kept, features.ToArray(), result.Failed, result.FromCache);
    }
}
