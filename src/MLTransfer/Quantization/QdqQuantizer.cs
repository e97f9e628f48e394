using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using MLTransfer.Backbones;
using MLTransfer.Data;
using MLTransfer.Featurization;
using Onnx;

namespace MLTransfer.Quantization;

/// <summary>What <see cref="QdqQuantizer.Quantize"/> did.</summary>
/// <param name="QuantizedConvolutions">Convolutions given int8 weights (per output channel) and int32 biases.</param>
/// <param name="QuantizedTensors">Activation tensors given a QuantizeLinear → DequantizeLinear pair (uint8).</param>
/// <param name="FoldedBatchNormalizations">BatchNormalization nodes folded into the preceding convolution first.</param>
/// <param name="SourceOpset">The default-domain opset of the source graph (raised to <see cref="QdqQuantizer.Opset"/>).</param>
/// <param name="CalibrationImages">Images whose activations calibrated the ranges.</param>
/// <param name="RejectedCalibrationImages">Calibration images that could not be read or decoded (skipped).</param>
public sealed record QuantizationSummary(int QuantizedConvolutions, int QuantizedTensors, int FoldedBatchNormalizations, long SourceOpset,
    int CalibrationImages, int RejectedCalibrationImages)
{
    /// <summary>Convolutions whose int32 bias was corrected for the mean shift quantisation causes (<see cref="QuantizationOptions.BiasCorrection"/>).</summary>
    public int BiasCorrectedConvolutions { get; init; }

    /// <summary>The convolutions kept float (<see cref="QuantizationOptions.FloatConvolutions"/>), by output tensor name, most sensitive first.</summary>
    public IReadOnlyList<string> FloatConvolutions { get; init; } = [];

    /// <summary>True when the graph came from a <see cref="QuantizedGraphStore"/> entry instead of a new calibration.</summary>
    public bool Reused { get; init; }
}

/// <summary>
/// Static post-training int8 quantisation of an MLTransfer image graph (input <see cref="FeaturizerGraph.InputName"/>
/// [N,3,S,S]) in QDQ form, the way ONNX Runtime's own quantiser writes it: a standard ONNX graph (opset 13) in which
/// every convolution reads <c>DequantizeLinear</c> outputs — uint8 activations with a calibrated scale and zero point,
/// symmetric int8 weights with one scale per output channel (<c>axis = 0</c>), int32 biases at scale
/// <c>s_input · s_weight</c> — and whose outputs pass through <c>QuantizeLinear → DequantizeLinear</c>. ONNX Runtime
/// fuses each <c>DQ → Conv → (Relu) → Q</c> group into one <c>QLinearConv</c> (and <c>DQ → Add → (Relu) → Q</c> into
/// <c>QLinearAdd</c>; MaxPool runs on the uint8 values directly), so the network runs on int8 kernels; any other
/// runtime reads the same graph as float arithmetic on quantised values.
/// </summary>
/// <remarks>
/// <para>Steps: (1) fold the input normalisation (<see cref="InferenceGraph"/>) and every BatchNormalization into the
/// preceding convolution, raise the opset to 13 (per-channel DequantizeLinear needs it; only operators whose meaning did
/// not change between the source opset and 13 are accepted, and attributes later opsets dropped are removed); (2) run
/// the float graph on the calibration images and record each quantised tensor's range (min/max, always including 0);
/// (3) insert the QDQ pairs: activations <c>scale = (max − min) / 255</c>, <c>zero point = round(−min / scale)</c>
/// (0 after a ReLU, which lets ONNX Runtime drop the ReLU); weights <c>scale_c = max|w_c| / L</c> with <c>L</c> = <see cref="QuantizationOptions.WeightLevels"/> (63 by default: 7-bit weights, the same numbers on every x86 CPU); a MaxPool output
/// shares its input's parameters. Pooling at the end, dense layers and the graph outputs stay float.</para>
/// <para>Reference: Jacob et al., "Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only
/// Inference", CVPR 2018; Krishnamoorthi, "Quantizing deep convolutional networks for efficient inference", 2018.</para>
/// </remarks>
public static class QdqQuantizer
{
    /// <summary>Version of the rewrite; part of file names and cache keys.</summary>
    public const int Version = 2;

    /// <summary>Opset of the quantised graph (the first with per-axis QuantizeLinear/DequantizeLinear).</summary>
    public const int Opset = 13;

    private const string Prefix = "mltransfer_q_";

    private static readonly HashSet<string> StableOperators =
    [
        "Conv", "Relu", "Add", "Sub", "Mul", "Div", "Sum", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool",
        "Flatten", "Reshape", "Gemm", "MatMul", "Concat", "Identity", "Sigmoid", "Tanh", "Transpose", "LeakyRelu",
        "DepthToSpace", "Constant", "BatchNormalization", "Dropout",
    ];

    /// <summary>
    /// Quantises an MLTransfer image graph, calibrating activation ranges on images; the argument is not changed.
    /// </summary>
    /// <param name="graph">A float graph with input <see cref="FeaturizerGraph.InputName"/> [N,3,S,S] (fused backbone, or any exported MLTransfer graph).</param>
    /// <param name="calibrationImages">Image files to calibrate on (all are used; see <see cref="SelectCalibrationImages"/>).</param>
    /// <param name="options">Options; null means the defaults.</param>
    /// <param name="summary">What was done.</param>
    /// <param name="progress">Receives (images done, total) during calibration; may be null.</param>
    /// <exception cref="InvalidDataException">The graph is not an MLTransfer image graph, is already quantised, uses an operator that cannot be carried to opset 13, or no calibration image could be read.</exception>
    public static ModelProto Quantize(ModelProto graph, IReadOnlyList<string> calibrationImages, QuantizationOptions? options,
        out QuantizationSummary summary, IProgress<(int Done, int Total)>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(graph);
        ArgumentNullException.ThrowIfNull(calibrationImages);
        options ??= new QuantizationOptions();
        ArgumentOutOfRangeException.ThrowIfNegative(options.FloatConvolutions, nameof(options));
        if (options.WeightLevels is < 1 or > QuantizationOptions.FullRangeWeightLevels)
            throw new ArgumentOutOfRangeException(nameof(options), options.WeightLevels, "WeightLevels must be in [1, 127].");
        var imageSize = ImageSize(graph);
        var sourceOpset = DefaultOpset(graph);
        var prepared = Prepare(graph, imageSize, out var folded);
        var plan = Plan(prepared.Graph);
        var ranges = Calibrate(prepared, plan.Calibrated, calibrationImages, imageSize, options, out var used, out var rejected, progress);
        var reference = options.BiasCorrection ? prepared.Clone() : null;
        IReadOnlyList<string> keptFloat = options.FloatConvolutions == 0
            ? []
            : MostSensitive(prepared, ranges, Spread(calibrationImages, options.SensitivityImages), imageSize, options.BatchSize, options.FloatConvolutions, options.WeightLevels);
        var floatSet = keptFloat.ToHashSet(StringComparer.Ordinal);
        if (floatSet.Count > 0)
            plan = Plan(prepared.Graph, floatSet);
        var convolutions = InsertQdq(prepared.Graph, plan, ranges, floatSet, options.WeightLevels);
        var corrected = reference is null ? 0
            : CorrectBiases(reference, prepared, Spread(calibrationImages, options.BiasCorrectionImages), imageSize, options.BatchSize);
        summary = new QuantizationSummary(convolutions, plan.Tensors.Count, folded, sourceOpset, used, rejected)
        {
            BiasCorrectedConvolutions = corrected, FloatConvolutions = keptFloat,
        };
        return prepared;
    }

    /// <summary>
    /// Quantises a graph file and writes the result next to it (once per graph, calibration images and options; later calls
    /// reuse the file), atomically, and records it in <see cref="QuantizedGraphStore"/> in the same folder. Returns the quantised graph's path.
    /// </summary>
    /// <param name="graphPath">A float MLTransfer image graph.</param>
    /// <param name="calibrationImages">Image files to calibrate on (all are used).</param>
    /// <param name="options">Options; null means the defaults.</param>
    public static string Materialize(string graphPath, IReadOnlyList<string> calibrationImages, QuantizationOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(graphPath);
        options ??= new QuantizationOptions();
        var key = VariantName(graphPath, calibrationImages, options);
        var source = new FileInfo(graphPath);
        var path = Path.Combine(source.DirectoryName ?? ".", $"{Path.GetFileNameWithoutExtension(source.Name)}-{key}.onnx");
        if (!File.Exists(path))
        {
            // Through the store of the graph's folder: an identical quantisation done before (of a saved model's copy of this
            // graph) is reused, and a model saved from this graph and quantised the same way (train --int8) reuses this one.
            QuantizedGraphStore.GetOrQuantize(Path.GetDirectoryName(Path.GetFullPath(path))!, FeaturizerGraph.Load(graphPath), calibrationImages, options,
                out _, writeTo: path);
        }
        return path;
    }

    /// <summary>
    /// Names the quantised form of a graph: rewrite version, options, the graph file and the content of every calibration
    /// image. Part of the quantised graph's file name and of the bottleneck-cache context of features computed with it.
    /// </summary>
    /// <param name="graphPath">The float graph file.</param>
    /// <param name="calibrationImages">The calibration image files.</param>
    /// <param name="options">Options; null means the defaults.</param>
    public static string VariantName(string graphPath, IReadOnlyList<string> calibrationImages, QuantizationOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(calibrationImages);
        options ??= new QuantizationOptions();
        var source = new FileInfo(graphPath);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(Encoding.UTF8.GetBytes($"int8v{Version}|{options.Key}|{source.FullName}|{source.Length}|{source.LastWriteTimeUtc.Ticks}"));
        AppendContent(hash, calibrationImages);
        return $"int8v{Version}-{Convert.ToHexStringLower(hash.GetHashAndReset())[..12]}";
    }

    /// <summary>Adds the SHA-256 of every image's bytes to <paramref name="hash"/> (an unreadable image by its path).</summary>
    internal static void AppendContent(IncrementalHash hash, IReadOnlyList<string> images)
    {
        foreach (var image in images)
        {
            try
            {
                hash.AppendData(SHA256.HashData(File.ReadAllBytes(image)));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                hash.AppendData(Encoding.UTF8.GetBytes("unreadable:" + image));
            }
        }
    }

    /// <summary>
    /// The calibration images that <paramref name="options"/> name: <see cref="QuantizationOptions.CalibrationFolder"/>'s
    /// images (recursively) or <see cref="QuantizationOptions.CalibrationImages"/>, else <paramref name="fallback"/>; at
    /// most <see cref="QuantizationOptions.MaxCalibrationImages"/>, spread evenly over the list in path order.
    /// </summary>
    /// <param name="options">Options.</param>
    /// <param name="fallback">Images to use when the options name none; may be null.</param>
    /// <exception cref="DirectoryNotFoundException">The calibration folder does not exist.</exception>
    /// <exception cref="InvalidDataException">No calibration images are named, or the folder has none.</exception>
    public static IReadOnlyList<string> SelectCalibrationImages(QuantizationOptions options, IReadOnlyList<string>? fallback = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxCalibrationImages, 1, nameof(options));
        IReadOnlyList<string> all;
        if (options.CalibrationFolder is { } folder)
        {
            all = FeaturizationBenchmark.CollectImages(folder);
            if (all.Count == 0)
                throw new InvalidDataException($"Calibration folder '{folder}' has no images ({string.Join(", ", ImageFileCheck.Extensions)}).");
        }
        else
        {
            all = (options.CalibrationImages ?? fallback ?? throw new InvalidDataException("Quantisation needs calibration images: set CalibrationFolder or CalibrationImages."))
                .OrderBy(p => p, StringComparer.Ordinal).ToList();
            if (all.Count == 0)
                throw new InvalidDataException("Quantisation needs at least one calibration image.");
        }
        return Spread(all, options.MaxCalibrationImages);
    }

    private static List<string> Spread(IReadOnlyList<string> all, int most)
    {
        var count = Math.Min(all.Count, Math.Max(0, most));
        return Enumerable.Range(0, count).Select(i => all[(int)((long)i * all.Count / count)]).ToList();
    }

    /// <summary>Whether a graph already holds quantisation nodes.</summary>
    /// <param name="graph">A model.</param>
    public static bool IsQuantized(ModelProto graph) =>
        graph.Graph.Node.Any(n => n.OpType is "QuantizeLinear" or "DequantizeLinear" or "QLinearConv" or "ConvInteger" or "QLinearMatMul");

    internal static int ImageSize(ModelProto model)
    {
        var input = model.Graph.Input.FirstOrDefault(i => i.Name == FeaturizerGraph.InputName);
        var dims = input?.Type?.TensorType?.Shape?.Dim;
        if (dims is not { Count: 4 } || dims[2].DimValue < 1 || dims[2].DimValue != dims[3].DimValue)
            throw new InvalidDataException(
                $"The graph is not an MLTransfer image graph: it needs an input '{FeaturizerGraph.InputName}' of shape [N,3,S,S].");
        return (int)dims[2].DimValue;
    }

    private static long DefaultOpset(ModelProto model) =>
        model.OpsetImport.Where(o => o.Domain is "" or "ai.onnx").Select(o => o.Version).DefaultIfEmpty(1).Max();

    // Step 1: folded, opset-13 float graph without initializers among its inputs.
    internal static ModelProto Prepare(ModelProto source, int imageSize, out int foldedBatchNorms)
    {
        if (IsQuantized(source))
            throw new InvalidDataException("The graph is already quantised.");
        if (source.Graph.Node.FirstOrDefault(n => n.Domain is not ("" or "ai.onnx")) is { } custom)
            throw new InvalidDataException($"The graph uses operator '{custom.Domain}.{custom.OpType}' outside the standard ONNX domain; it cannot be quantised.");
        var opset = DefaultOpset(source);
        if (opset < 7)
            throw new InvalidDataException($"The graph's opset is {opset}; quantisation supports opset 7 and later.");
        var model = InferenceGraph.Optimize(source, imageSize, new InferenceGraphOptions { WinogradMinChannels = 0 }, out _);
        var graph = model.Graph;
        if (opset < Opset)
            RaiseOpset(graph, opset);
        foreach (var import in model.OpsetImport.Where(o => o.Domain is "" or "ai.onnx"))
            import.Version = Math.Max(import.Version, Opset);
        model.IrVersion = Math.Max(model.IrVersion, 7);
        foldedBatchNorms = FoldBatchNormalizations(graph);
        var initializers = graph.Initializer.Select(t => t.Name).ToHashSet();
        foreach (var input in graph.Input.Where(i => initializers.Contains(i.Name)).ToList())
            graph.Input.Remove(input);
        graph.ValueInfo.Clear();
        RemoveUnusedInitializers(graph);
        return model;
    }

    private static void RaiseOpset(GraphProto graph, long opset)
    {
        foreach (var node in graph.Node.ToList())
        {
            if (!StableOperators.Contains(node.OpType))
                throw new InvalidDataException(
                    $"The graph uses '{node.OpType}' (node '{node.Name}'), whose definition changed between opset {opset} and {Opset}; it cannot be quantised.");
            switch (node.OpType)
            {
                case "BatchNormalization":
                    if (node.Attribute.FirstOrDefault(a => a.Name == "spatial") is { I: 0 })
                        throw new InvalidDataException($"BatchNormalization '{node.Name}' is per-activation (spatial = 0), which opset {Opset} cannot express.");
                    RemoveAttributes(node, "spatial", "is_test", "consumed_inputs");
                    break;
                case "Dropout":
                    node.OpType = "Identity";
                    node.Attribute.Clear();
                    while (node.Output.Count > 1)
                        node.Output.RemoveAt(node.Output.Count - 1);
                    break;
                case "MaxPool" or "AveragePool" or "Conv" or "Add" or "Sub" or "Mul" or "Div" or "Gemm":
                    RemoveAttributes(node, "consumed_inputs", "broadcast");
                    break;
            }
        }
    }

    private static void RemoveAttributes(NodeProto node, params string[] names)
    {
        foreach (var attribute in node.Attribute.Where(a => names.Contains(a.Name)).ToList())
            node.Attribute.Remove(attribute);
    }

    private static int FoldBatchNormalizations(GraphProto graph)
    {
        var folded = 0;
        foreach (var conv in graph.Node.Where(n => n.OpType == "Conv").ToList())
        {
            if (conv.Input.Count < 2 || Initializer(graph, conv.Input[1]) is not { Dims.Count: 4, DataType: (int)TensorProto.Types.DataType.Float } weightTensor)
                continue;
            var consumers = Consumers(graph, conv.Output[0]);
            if (consumers.Count != 1 || consumers[0].OpType != "BatchNormalization" || consumers[0].Input[0] != conv.Output[0]
                || graph.Output.Any(o => o.Name == conv.Output[0]))
                continue;
            var outputs = (int)weightTensor.Dims[0];
            var batchNorm = consumers[0];
            if (InferenceGraph.BatchNormAffine(graph, batchNorm, outputs) is not { } affine)
                continue;
            var bias = conv.Input.Count > 2 && conv.Input[2].Length > 0 ? Floats(graph, conv.Input[2]) : new float[outputs];
            if (bias is null || bias.Length != outputs)
                continue;
            var weights = FeaturizerGraph.TensorValues(weightTensor);
            var perChannel = weights.Length / outputs;
            var newWeights = new float[weights.Length];
            var newBias = new float[outputs];
            for (var o = 0; o < outputs; o++)
            {
                for (var k = 0; k < perChannel; k++)
                    newWeights[o * perChannel + k] = (float)(weights[o * perChannel + k] * affine.Scale[o]);
                newBias[o] = (float)(bias[o] * affine.Scale[o] + affine.Shift[o]);
            }
            var name = $"{Prefix}bn{folded}_";
            graph.Initializer.Add(FeaturizerGraph.Tensor(name + "w", weightTensor.Dims.ToArray(), newWeights));
            graph.Initializer.Add(FeaturizerGraph.Tensor(name + "b", [outputs], newBias));
            conv.Input[1] = name + "w";
            if (conv.Input.Count > 2)
                conv.Input[2] = name + "b";
            else
                conv.Input.Add(name + "b");
            conv.Output[0] = batchNorm.Output[0];
            graph.Node.Remove(batchNorm);
            folded++;
        }
        return folded;
    }

    // Step 2: which tensors get a QDQ pair, and which share another tensor's parameters (MaxPool outputs).
    internal sealed record QuantizationPlan(IReadOnlyList<string> Tensors, IReadOnlyDictionary<string, string> SharedWith, IReadOnlyList<string> Calibrated);

    // floatConvolutions: convolutions (by output name) that stay float; onlyConvolution: plan that one convolution alone
    // (no residual additions), to measure its sensitivity.
    internal static QuantizationPlan Plan(GraphProto graph, IReadOnlySet<string>? floatConvolutions = null, string? onlyConvolution = null)
    {
        var initializers = graph.Initializer.Select(t => t.Name).ToHashSet();
        var tensors = new HashSet<string>(StringComparer.Ordinal);
        foreach (var node in graph.Node)
        {
            if (IsQuantizableConv(graph, node))
            {
                if (!initializers.Contains(node.Input[0]) && floatConvolutions?.Contains(node.Output[0]) != true
                    && (onlyConvolution is null || node.Output[0] == onlyConvolution))
                    tensors.Add(node.Input[0]);
            }
            else if (onlyConvolution is null && node.OpType == "Add" && node.Input.Count == 2 && node.Input.All(i => !initializers.Contains(i)))
                tensors.UnionWith(node.Input);
        }
        var shared = new Dictionary<string, string>(StringComparer.Ordinal);
        bool changed;
        do
        {
            changed = false;
            foreach (var pool in graph.Node.Where(n => n.OpType == "MaxPool" && n.Output.Count >= 1 && tensors.Contains(n.Output[0])))
            {
                if (shared.ContainsKey(pool.Output[0]) || (pool.Output.Count > 1 && pool.Output[1].Length > 0))
                    continue;
                tensors.Add(pool.Input[0]);
                shared[pool.Output[0]] = pool.Input[0];
                changed = true;
            }
        }
        while (changed);
        var outputs = graph.Output.Select(o => o.Name).ToHashSet();
        tensors.ExceptWith(outputs);
        var ordered = TopologicalTensors(graph).Where(tensors.Contains).ToList();
        string Root(string t) => shared.TryGetValue(t, out var s) ? Root(s) : t;
        var calibrated = ordered.Select(Root).Distinct().ToList();
        return new QuantizationPlan(ordered, shared.ToDictionary(p => p.Key, p => Root(p.Value)), calibrated);
    }

    private static IEnumerable<string> TopologicalTensors(GraphProto graph) =>
        graph.Input.Select(i => i.Name).Concat(graph.Node.SelectMany(n => n.Output));

    private static bool IsQuantizableConv(GraphProto graph, NodeProto node) =>
        node.OpType == "Conv" && node.Input.Count >= 2
        && Initializer(graph, node.Input[1]) is { Dims.Count: 4, DataType: (int)TensorProto.Types.DataType.Float }
        && (node.Input.Count < 3 || node.Input[2].Length == 0 || Floats(graph, node.Input[2]) is not null);

    // Step 3: ranges of the calibrated tensors over the calibration images.
    internal static Dictionary<string, (float Min, float Max)> Calibrate(ModelProto prepared, IReadOnlyList<string> tensors,
        IReadOnlyList<string> images, int imageSize, QuantizationOptions options, out int used, out int rejected,
        IProgress<(int Done, int Total)>? progress)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(options.BatchSize, 1, nameof(options));
        var probe = prepared.Clone();
        var existing = probe.Graph.Output.Select(o => o.Name).Concat(probe.Graph.Input.Select(i => i.Name)).ToHashSet();
        foreach (var name in tensors.Where(t => !existing.Contains(t)))
            probe.Graph.Output.Add(new ValueInfoProto
            {
                Name = name,
                Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float } },
            });
        var ranges = tensors.ToDictionary(t => t, _ => (Min: float.PositiveInfinity, Max: float.NegativeInfinity), StringComparer.Ordinal);
        using var sessionOptions = OnnxImageFeaturizer.CreateSessionOptions();
        using var session = CreateSession(probe, sessionOptions);
        var passes = options.Method == CalibrationMethod.Percentile ? 2 : 1;
        (used, rejected) = RunCalibration(session, tensors, images, imageSize, options.BatchSize, (t, _, v) => Widen(ranges, t, v),
            progress is null ? null : new Progress<(int Done, int Total)>(p => progress.Report((p.Done, p.Total * passes))));
        if (used == 0)
            throw new InvalidDataException($"None of the {images.Count} calibration images could be read as an image.");
        if (passes == 1)
            return ranges;
        var histograms = tensors.ToDictionary(t => t, _ => new long[HistogramBins], StringComparer.Ordinal);
        RunCalibration(session, tensors, images, imageSize, options.BatchSize, (t, _, v) => Count(histograms[t], ranges[t], v),
            progress is null ? null : new Progress<(int Done, int Total)>(p => progress.Report((p.Total + p.Done, 2 * p.Total))));
        return tensors.ToDictionary(t => t, t => PercentileRange(histograms[t], ranges[t], options.Percentile), StringComparer.Ordinal);
    }

    private const int BiasCorrectionGroup = 4;

    // Empirical bias correction (Nagel et al., "Data-Free Quantization Through Weight Equalization and Bias Correction",
    // ICCV 2019, section 4.2, with measured rather than predicted means): quantisation shifts each convolution's mean output
    // per channel; the shift, measured on calibration images against the float graph, is subtracted from the int32 bias.
    // Convolutions are corrected a few at a time in graph order, so that each group is measured with the groups above it
    // already corrected.
    private static int CorrectBiases(ModelProto reference, ModelProto quantized, IReadOnlyList<string> images, int imageSize, int batchSize)
    {
        var graph = quantized.Graph;
        var convolutions = graph.Node
            .Where(n => n.OpType == "Conv" && n.Input.Count > 2)
            .Select(n => (Conv: n, Bias: graph.Node.FirstOrDefault(d => d.OpType == "DequantizeLinear" && d.Output[0] == n.Input[2])))
            .Where(p => p.Bias is not null && Initializer(graph, p.Bias.Input[0]) is { DataType: (int)TensorProto.Types.DataType.Int32 })
            .ToList();
        if (convolutions.Count == 0 || images.Count == 0)
            return 0;
        var channels = convolutions.ToDictionary(c => c.Conv.Output[0], c => (int)Initializer(graph, c.Bias!.Input[0])!.Dims[0], StringComparer.Ordinal);
        var floatMeans = ChannelMeans(reference, channels, images, imageSize, batchSize);
        for (var start = 0; start < convolutions.Count; start += BiasCorrectionGroup)
        {
            var group = convolutions.Skip(start).Take(BiasCorrectionGroup).ToList();
            var int8Means = ChannelMeans(quantized, group.ToDictionary(c => c.Conv.Output[0], c => channels[c.Conv.Output[0]], StringComparer.Ordinal),
                images, imageSize, batchSize);
            foreach (var (conv, dq) in group)
            {
                var tensor = Initializer(graph, dq!.Input[0])!;
                var scales = Floats(graph, dq.Input[1])!;
                var values = MemoryMarshal.Cast<byte, int>(tensor.RawData.Span).ToArray();
                var shift = int8Means[conv.Output[0]];
                var reference0 = floatMeans[conv.Output[0]];
                for (var c = 0; c < values.Length; c++)
                    values[c] = (int)Math.Clamp(Math.Round(values[c] - (shift[c] - reference0[c]) / scales[c], MidpointRounding.ToEven), int.MinValue, int.MaxValue);
                tensor.RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(values.AsSpan()));
            }
        }
        return convolutions.Count;
    }

    // Mean of each channel of the named [N,C,H,W] tensors over the images.
    private static Dictionary<string, double[]> ChannelMeans(ModelProto model, IReadOnlyDictionary<string, int> channels, IReadOnlyList<string> images,
        int imageSize, int batchSize)
    {
        var tensors = channels.Keys.ToList();
        var probe = model.Clone();
        foreach (var name in tensors)
            probe.Graph.Output.Add(new ValueInfoProto
            {
                Name = name,
                Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float } },
            });
        var sums = new Dictionary<string, double[]>(StringComparer.Ordinal);
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        using var options = OnnxImageFeaturizer.CreateSessionOptions();
        using var session = CreateSession(probe, options);
        RunCalibration(session, tensors, images, imageSize, batchSize, (name, count, values) =>
        {
            var c = channels[name];
            var plane = values.Length / (count * c);
            var sum = sums.TryGetValue(name, out var existing) ? existing : sums[name] = new double[c];
            for (var n = 0; n < count; n++)
                for (var k = 0; k < c; k++)
                    sum[k] += TensorPrimitives.Sum(values.Slice((n * c + k) * plane, plane));
            counts[name] = counts.GetValueOrDefault(name) + (long)count * plane;
        }, null);
        return sums.ToDictionary(p => p.Key, p => p.Value.Select(v => v / counts[p.Key]).ToArray(), StringComparer.Ordinal);
    }

    private const int HistogramBins = 2048;

    // Runs the probe graph over the images in batches and hands every calibrated tensor's values to a visitor.
    private static (int Used, int Rejected) RunCalibration(InferenceSession session, IReadOnlyList<string> tensors, IReadOnlyList<string> images,
        int imageSize, int batchSize, Action<string, int, ReadOnlySpan<float>> visit, IProgress<(int Done, int Total)>? progress)
    {
        var plane = ImagePreprocessor.PixelCount(imageSize);
        var batch = new float[batchSize * plane];
        var outputNames = tensors.Where(t => t != FeaturizerGraph.InputName).ToArray();
        var rangeOfInput = tensors.Contains(FeaturizerGraph.InputName);
        var (used, rejected, count) = (0, 0, 0);
        for (var i = 0; i < images.Count; i++)
        {
            string? problem;
            try
            {
                problem = ImagePreprocessor.TryLoadPixels(images[i], imageSize, batch.AsSpan(count * plane, plane));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                problem = e.Message;
            }
            if (problem is null)
                count++;
            else
                rejected++;
            if (count == batchSize || (i == images.Count - 1 && count > 0))
            {
                var memory = new Memory<float>(batch, 0, count * plane);
                using var input = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, memory, [count, 3, imageSize, imageSize]);
                using var runOptions = new RunOptions();
                using var outputs = session.Run(runOptions, [FeaturizerGraph.InputName], [input], outputNames);
                for (var o = 0; o < outputNames.Length; o++)
                    visit(outputNames[o], count, outputs[o].GetTensorDataAsSpan<float>());
                if (rangeOfInput)
                    visit(FeaturizerGraph.InputName, count, batch.AsSpan(0, count * plane));
                used += count;
                count = 0;
            }
            progress?.Report((i + 1, images.Count));
        }
        return (used, rejected);
    }

    private static void Count(long[] histogram, (float Min, float Max) range, ReadOnlySpan<float> values)
    {
        var width = range.Max - range.Min;
        if (!(width > 0))
            return;
        var scale = histogram.Length / width;
        var last = histogram.Length - 1;
        foreach (var v in values)
            histogram[Math.Clamp((int)((v - range.Min) * scale), 0, last)]++;
    }

    // The range holding `percentile` % of the values on each side of the histogram (the lower tail clipped at 100 − p %).
    internal static (float Min, float Max) PercentileRange(long[] histogram, (float Min, float Max) range, double percentile)
    {
        var total = histogram.Sum();
        if (total == 0 || !(range.Max > range.Min))
            return range;
        var width = (range.Max - range.Min) / histogram.Length;
        var lowCount = total * (1 - percentile / 100);
        var highCount = total * percentile / 100;
        long cumulative = 0;
        int? low = null, high = null;
        for (var b = 0; b < histogram.Length && high is null; b++)
        {
            cumulative += histogram[b];
            if (low is null && cumulative > lowCount)
                low = b;
            if (cumulative >= highCount)
                high = b;
        }
        var min = low is 0 ? range.Min : range.Min + low!.Value * width;
        var max = high is { } h ? range.Min + (h + 1) * width : range.Max;
        return (min, Math.Min(max, range.Max));
    }

    private static InferenceSession CreateSession(ModelProto model, SessionOptions options)
    {
        try
        {
            return new InferenceSession(model.ToByteArray(), options);
        }
        catch (OnnxRuntimeException e)
        {
            throw new InvalidDataException($"ONNX Runtime cannot load the graph prepared for quantisation: {e.Message}", e);
        }
    }

    private static void Widen(Dictionary<string, (float Min, float Max)> ranges, string tensor, ReadOnlySpan<float> values)
    {
        if (values.IsEmpty)
            return;
        var (min, max) = ranges[tensor];
        ranges[tensor] = (Math.Min(min, TensorPrimitives.Min(values)), Math.Max(max, TensorPrimitives.Max(values)));
    }

    // Mixed precision: quantise one convolution at a time (its input and weights), measure how far the graph's output moves
    // from the float graph's (mean 1 − cosine over the images) and return the `count` convolutions that move it most.
    private static List<string> MostSensitive(ModelProto prepared, IReadOnlyDictionary<string, (float Min, float Max)> ranges,
        IReadOnlyList<string> images, int imageSize, int batchSize, int count, int weightLevels)
    {
        var convolutions = prepared.Graph.Node.Where(n => IsQuantizableConv(prepared.Graph, n)).Select(n => n.Output[0]).ToList();
        if (count >= convolutions.Count)
            return convolutions;
        var reference = Outputs(prepared, images, imageSize, batchSize);
        var sensitivity = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var conv in convolutions)
        {
            var single = prepared.Clone();
            var plan = Plan(single.Graph, onlyConvolution: conv);
            var others = convolutions.Where(c => c != conv).ToHashSet(StringComparer.Ordinal);
            InsertQdq(single.Graph, plan, ranges, others, weightLevels);
            var outputs = Outputs(single, images, imageSize, batchSize);
            sensitivity[conv] = reference.Zip(outputs, (a, b) => 1 - TensorPrimitives.CosineSimilarity(a, b)).Average();
        }
        return sensitivity.OrderByDescending(p => p.Value).ThenBy(p => convolutions.IndexOf(p.Key)).Take(count).Select(p => p.Key).ToList();
    }

    // The graph's output for each readable image, one row per image.
    private static List<float[]> Outputs(ModelProto model, IReadOnlyList<string> images, int imageSize, int batchSize)
    {
        var rows = new List<float[]>();
        using var options = OnnxImageFeaturizer.CreateSessionOptions();
        using var session = CreateSession(model, options);
        var output = model.Graph.Output[0].Name;
        RunCalibration(session, [output], images, imageSize, batchSize, (_, n, values) =>
        {
            var width = values.Length / n;
            for (var i = 0; i < n; i++)
                rows.Add(values.Slice(i * width, width).ToArray());
        }, null);
        return rows;
    }

    // Step 4: QuantizeLinear → DequantizeLinear on the planned tensors, int8 weights and int32 biases on the convolutions.
    internal static int InsertQdq(GraphProto graph, QuantizationPlan plan, IReadOnlyDictionary<string, (float Min, float Max)> ranges,
        IReadOnlySet<string>? floatConvolutions, int weightLevels)
    {
        var parameters = new Dictionary<string, (string Scale, string ZeroPoint, float ScaleValue)>(StringComparer.Ordinal);
        var index = 0;
        foreach (var root in plan.Calibrated)
        {
            var (min, max) = ranges[root];
            var (scale, zeroPoint) = ActivationParameters(min, max);
            var name = $"{Prefix}a{index++}_";
            graph.Initializer.Add(Scalar(name + "scale", scale));
            graph.Initializer.Add(new TensorProto
            {
                Name = name + "zero_point", DataType = (int)TensorProto.Types.DataType.Uint8, RawData = ByteString.CopyFrom(zeroPoint),
            });
            parameters[root] = (name + "scale", name + "zero_point", scale);
        }
        (string Scale, string ZeroPoint, float ScaleValue) ParametersOf(string tensor) =>
            parameters[plan.SharedWith.TryGetValue(tensor, out var root) ? root : tensor];

        var dequantized = plan.Tensors.ToDictionary(t => t, t => $"{Prefix}{Sanitize(t)}_dq", StringComparer.Ordinal);
        var original = graph.Node.ToList();
        var convolutions = 0;
        var rebuilt = new List<NodeProto>();
        void EmitPair(string tensor)
        {
            var (scale, zeroPoint, _) = ParametersOf(tensor);
            var quantized = $"{Prefix}{Sanitize(tensor)}_q";
            rebuilt.Add(FeaturizerGraph.Node("QuantizeLinear", quantized, [tensor, scale, zeroPoint], [quantized]));
            rebuilt.Add(FeaturizerGraph.Node("DequantizeLinear", dequantized[tensor], [quantized, scale, zeroPoint], [dequantized[tensor]]));
        }
        foreach (var input in graph.Input.Where(i => dequantized.ContainsKey(i.Name)))
            EmitPair(input.Name);
        foreach (var node in original)
        {
            if (IsQuantizableConv(graph, node) && floatConvolutions?.Contains(node.Output[0]) == true)
            {
                rebuilt.Add(node);
                foreach (var output in node.Output.Where(dequantized.ContainsKey))
                    EmitPair(output);
                continue;
            }
            for (var i = 0; i < node.Input.Count; i++)
                if (dequantized.TryGetValue(node.Input[i], out var replacement))
                    node.Input[i] = replacement;
            if (IsQuantizableConv(graph, node) && node.Input[0] is var x && dequantized.ContainsValue(x))
            {
                var source = dequantized.First(p => p.Value == x).Key;
                QuantizeConvolution(graph, node, ParametersOf(source).ScaleValue, $"{Prefix}c{convolutions++}_", rebuilt, weightLevels);
            }
            rebuilt.Add(node);
            foreach (var output in node.Output.Where(dequantized.ContainsKey))
                EmitPair(output);
        }
        graph.Node.Clear();
        graph.Node.AddRange(rebuilt);
        RemoveUnusedInitializers(graph);
        return convolutions;
    }

    internal static (float Scale, byte ZeroPoint) ActivationParameters(float min, float max)
    {
        if (!float.IsFinite(min) || !float.IsFinite(max))
            (min, max) = (0, 0);
        var low = Math.Min(min, 0.0);
        var high = Math.Max(max, 0.0);
        var scale = (high - low) / 255.0;
        if (scale <= 0 || !double.IsFinite(scale))
            return (1f, 0);
        return ((float)scale, (byte)Math.Clamp(Math.Round(-low / scale, MidpointRounding.ToEven), 0, 255));
    }

    private static void QuantizeConvolution(GraphProto graph, NodeProto conv, float inputScale, string name, List<NodeProto> nodes, int weightLevels)
    {
        var weightTensor = Initializer(graph, conv.Input[1])!;
        var outputs = (int)weightTensor.Dims[0];
        var weights = FeaturizerGraph.TensorValues(weightTensor);
        var perChannel = weights.Length / outputs;
        var quantized = new sbyte[weights.Length];
        var scales = new float[outputs];
        for (var o = 0; o < outputs; o++)
        {
            var span = weights.AsSpan(o * perChannel, perChannel);
            var largest = 0f;
            foreach (var w in span)
                largest = Math.Max(largest, Math.Abs(w));
            var scale = largest > 0 ? largest / weightLevels : 1f;
            scales[o] = scale;
            for (var k = 0; k < perChannel; k++)
                quantized[o * perChannel + k] = (sbyte)Math.Clamp(Math.Round(span[k] / scale, MidpointRounding.ToEven), -weightLevels, weightLevels);
        }
        graph.Initializer.Add(Int8Tensor(name + "w", weightTensor.Dims.ToArray(), quantized));
        graph.Initializer.Add(FeaturizerGraph.Tensor(name + "w_scale", [outputs], scales));
        graph.Initializer.Add(Int8Tensor(name + "w_zero_point", [outputs], new sbyte[outputs]));
        nodes.Add(FeaturizerGraph.Node("DequantizeLinear", name + "w_dq", [name + "w", name + "w_scale", name + "w_zero_point"], [name + "w_dq"], Axis(0)));
        conv.Input[1] = name + "w_dq";
        if (conv.Input.Count > 2 && conv.Input[2].Length > 0)
        {
            var bias = Floats(graph, conv.Input[2])!;
            var biasScales = new float[outputs];
            var biasValues = new int[outputs];
            for (var o = 0; o < outputs; o++)
            {
                biasScales[o] = inputScale * scales[o];
                biasValues[o] = (int)Math.Clamp(Math.Round(bias[o] / (double)biasScales[o], MidpointRounding.ToEven), int.MinValue, int.MaxValue);
            }
            var biasTensor = new TensorProto
            {
                Name = name + "b", DataType = (int)TensorProto.Types.DataType.Int32, RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(biasValues.AsSpan())),
            };
            biasTensor.Dims.Add(outputs);
            graph.Initializer.Add(biasTensor);
            graph.Initializer.Add(FeaturizerGraph.Tensor(name + "b_scale", [outputs], biasScales));
            nodes.Add(FeaturizerGraph.Node("DequantizeLinear", name + "b_dq", [name + "b", name + "b_scale"], [name + "b_dq"], Axis(0)));
            conv.Input[2] = name + "b_dq";
        }
    }

    private static AttributeProto Axis(long axis) => new() { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = axis };

    private static TensorProto Scalar(string name, float value) =>
        new() { Name = name, DataType = (int)TensorProto.Types.DataType.Float, RawData = ByteString.CopyFrom(BitConverter.GetBytes(value)) };

    private static TensorProto Int8Tensor(string name, long[] dims, sbyte[] values)
    {
        var tensor = new TensorProto
        {
            Name = name, DataType = (int)TensorProto.Types.DataType.Int8, RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(values.AsSpan())),
        };
        tensor.Dims.AddRange(dims);
        return tensor;
    }

    private static string Sanitize(string name) => new(name.Select(c => char.IsAsciiLetterOrDigit(c) || c == '_' ? c : '_').ToArray());

    private static void RemoveUnusedInitializers(GraphProto graph)
    {
        var used = graph.Node.SelectMany(n => n.Input).Concat(graph.Output.Select(o => o.Name)).ToHashSet();
        foreach (var tensor in graph.Initializer.Where(t => !used.Contains(t.Name)).ToList())
            graph.Initializer.Remove(tensor);
    }

    private static List<NodeProto> Consumers(GraphProto graph, string tensor) => InferenceGraph.Consumers(graph, tensor);

    private static TensorProto? Initializer(GraphProto graph, string name) => InferenceGraph.Initializer(graph, name);

    private static float[]? Floats(GraphProto graph, string name) => InferenceGraph.Floats(graph, name);
}
