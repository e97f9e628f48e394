using MLTransfer.Backbones;
using MLTransfer.Cluster.Jobs;
using MLTransfer.Data;
using MLTransfer.Featurization;

namespace MLTransfer.Cluster.Output;

/// <summary>
/// A featurised output folder read back for training: its labelled images in the order <see cref="ImageFolder"/> lists a
/// class folder (class, then path, ordinal), and a featuriser that serves their stored features. Training on them with
/// the same split and seed gives the model that training on the image folder gives.
/// </summary>
public sealed class FeatureParts
{
    private FeatureParts(JobManifest manifest, Backbone backbone, IReadOnlyList<ImageExample> examples, PrecomputedFeaturizer featurizer, int excluded)
    {
        Manifest = manifest;
        Backbone = backbone;
        Examples = examples;
        Featurizer = featurizer;
        ExcludedRejected = excluded;
    }

    /// <summary>The job that wrote the parts.</summary>
    public JobManifest Manifest { get; }

    /// <summary>The backbone the features belong to.</summary>
    public Backbone Backbone { get; }

    /// <summary>The labelled images, ordered by class then path.</summary>
    public IReadOnlyList<ImageExample> Examples { get; }

    /// <summary>Serves the stored features (and the stored reasons of rejected images).</summary>
    public PrecomputedFeaturizer Featurizer { get; }

    /// <summary>Rejected rows left out before the split because the file itself is unreadable (as loading the image folder leaves them out).</summary>
    public int ExcludedRejected { get; }

    /// <summary>Reads a featurisation job's output folder.</summary>
    /// <param name="outputDirectory">The folder written by a featurize job.</param>
    /// <exception cref="InvalidDataException">The folder is not a complete featurisation output with labels, or the backbone's files changed.</exception>
    public static FeatureParts Load(string outputDirectory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(outputDirectory);
        var folder = Path.GetFullPath(outputDirectory);
        if (!Directory.Exists(folder))
            throw new DirectoryNotFoundException($"Features folder '{folder}' does not exist.");
        var manifest = JobManifest.Read(folder)
            ?? throw new InvalidDataException($"'{folder}' has no {JobManifest.FileName}: it is not the output of 'mltransfer featurize --redis'.");
        if (manifest.Kind != JobKind.Featurize)
            throw new InvalidDataException($"'{folder}' holds predictions, not features.");
        var missing = Enumerable.Range(0, manifest.Shards).Count(s => !File.Exists(ShardKeys.Part(folder, s)));
        if (missing > 0)
            throw new InvalidDataException($"'{folder}' lacks {missing} of its {manifest.Shards} parts: the job has not completed (rerun the featurize command to resume it).");
        var backbone = Backbone.Resolve(manifest.Backbone);
        if (backbone.Identity != manifest.BackboneIdentity)
            throw new InvalidDataException($"The features in '{folder}' were computed with another '{manifest.Backbone}' backbone ({manifest.BackboneIdentity}); this one is {backbone.Identity}.");

        var features = new Dictionary<string, float[]>(StringComparer.Ordinal);
        var rejected = new Dictionary<string, string>(StringComparer.Ordinal);
        var examples = new List<ImageExample>();
        var excluded = 0;
        foreach (var row in PartFiles.ReadAll<FeaturePartRow>(folder))
        {
            if (string.IsNullOrEmpty(row.Label))
                throw new InvalidDataException($"'{row.Path}' in '{folder}' has no label: featurise a folder with one sub-folder per class to train on it.");
            if (row.Features is { } vector)
            {
                if (vector.Length != manifest.FeatureSize)
                    throw new InvalidDataException($"'{row.Path}' has {vector.Length} features; {manifest.FeatureSize} were expected.");
                features[row.Path] = vector;
            }
            else
            {
                // Loading the image folder drops unreadable files before the split; an image the engine alone rejected stays in it.
                if (ImageFileCheck.Problem(row.Path) is not null)
                {
                    excluded++;
                    continue;
                }
                rejected[row.Path] = row.Error ?? "could not be featurised";
            }
            examples.Add(new ImageExample { ImagePath = row.Path, Label = row.Label });
        }
        if (examples.Count == 0)
            throw new InvalidDataException($"'{folder}' has no featurised images.");
        var ordered = examples.OrderBy(e => e.Label, StringComparer.Ordinal).ThenBy(e => e.ImagePath, StringComparer.Ordinal).ToList();
        var featurizer = new PrecomputedFeaturizer(backbone, manifest.ImageSize, features, rejected);
        return new FeatureParts(manifest, backbone, ordered, featurizer, excluded);
    }
}

/// <summary>An <see cref="IImageFeaturizer"/> that serves stored features by image path instead of running the backbone.</summary>
public sealed class PrecomputedFeaturizer : IImageFeaturizer
{
    private readonly IReadOnlyDictionary<string, float[]> _features;
    private readonly IReadOnlyDictionary<string, string> _rejected;

    /// <summary>Creates the featuriser.</summary>
    /// <param name="backbone">The backbone the features belong to.</param>
    /// <param name="imageSize">The image size they were computed at.</param>
    /// <param name="features">Features by image path.</param>
    /// <param name="rejected">Why images without features were rejected, by path.</param>
    public PrecomputedFeaturizer(Backbone backbone, int imageSize, IReadOnlyDictionary<string, float[]> features, IReadOnlyDictionary<string, string> rejected)
    {
        ArgumentNullException.ThrowIfNull(backbone);
        Backbone = backbone;
        ImageSize = imageSize;
        FeatureSize = backbone.FeatureSize;
        GraphPath = FeaturizerGraph.Materialize(backbone, imageSize);
        _features = features;
        _rejected = rejected;
    }

    /// <inheritdoc />
    public Backbone Backbone { get; }

    /// <inheritdoc />
    public int ImageSize { get; }

    /// <inheritdoc />
    public int FeatureSize { get; }

    /// <inheritdoc />
    public string GraphPath { get; }

    /// <inheritdoc />
    public FeaturizationResult Featurize(IReadOnlyList<string> imagePaths, IProgress<FeaturizationProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(imagePaths);
        var vectors = new float[]?[imagePaths.Count];
        var failed = new List<RejectedImage>();
        for (var i = 0; i < imagePaths.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (_features.TryGetValue(imagePaths[i], out var vector))
                vectors[i] = vector;
            else
                failed.Add(new RejectedImage(imagePaths[i], _rejected.TryGetValue(imagePaths[i], out var reason) ? reason : "not in the featurised parts"));
        }
        progress?.Report(new FeaturizationProgress(imagePaths.Count, imagePaths.Count, imagePaths.Count - failed.Count));
        return new FeaturizationResult(vectors, failed, imagePaths.Count - failed.Count);
    }

    /// <inheritdoc />
    public void Dispose()
    {
    }
}
