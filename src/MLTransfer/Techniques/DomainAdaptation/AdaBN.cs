using Google.Protobuf;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using MLTransfer.Backbones;
using MLTransfer.Data;
using MLTransfer.Export;
using MLTransfer.Featurization;
using Onnx;

namespace MLTransfer.Techniques.DomainAdaptation;

/// <summary>
/// AdaBN, Adaptive Batch Normalization (Li, Wang, Shi, Liu and Hou 2016, "Revisiting Batch Normalization For
/// Practical Domain Adaptation", arXiv:1603.04779): the backbone's BatchNorm layers keep their learnt scale and
/// shift but normalise with statistics of the target domain. The head is trained on source features computed
/// with the source (pretrained) statistics, and — as in the paper — the exported network uses the target
/// statistics at prediction time.
/// </summary>
/// <remarks>
/// Statistics are re-estimated on ONNX Runtime, layer by layer in dependency order: a BatchNorm layer's input
/// mean and (population) variance per channel are measured on the target images only once every BatchNorm layer
/// upstream of it already uses target statistics, exactly as a forward pass over the target domain in the paper.
/// The new statistics are written into the fused ONNX graph that the <c>.zip</c> embeds, so the model stays
/// ML.NET-only.
/// </remarks>
public sealed class AdaBN : ITransferTechnique
{
    /// <summary>Creates the technique.</summary>
    /// <param name="options">Options; null means the defaults (a target folder must then be set before fitting).</param>
    public AdaBN(AdaBNOptions? options = null) => Options = options ?? new AdaBNOptions();

    /// <summary>The options.</summary>
    public AdaBNOptions Options { get; }

    /// <inheritdoc />
    public string Name => "domain-adaptation/adabn";

    /// <inheritdoc />
    public IEstimator<ITransformer> CreateEstimator(MLContext mlContext) => new AdaBNEstimator(mlContext, Options);
}

/// <summary>The estimator of <see cref="AdaBN"/>.</summary>
public sealed class AdaBNEstimator : DomainAdaptationEstimator
{
    private readonly AdaBNOptions _options;

    internal AdaBNEstimator(MLContext mlContext, AdaBNOptions options) : base(mlContext, options) => _options = options;

    /// <inheritdoc />
    public override string Method => "adabn";

    /// <inheritdoc />
    protected override Adaptation Adapt(AdaptationContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var size = context.Featurizer.ImageSize;
        var threads = context.Engine.IntraOpThreads;
        var batch = _options.StatisticsBatchSize;
        var target = Reestimate(context, context.Target.Examples, context.Seed);
        if (!_options.SourceStatistics)
            return Export(context, target, context.SourceTrain.Features, null);
        var source = Reestimate(context, context.SourceTrain.Examples, context.Seed + 1);
        var sourceFeatures = BatchNormStatistics.Features(context.MLContext, source, context.SourceTrain.Examples.Select(e => e.ImagePath).ToList(), size, batch, threads);
        var validation = context.SourceValidation is null ? null
            : BatchNormStatistics.Features(context.MLContext, source, context.SourceValidation.Examples.Select(e => e.ImagePath).ToList(), size, batch, threads);
        return Export(context, target, sourceFeatures, validation);
    }

    private ModelProto Reestimate(AdaptationContext context, IReadOnlyList<Data.ImageExample> examples, int seed)
    {
        var images = TargetImages.Sample(examples, _options.MaxTargetImages, seed).Select(e => e.ImagePath).ToList();
        var pixels = BatchNormStatistics.DecodePixels(context.MLContext, images, context.Featurizer.ImageSize);
        var model = FeaturizerGraph.Load(context.Featurizer.GraphPath);
        var updated = BatchNormStatistics.ReestimateOnTarget(model, pixels, context.Featurizer.ImageSize, _options.StatisticsBatchSize, context.Engine.IntraOpThreads);
        if (updated == 0)
            throw new InvalidDataException($"The backbone graph '{context.Featurizer.GraphPath}' has no BatchNormalization nodes; AdaBN needs a network with BatchNorm layers.");
        return model;
    }

    private Adaptation Export(AdaptationContext context, ModelProto target, float[][] headFeatures, float[][]? validationFeatures)
    {
        var key = FeatureGraphEdits.Hash(target.Graph.Initializer.Where(t => BatchNormStatistics.IsStatistic(target.Graph, t.Name))
            .Select(FeaturizerGraph.TensorValues).ToArray());
        var graphPath = FeatureGraphEdits.WriteEdited(context.Featurizer.GraphPath, context.Engine.EffectiveGraphDirectory, "adabn", key, edited =>
        {
            edited.Graph.Initializer.Clear();
            edited.Graph.Initializer.AddRange(target.Graph.Initializer);
        });
        return new Adaptation
        {
            GraphPath = graphPath,
            HeadTrainFeatures = headFeatures,
            HeadValidationFeatures = validationFeatures,
            TargetAsExported = (_, examples) => BatchNormStatistics.Features(context.MLContext, target, examples.Select(e => e.ImagePath).ToList(),
                context.Featurizer.ImageSize, _options.StatisticsBatchSize, context.Engine.IntraOpThreads),
        };
    }
}

/// <summary>Measures and rewrites the running statistics of the BatchNormalization nodes of an ONNX graph on given images (used by <see cref="AdaBN"/>).</summary>
public static class BatchNormStatistics
{
    /// <summary>Decodes images to the graph's input pixels ([3,S,S] planar RGB 0–255) with ML.NET's own transforms.</summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="imagePaths">Readable images.</param>
    /// <param name="imageSize">Square size.</param>
    public static float[][] DecodePixels(MLContext mlContext, IReadOnlyList<string> imagePaths, int imageSize)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        var view = mlContext.Data.LoadFromEnumerable(imagePaths.Select(p => new ImageExample { ImagePath = p }));
        var decoded = OnnxImageFeaturizer.DecodeEstimator(mlContext, imageSize).Fit(view).Transform(view);
        return decoded.GetColumn<VBuffer<float>>(ImagePipeline.PixelsColumn).Select(v => v.DenseValues().ToArray()).ToArray();
    }

    /// <summary>Whether an initializer is the mean or variance input of a BatchNormalization node.</summary>
    /// <param name="graph">The graph.</param>
    /// <param name="name">The initializer's name.</param>
    public static bool IsStatistic(GraphProto graph, string name)
    {
        ArgumentNullException.ThrowIfNull(graph);
        return graph.Node.Any(n => n.OpType == "BatchNormalization" && n.Input.Count >= 5 && (n.Input[3] == name || n.Input[4] == name));
    }

    /// <summary>
    /// Replaces the mean and variance of every BatchNormalization node with per-channel statistics of its input
    /// over the images, visiting layers in dependency order (a layer is measured once all BatchNorm layers
    /// upstream use the new statistics). Returns the number of layers updated.
    /// </summary>
    /// <param name="model">A graph with input <c>Pixels</c>; modified in place.</param>
    /// <param name="pixels">Decoded images (see <see cref="DecodePixels"/>).</param>
    /// <param name="imageSize">Square size of the images.</param>
    /// <param name="batchSize">Images per ONNX Runtime run.</param>
    /// <param name="intraOpThreads">ONNX Runtime threads; 0 means one per core.</param>
    public static int ReestimateOnTarget(ModelProto model, IReadOnlyList<float[]> pixels, int imageSize, int batchSize, int intraOpThreads = 0)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(pixels);
        if (pixels.Count < 2)
            throw new ArgumentException("Re-estimating BatchNorm statistics needs at least 2 images.", nameof(pixels));
        var graph = model.Graph;
        var layers = graph.Node.Where(n => n.OpType == "BatchNormalization").ToList();
        foreach (var layer in layers)
        {
            if (layer.Attribute.FirstOrDefault(a => a.Name == "spatial") is { I: 0 })
                throw new NotSupportedException($"BatchNormalization node '{layer.Name}' is not spatial (spatial=0); AdaBN supports per-channel BatchNorm only.");
            if (layer.Input.Count < 5 || graph.Initializer.All(t => t.Name != layer.Input[3]) || graph.Initializer.All(t => t.Name != layer.Input[4]))
                throw new NotSupportedException($"BatchNormalization node '{layer.Name}' does not keep its mean and variance in initializers.");
        }
        var upstream = UpstreamLayers(graph, layers);
        var done = new HashSet<int>();
        while (done.Count < layers.Count)
        {
            var ready = Enumerable.Range(0, layers.Count).Where(i => !done.Contains(i) && upstream[i].All(done.Contains)).ToList();
            if (ready.Count == 0)
                throw new InvalidDataException("The BatchNorm layers form a cycle; the graph is not a valid ONNX graph.");
            var inputs = ready.Select(i => layers[i].Input[0]).Distinct().ToArray();
            var sums = Run<Moments>(model, pixels, imageSize, batchSize, intraOpThreads, inputs, Accumulate);
            foreach (var i in ready)
            {
                var (sum, squares, count) = sums[layers[i].Input[0]];
                var mean = new float[sum.Length];
                var variance = new float[sum.Length];
                for (var c = 0; c < sum.Length; c++)
                {
                    var m = sum[c] / count;
                    mean[c] = (float)m;
                    variance[c] = (float)Math.Max(squares[c] / count - m * m, 0);
                }
                Replace(graph, layers[i].Input[3], mean);
                Replace(graph, layers[i].Input[4], variance);
                done.Add(i);
            }
        }
        return layers.Count;
    }

    /// <summary>The graph's <c>Features</c> output for decoded images.</summary>
    /// <param name="model">The graph.</param>
    /// <param name="pixels">Decoded images.</param>
    /// <param name="imageSize">Square size.</param>
    /// <param name="batchSize">Images per run.</param>
    /// <param name="intraOpThreads">ONNX Runtime threads; 0 means one per core.</param>
    public static float[][] Features(ModelProto model, IReadOnlyList<float[]> pixels, int imageSize, int batchSize, int intraOpThreads = 0)
    {
        var rows = new List<float[]>();
        Run<object?>(model, pixels, imageSize, batchSize, intraOpThreads, [FeaturizerGraph.OutputName], (_, tensor, _) =>
        {
            var d = (int)(tensor.Length / tensor.Dimensions[0]);
            var buffer = tensor.ToArray();
            for (var b = 0; b < tensor.Dimensions[0]; b++)
                rows.Add(buffer.AsSpan(b * d, d).ToArray());
            return null;
        });
        return rows.ToArray();
    }

    /// <summary>The graph's <c>Features</c> output for image files, decoded in chunks of 256 to bound memory.</summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="model">The graph.</param>
    /// <param name="imagePaths">Readable images.</param>
    /// <param name="imageSize">Square size.</param>
    /// <param name="batchSize">Images per run.</param>
    /// <param name="intraOpThreads">ONNX Runtime threads; 0 means one per core.</param>
    public static float[][] Features(MLContext mlContext, ModelProto model, IReadOnlyList<string> imagePaths, int imageSize, int batchSize, int intraOpThreads = 0)
    {
        ArgumentNullException.ThrowIfNull(imagePaths);
        var rows = new List<float[]>();
        for (var start = 0; start < imagePaths.Count; start += 256)
            rows.AddRange(Features(model, DecodePixels(mlContext, imagePaths.Skip(start).Take(256).ToList(), imageSize), imageSize, batchSize, intraOpThreads));
        return rows.ToArray();
    }

    private sealed record Moments(double[] Sum, double[] Squares, long Count);

    private static Moments Accumulate(Moments? previous, Tensor<float> tensor, string name)
    {
        var dims = tensor.Dimensions.ToArray();
        if (dims.Length < 2)
            throw new InvalidDataException($"BatchNorm input '{name}' has rank {dims.Length}; expected [N,C,...].");
        var channels = dims[1];
        var plane = 1;
        for (var k = 2; k < dims.Length; k++)
            plane *= dims[k];
        var (sum, squares, count) = previous ?? new Moments(new double[channels], new double[channels], 0L);
        var values = ((DenseTensor<float>)tensor).Buffer.Span;
        for (var n = 0; n < dims[0]; n++)
            for (var c = 0; c < channels; c++)
            {
                var slice = values.Slice((n * channels + c) * plane, plane);
                double s = 0, q = 0;
                foreach (var v in slice)
                {
                    s += v;
                    q += (double)v * v;
                }
                sum[c] += s;
                squares[c] += q;
            }
        return new Moments(sum, squares, count + (long)dims[0] * plane);
    }

    private static Dictionary<string, T> Run<T>(ModelProto model, IReadOnlyList<float[]> pixels, int imageSize, int batchSize, int intraOpThreads,
        string[] outputs, Func<T?, Tensor<float>, string, T> fold)
    {
        var copy = model.Clone();
        copy.Graph.Output.Clear();
        foreach (var name in outputs)
            copy.Graph.Output.Add(new ValueInfoProto
            {
                Name = name,
                Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float } },
            });
        using var session = new InferenceSession(copy.ToByteArray(), OnnxImageFeaturizer.CreateSessionOptions(intraOpThreads));
        var results = new Dictionary<string, T>();
        var plane = 3 * imageSize * imageSize;
        for (var start = 0; start < pixels.Count; start += Math.Max(1, batchSize))
        {
            var count = Math.Min(Math.Max(1, batchSize), pixels.Count - start);
            var input = new DenseTensor<float>([count, 3, imageSize, imageSize]);
            for (var b = 0; b < count; b++)
                pixels[start + b].AsSpan().CopyTo(input.Buffer.Span.Slice(b * plane, plane));
            using var values = session.Run([NamedOnnxValue.CreateFromTensor(FeaturizerGraph.InputName, input)], outputs);
            foreach (var value in values)
                results[value.Name] = fold(results.TryGetValue(value.Name, out var previous) ? previous : default, value.AsTensor<float>(), value.Name);
        }
        return results;
    }

    private static List<HashSet<int>> UpstreamLayers(GraphProto graph, List<NodeProto> layers)
    {
        var influence = new Dictionary<string, HashSet<int>>(StringComparer.Ordinal);
        var upstream = layers.Select(_ => new HashSet<int>()).ToList();
        foreach (var node in graph.Node)
        {
            var set = new HashSet<int>();
            foreach (var input in node.Input)
                if (influence.TryGetValue(input, out var s))
                    set.UnionWith(s);
            var index = layers.IndexOf(node);
            if (index >= 0)
            {
                upstream[index] = new HashSet<int>(influence.TryGetValue(node.Input[0], out var direct) ? direct : []);
                set.Add(index);
            }
            foreach (var output in node.Output)
                influence[output] = set;
        }
        return upstream;
    }

    private static void Replace(GraphProto graph, string name, float[] values)
    {
        var index = graph.Initializer.ToList().FindIndex(t => t.Name == name);
        var old = graph.Initializer[index];
        if (old.Dims.Aggregate(1L, (a, b) => a * b) != values.Length)
            throw new InvalidDataException($"BatchNorm statistic '{name}' has shape [{string.Join(",", old.Dims)}], but its input has {values.Length} channels.");
        graph.Initializer[index] = FeaturizerGraph.Tensor(name, old.Dims.ToArray(), values);
    }
}
