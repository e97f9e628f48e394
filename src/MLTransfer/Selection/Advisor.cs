using System.Diagnostics;
using System.Globalization;
using MLTransfer.Backbones;
using MLTransfer.Data;
using MLTransfer.Featurization;

namespace MLTransfer.Selection;

/// <summary>
/// Chooses a feature source before any head is trained: scores the pooled outputs of several backbone stages × image sizes ×
/// backbones with LogME (<see cref="LogMe"/>, You et al. 2021) and a k-NN leave-one-out accuracy
/// (<see cref="NearestNeighbors"/>) on the same frozen features, and ranks them by LogME.
/// </summary>
/// <remarks>
/// All the layers of one backbone are read in one backbone pass per image and size (<see cref="FeaturizerOptions.Layers"/>),
/// and each layer's features go to the bottleneck cache on their own, so training the winner afterwards (feature extraction
/// with <see cref="FeaturizerOptions.Layers"/> and <see cref="FeaturizerOptions.ImageSize"/>) finds them again, and a killed run
/// picks up where it stopped. Large folders are scored on a stratified sample (<see cref="AdviseOptions.MaxImages"/>), so time
/// and memory do not grow with the folder.
/// </remarks>
public static class Advisor
{
    /// <summary>Scores every candidate on labelled images and ranks them.</summary>
    /// <param name="examples">The labelled images (at least 2 classes).</param>
    /// <param name="options">Options; null means the defaults.</param>
    /// <param name="cancellationToken">Cancels the run.</param>
    /// <exception cref="ArgumentException">No candidates, an unknown layer, or an image size a backbone refuses.</exception>
    /// <exception cref="InvalidDataException">Fewer than 2 classes have readable images.</exception>
    public static Advice Advise(IReadOnlyList<ImageExample> examples, AdviseOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(examples);
        options ??= new AdviseOptions();
        var clock = Stopwatch.StartNew();
        var backbones = options.Backbones is { Count: > 0 } given ? given : [Backbone.ResNet18()];
        if (options.ImageSizes is not { Count: > 0 })
            throw new ArgumentException("Give at least one image size.", nameof(options));
        var sizes = options.ImageSizes.Distinct().ToList();
        var plans = backbones.Select(b => (Backbone: b, Layers: LayersOf(b, options))).ToList();
        foreach (var (backbone, _) in plans)
            foreach (var size in sizes)
                FeaturizerGraph.CheckImageSize(backbone, size);

        var sample = Sample(examples, options.MaxImages, options.Seed);
        var paths = sample.Select(e => e.ImagePath).ToList();
        var rejected = new List<RejectedImage>();
        var candidates = new List<AdviceCandidate>();
        var kept = Enumerable.Range(0, sample.Count).ToList();
        int[]? labels = null;
        foreach (var (backbone, layers) in plans)
            foreach (var size in sizes)
            {
                cancellationToken.ThrowIfCancellationRequested();
                options.Log?.Invoke(string.Create(CultureInfo.InvariantCulture,
                    $"{backbone.Name} at {size} px: featurising {kept.Count} images ({(layers is null ? "output" : string.Join(", ", layers))})"));
                var pass = Stopwatch.StartNew();
                var engine = options.Engine.Clone();
                engine.ImageSize = size;
                engine.Layers = layers;
                using var featurizer = new OnnxImageFeaturizer(backbone, engine);
                var result = featurizer.Featurize(kept.Select(i => paths[i]).ToList(), options.Progress, cancellationToken);
                if (result.Failed.Count > 0)
                {
                    if (candidates.Count > 0)
                        options.Log?.Invoke($"{result.Failed.Count} images could not be read at {size} px though they were before; scored without them");
                    rejected.AddRange(result.Failed);
                    var failed = result.Failed.Select(f => f.Path).ToHashSet();
                    kept = kept.Where(i => !failed.Contains(paths[i])).ToList();
                }
                var features = result.Features.Where(f => f is not null).Select(f => f!).ToList();
                labels = LabelIndices(kept.Select(i => sample[i].Label).ToList());
                var share = pass.Elapsed.TotalSeconds / featurizer.Layers.Count;
                foreach (var layer in featurizer.Layers)
                {
                    var scoring = Stopwatch.StartNew();
                    var layerFeatures = features.Select(layer.Slice).ToList();
                    var logMe = LogMe.Score(layerFeatures, labels);
                    var knn = NearestNeighbors.LeaveOneOutAccuracy(layerFeatures, labels, options.Neighbors);
                    candidates.Add(new AdviceCandidate(0, backbone, layer.Name, size, layer.Length, logMe, knn, share + scoring.Elapsed.TotalSeconds));
                    options.Log?.Invoke(string.Create(CultureInfo.InvariantCulture,
                        $"{backbone.Name} {layer.Name} {size} px: LogME {logMe:F4}, k-NN {knn:P1}"));
                }
            }
        var ranked = candidates
            .OrderByDescending(c => c.LogMe).ThenByDescending(c => c.KnnAccuracy).ThenBy(c => c.ImageSize)
            .Select((c, i) => c with { Rank = i + 1 })
            .ToList();
        return new Advice(ranked, kept.Count, labels!.Distinct().Count(), rejected, clock.Elapsed.TotalSeconds);
    }

    /// <summary>The layers scored for a backbone: the options' names, else its last stages; null for its output alone.</summary>
    private static IReadOnlyList<string>? LayersOf(Backbone backbone, AdviseOptions options)
    {
        if (options.Layers is { Count: > 0 } named)
        {
            BackboneStages.Resolve(backbone, named);
            return named;
        }
        var stages = BackboneStages.Of(backbone);
        return stages.Count == 0 ? null : stages.TakeLast(Math.Max(1, options.DefaultLayerCount)).Select(s => s.Name).ToList();
    }

    /// <summary>A stratified, seeded sample of at most <paramref name="maxImages"/> images (all of them when 0 or fewer).</summary>
    /// <param name="examples">The labelled images.</param>
    /// <param name="maxImages">Most images kept.</param>
    /// <param name="seed">Seed of the sample.</param>
    public static IReadOnlyList<ImageExample> Sample(IReadOnlyList<ImageExample> examples, int maxImages, int seed)
    {
        ArgumentNullException.ThrowIfNull(examples);
        if (maxImages <= 0 || examples.Count <= maxImages)
            return examples;
        return ImageFolder.StratifiedSplit(examples, (double)maxImages / examples.Count, seed).Validation;
    }

    private static int[] LabelIndices(IReadOnlyList<string> labels)
    {
        var classes = labels.Distinct().Order(StringComparer.Ordinal).ToList();
        if (classes.Count < 2)
            throw new InvalidDataException($"Advice needs readable images of at least 2 classes; found {classes.Count}.");
        var index = classes.Select((c, i) => (c, i)).ToDictionary(p => p.c, p => p.i, StringComparer.Ordinal);
        return labels.Select(l => index[l]).ToArray();
    }
}
