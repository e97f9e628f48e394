using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using MLTransfer.Backbones;
using MLTransfer.Export;
using MLTransfer.Featurization;
using MLTransfer.Heads;
using MLTransfer.Techniques;

namespace MLTransfer.Explain;

/// <summary>
/// Explains the predictions of an MLTransfer image classifier (a saved <c>.zip</c> or a <see cref="TransferModel"/>):
/// for each image, a heat map per class of where that class's score comes from. It runs the model's own ONNX graph
/// (fine-tuned or domain-adapted weights included) with its last convolutional map as an extra output, and the model's
/// own ML.NET head, so the probabilities it reports are the model's; the exported model is not changed.
/// </summary>
/// <remarks>
/// <list type="table">
/// <item><term><see cref="ExplanationMethod.ClassActivationMap"/></term><description>chosen when the head is a softmax over
/// an affine function of globally pooled features (L-BFGS/SDCA maximum entropy, the image-classification head, fine-tuned
/// heads, CORAL's folded map). Exact: the maps' spatial means are the class logits, checked for every image
/// (<see cref="Explanation.ReconstructionError"/>). One backbone pass per image.</description></item>
/// <item><term><see cref="ExplanationMethod.Occlusion"/></term><description>any other head (LightGBM, a ReLU bottleneck):
/// (<see cref="ExplainerOptions.OcclusionGrid"/> − 1)² occluded copies per image, batched through one ONNX Runtime session
/// and scored by the model's head.</description></item>
/// </list>
/// Memory does not grow with the number of images: <see cref="ExplainAll"/> streams one batch at a time.
/// </remarks>
public sealed class ImageExplainer : IDisposable
{
    private readonly MLContext _mlContext;
    private readonly ExplainerOptions _options;
    private readonly ModelParts _parts;
    private readonly PoolingSite? _site;
    private readonly LinearHead? _linear;
    private readonly InferenceSession _session;
    private readonly InferenceSession? _afterPooling;
    private readonly string[] _outputs;
    private readonly int _plane;

    /// <summary>Creates an explainer for a trained or loaded model.</summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="model">An MLTransfer image classifier (<c>ImagePath</c> in, <c>Score</c> out).</param>
    /// <param name="options">Options; null means the defaults.</param>
    /// <exception cref="InvalidDataException">The model is not an MLTransfer image classifier.</exception>
    /// <exception cref="ArgumentException">The options ask for a class the model does not have, or for class-activation maps on a head that has none.</exception>
    public ImageExplainer(MLContext mlContext, ITransformer model, ExplainerOptions? options = null)
    {
        _mlContext = mlContext ?? throw new ArgumentNullException(nameof(mlContext));
        _options = options ?? new ExplainerOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(_options.Top, 1, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThan(_options.BatchSize, 1, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThan(_options.OcclusionGrid, 2, nameof(options));
        _parts = ModelParts.Of(model, _options.ScoreColumn);
        if (_parts.FeaturesName != ImagePipeline.FeaturesColumn)
            throw new InvalidDataException($"The model's head reads '{_parts.FeaturesName}'; MLTransfer models read '{ImagePipeline.FeaturesColumn}'.");
        if (_options.Class is { } named && !_parts.Classes.Contains(named, StringComparer.Ordinal))
            throw new ArgumentException($"The model has no class '{named}'. Classes: '{string.Join("', '", _parts.Classes)}'.", nameof(options));
        _site = GraphOutputs.FindGlobalPooling(_parts.Graph, _parts.FeaturesName);
        _linear = _site is null ? null : LinearHeadReader.TryRead(_mlContext, _parts);
        Method = _options.Method switch
        {
            ExplanationMethod.Auto => _linear is not null ? ExplanationMethod.ClassActivationMap : ExplanationMethod.Occlusion,
            ExplanationMethod.ClassActivationMap when _linear is null => throw new ArgumentException(
                _site is null
                    ? "Class-activation maps need a head on globally pooled features; this model's features are not an affine function of a pooling (use occlusion)."
                    : "Class-activation maps need a linear softmax head (L-BFGS, SDCA, image-classification, fine-tuned); this model's head is not one (use occlusion).",
                nameof(options)),
            var method => method,
        };
        _plane = ImagePreprocessor.PixelCount(ImageSize);
        _outputs = Method == ExplanationMethod.ClassActivationMap ? [_parts.FeaturesName, _site!.MapName] : [_parts.FeaturesName];
        using var sessionOptions = OnnxImageFeaturizer.CreateSessionOptions(_options.IntraOpThreads);
        try
        {
            _session = new InferenceSession(_parts.GraphWithOutputs(_outputs), sessionOptions);
            if (Method == ExplanationMethod.ClassActivationMap)
            {
                using var small = OnnxImageFeaturizer.CreateSessionOptions(1);
                _afterPooling = new InferenceSession(Google.Protobuf.MessageExtensions.ToByteArray(GraphOutputs.AfterPooling(_parts.Graph, _site!, _parts.FeaturesName)), small);
            }
        }
        catch (OnnxRuntimeException e)
        {
            _session?.Dispose();
            throw new InvalidDataException($"ONNX Runtime cannot load the model's backbone graph: {e.Message}", e);
        }
    }

    /// <summary>Creates an explainer for a saved <c>.zip</c>.</summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="modelPath">The model file.</param>
    /// <param name="options">Options; null means the defaults.</param>
    public static ImageExplainer Load(MLContext mlContext, string modelPath, ExplainerOptions? options = null) =>
        new(mlContext, ModelFile.Load(mlContext, modelPath), options);

    /// <summary>The method in use (<see cref="ExplanationMethod.Auto"/> resolved).</summary>
    public ExplanationMethod Method { get; }

    /// <summary>The model's classes, in score order.</summary>
    public IReadOnlyList<string> Classes => _parts.Classes;

    /// <summary>Side of the square image the model sees.</summary>
    public int ImageSize => _parts.ImageSize;

    /// <summary>Explains one image.</summary>
    /// <param name="imagePath">The image file.</param>
    /// <exception cref="InvalidDataException">The image cannot be read.</exception>
    public Explanation Explain(string imagePath)
    {
        var outcome = ExplainAll([imagePath]).Single();
        return outcome.Explanation ?? throw new InvalidDataException($"Cannot explain '{imagePath}': {outcome.Problem}");
    }

    /// <summary>Explains images one batch at a time, in order; unreadable images come back with the reason.</summary>
    /// <param name="imagePaths">The image files.</param>
    /// <param name="cancellationToken">Stops between batches.</param>
    public IEnumerable<ExplanationOutcome> ExplainAll(IEnumerable<string> imagePaths, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(imagePaths);
        var batch = new List<(string Path, float[] Pixels)>();
        foreach (var path in imagePaths)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var pixels = new float[_plane];
            var problem = Load(path, pixels);
            if (problem is not null)
            {
                foreach (var done in Flush(batch))
                    yield return done;
                yield return new ExplanationOutcome(path, null, problem);
                continue;
            }
            batch.Add((path, pixels));
            if (Method == ExplanationMethod.Occlusion || batch.Count == _options.BatchSize)
                foreach (var done in Flush(batch))
                    yield return done;
        }
        foreach (var done in Flush(batch))
            yield return done;
    }

    private string? Load(string path, float[] pixels)
    {
        try
        {
            return ImagePreprocessor.TryLoadPixels(path, ImageSize, pixels, _options.MaxPixels);
        }
        catch (Exception e) when (e is not OperationCanceledException and not OutOfMemoryException)
        {
            return $"cannot decode image: {e.Message}";
        }
    }

    private List<ExplanationOutcome> Flush(List<(string Path, float[] Pixels)> batch)
    {
        if (batch.Count == 0)
            return [];
        var explanations = Method == ExplanationMethod.ClassActivationMap
            ? ActivationMaps(batch)
            : batch.Select(b => Occlude(b.Path, b.Pixels)).ToList();
        batch.Clear();
        return explanations.Select(e => new ExplanationOutcome(e.ImagePath, e, null)).ToList();
    }

    /// <summary>The model's probabilities for images given as model-input pixels (planar RGB 0–255, <see cref="ImageSize"/>²).</summary>
    /// <param name="images">The images.</param>
    internal float[][] Probabilities(IReadOnlyList<float[]> images)
    {
        var result = new float[images.Count][];
        for (var start = 0; start < images.Count; start += _options.BatchSize)
        {
            var count = Math.Min(_options.BatchSize, images.Count - start);
            var features = RunGraph(images.Skip(start).Take(count).ToList(), out _);
            var scores = HeadScores(features);
            Array.Copy(scores, 0, result, start, count);
        }
        return result;
    }

    private float[][] RunGraph(IReadOnlyList<float[]> images, out (float[] Values, int Channels, int Height, int Width)? map)
    {
        var input = new float[images.Count * _plane];
        for (var i = 0; i < images.Count; i++)
            images[i].AsSpan(0, _plane).CopyTo(input.AsSpan(i * _plane));
        using var value = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, new Memory<float>(input), [images.Count, 3, ImageSize, ImageSize]);
        using var runOptions = new RunOptions();
        using var outputs = _session.Run(runOptions, [_parts.InputName], [value], _outputs);
        var features = Rows(outputs[0].GetTensorDataAsSpan<float>(), images.Count);
        map = null;
        if (_outputs.Length > 1)
        {
            var shape = outputs[1].GetTensorTypeAndShape().Shape;
            if (shape.Length != 4)
                throw new InvalidDataException($"The pooled map '{_site!.MapName}' has rank {shape.Length}; a convolutional map [N,C,H,W] was expected.");
            map = (outputs[1].GetTensorDataAsSpan<float>().ToArray(), (int)shape[1], (int)shape[2], (int)shape[3]);
        }
        return features;
    }

    private static float[][] Rows(ReadOnlySpan<float> flat, int count)
    {
        var width = flat.Length / count;
        var rows = new float[count][];
        for (var i = 0; i < count; i++)
            rows[i] = flat.Slice(i * width, width).ToArray();
        return rows;
    }

    private float[][] HeadScores(float[][] features)
    {
        var view = FeatureRows.ToDataView(_mlContext, features, null, null);
        return _parts.Head.Transform(view).GetColumn<VBuffer<float>>(_parts.ScoreColumn).Select(v => v.DenseValues().ToArray()).ToArray();
    }

    private int[] ClassesToExplain(float[] probabilities) =>
        _options.Class is { } named
            ? [_parts.Classes.ToList().IndexOf(named)]
            : probabilities.Select((p, i) => (p, i)).OrderByDescending(t => t.p).ThenBy(t => t.i).Take(Math.Min(_options.Top, probabilities.Length)).Select(t => t.i).ToArray();

    // Zhou et al. 2016: M_k(x,y) = w_k · g(A(:,x,y)) + b_k with g the affine nodes between the pooling and the features
    // (the identity for a plain backbone, CORAL's Gemm) and A the last convolutional map; mean over (x,y) = logit_k.
    private List<Explanation> ActivationMaps(List<(string Path, float[] Pixels)> batch)
    {
        var features = RunGraph(batch.Select(b => b.Pixels).ToList(), out var map);
        var (values, channels, height, width) = map!.Value;
        if (_site!.Operator == "AveragePool" && _parts.Graph.Graph.Node.First(n => n.Output.Contains(_site.PooledName)).Attribute
                .FirstOrDefault(a => a.Name == "kernel_shape") is { } kernel && (kernel.Ints.Count != 2 || kernel.Ints[0] != height || kernel.Ints[1] != width))
            throw new InvalidDataException(
                $"The model's pooling '{_site.PooledName}' averages {string.Join("×", kernel.Ints)} windows of a {height}×{width} map, not the whole map: class-activation maps need a global pooling (use occlusion).");
        var positions = height * width;
        var columns = new float[batch.Count * positions * channels];
        for (var b = 0; b < batch.Count; b++)
            for (var c = 0; c < channels; c++)
            {
                var source = (b * channels + c) * positions;
                for (var p = 0; p < positions; p++)
                    columns[(b * positions + p) * channels + c] = values[source + p];
            }
        var projected = AfterPooling(columns, batch.Count * positions, channels);
        var probabilities = HeadScores(features);
        var head = _linear!;
        var explanations = new List<Explanation>(batch.Count);
        for (var b = 0; b < batch.Count; b++)
        {
            var maps = new float[head.Classes.Count][];
            for (var k = 0; k < maps.Length; k++)
            {
                maps[k] = new float[positions];
                var w = head.Weights[k];
                for (var p = 0; p < positions; p++)
                {
                    var row = projected[b * positions + p];
                    double sum = head.Bias[k];
                    for (var j = 0; j < row.Length; j++)
                        sum += w[j] * row[j];
                    maps[k][p] = (float)sum;
                }
            }
            var reconstructed = Softmax(maps.Select(m => m.Average(v => (double)v)).ToArray());
            var error = reconstructed.Select((p, k) => Math.Abs(p - probabilities[b][k])).Max();
            explanations.Add(new Explanation
            {
                ImagePath = batch[b].Path,
                Method = Method,
                Classes = _parts.Classes,
                Probabilities = probabilities[b],
                Maps = ClassesToExplain(probabilities[b]).Select(k => new ClassMap(_parts.Classes[k], k, probabilities[b][k], width, height, maps[k])).ToList(),
                ImageSize = ImageSize,
                Pixels = batch[b].Pixels,
                ReconstructionError = error,
            });
        }
        return explanations;
    }

    private float[][] AfterPooling(float[] columns, int count, int channels)
    {
        var keepDims = _site!.Operator != "ReduceMean" || _parts.Graph.Graph.Node.First(n => n.Output.Contains(_site.PooledName)).Attribute
            .FirstOrDefault(a => a.Name == "keepdims") is not { I: 0 };
        long[] shape = keepDims ? [count, channels, 1, 1] : [count, channels];
        using var value = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, new Memory<float>(columns), shape);
        using var runOptions = new RunOptions();
        using var outputs = _afterPooling!.Run(runOptions, [_site.PooledName], [value], [_parts.FeaturesName]);
        return Rows(outputs[0].GetTensorDataAsSpan<float>(), count);
    }

    private static double[] Softmax(double[] logits)
    {
        var max = logits.Max();
        var exp = logits.Select(z => Math.Exp(z - max)).ToArray();
        var total = exp.Sum();
        return exp.Select(e => e / total).ToArray();
    }

    // Zeiler & Fergus 2014: a mean-colour patch of 2×2 grid cells slides one cell at a time; each cell's value is the mean
    // probability drop over the patches covering it.
    private Explanation Occlude(string path, float[] pixels)
    {
        var grid = _options.OcclusionGrid;
        var edges = Enumerable.Range(0, grid + 1).Select(i => (int)Math.Round((double)i * ImageSize / grid)).ToArray();
        var fill = PixelDeletion.MeanColour(pixels, ImageSize);
        var patches = (grid - 1) * (grid - 1);
        var images = new List<float[]>(patches + 1) { pixels };
        for (var r = 0; r < grid - 1; r++)
            for (var c = 0; c < grid - 1; c++)
            {
                var copy = (float[])pixels.Clone();
                PixelDeletion.FillRectangle(copy, ImageSize, fill, edges[c], edges[r], edges[c + 2], edges[r + 2]);
                images.Add(copy);
            }
        var scores = Probabilities(images);
        var baseline = scores[0];
        var maps = new List<ClassMap>();
        foreach (var k in ClassesToExplain(baseline))
        {
            var values = new float[grid * grid];
            for (var i = 0; i < grid; i++)
                for (var j = 0; j < grid; j++)
                {
                    double sum = 0;
                    var n = 0;
                    for (var r = Math.Max(0, i - 1); r <= Math.Min(grid - 2, i); r++)
                        for (var c = Math.Max(0, j - 1); c <= Math.Min(grid - 2, j); c++)
                        {
                            sum += baseline[k] - scores[1 + r * (grid - 1) + c][k];
                            n++;
                        }
                    values[i * grid + j] = (float)(sum / n);
                }
            maps.Add(new ClassMap(_parts.Classes[k], k, baseline[k], grid, grid, values));
        }
        return new Explanation
        {
            ImagePath = path,
            Method = Method,
            Classes = _parts.Classes,
            Probabilities = baseline,
            Maps = maps,
            ImageSize = ImageSize,
            Pixels = pixels,
        };
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _session.Dispose();
        _afterPooling?.Dispose();
    }
}
