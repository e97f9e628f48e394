using System.Security.Cryptography;
using System.Text;
using Google.Protobuf;
using MLTransfer.IO;
using Onnx;

namespace MLTransfer.Backbones;

/// <summary>Which rewrites <see cref="InferenceGraph"/> applies to a fused backbone graph.</summary>
public sealed class InferenceGraphOptions
{
    /// <summary>
    /// Whether to fold the leading normalisation convolution and mean-image subtraction into the first convolution's
    /// weights and one subtraction on the raw pixels. The default value is true.
    /// </summary>
    public bool FoldInputNormalization { get; set; } = true;

    /// <summary>
    /// Smallest input and output channel count of a 3×3, stride-1 convolution rewritten as Winograd F(2×2,3×3);
    /// 0 disables the rewrite. The default value is 256 (measured: below that, the batched matrix products of the
    /// Winograd form are slower than ONNX Runtime's direct NCHWc convolution on this kind of CPU).
    /// </summary>
    public int WinogradMinChannels { get; set; } = 256;

    /// <summary>
    /// Output tile of the Winograd form: 4 for F(4×4,3×3) (4× fewer multiplications than the direct convolution; on ResNet18
    /// features the rounding differences reach ~2e-5) or 2 for F(2×2,3×3) (2.25× fewer, differences ~5e-6). The default
    /// value is 4 (measured at 224 px on 2 cores: 61 images/s against 55 for tile 2 and 53 for the plain graph).
    /// </summary>
    public int WinogradTileSize { get; set; } = 4;

    /// <summary>Smallest spatial size (height = width) of a convolution's input for the Winograd rewrite. The default value is 7.</summary>
    public int WinogradMinSize { get; set; } = 7;

    /// <summary>A short text naming these settings, part of the optimised graph's file name and of cache keys.</summary>
    public string Key => $"f{(FoldInputNormalization ? 1 : 0)}w{WinogradMinChannels}s{WinogradMinSize}t{WinogradTileSize}";
}

/// <summary>What <see cref="InferenceGraph.Optimize"/> changed.</summary>
/// <param name="FoldedInputNormalization">Whether the input normalisation was folded into the first convolution.</param>
/// <param name="WinogradConvolutions">How many convolutions were rewritten in Winograd form.</param>
public sealed record InferenceGraphSummary(bool FoldedInputNormalization, int WinogradConvolutions);

/// <summary>
/// Rewrites a fused backbone graph (<see cref="FeaturizerGraph"/>) into an equivalent one that ONNX Runtime runs faster on
/// a CPU, for the featurisation engine's own session. The exported models keep the plain fused graph; the two compute the
/// same function and their features differ only by float rounding (~2e-5 on ResNet18 features, tested ≤ 1e-4).
/// </summary>
/// <remarks>
/// <para>Two rewrites, both exact in real arithmetic:</para>
/// <list type="bullet">
/// <item><b>Input normalisation folding.</b> The fused graph starts with a 1×1 convolution <c>y = A·x + β</c> (channel order,
/// scale, mean/std), an optional mean-image subtraction <c>y − M</c>, then the network's first convolution <c>W</c>. That equals
/// the first convolution with weights <c>W·A</c> applied to <c>x − A⁻¹(M − β)</c>, zero padding included, which removes a
/// full-resolution convolution and a layout conversion.</item>
/// <item><b>Winograd F(m×m,3×3)</b> (Lavin &amp; Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR 2016) for wide
/// 3×3 stride-1 convolutions, m = <see cref="InferenceGraphOptions.WinogradTileSize"/>: each (m+2)×(m+2) input tile is
/// transformed (<c>Bᵀ d B</c>, a fixed convolution of stride m), the (m+2)² transformed planes are multiplied by the
/// pre-transformed weights <c>G g Gᵀ</c> in one batched matrix product, and the output transform (<c>Aᵀ M A</c>, a 1×1
/// convolution) and a depth-to-space give the m×m output tiles. A following BatchNormalization is folded into the weights.
/// F(4×4,3×3) needs 4× fewer multiplications than the direct convolution, F(2×2,3×3) 2.25×.</item>
/// </list>
/// </remarks>
public static class InferenceGraph
{
    /// <summary>Version of the rewrites; part of file names and cache keys so that a change never mixes old and new results.</summary>
    public const int Version = 1;

    private const string Prefix = "mltransfer_fast_";

    private static readonly WinogradForm F2 = new(2,
        new double[,] { { 1, 0, -1, 0 }, { 0, 1, 1, 0 }, { 0, -1, 1, 0 }, { 0, 1, 0, -1 } },
        new double[,] { { 1, 0, 0 }, { 0.5, 0.5, 0.5 }, { 0.5, -0.5, 0.5 }, { 0, 0, 1 } },
        new double[,] { { 1, 1, 1, 0 }, { 0, 1, -1, -1 } });

    private static readonly WinogradForm F4 = new(4,
        new double[,]
        {
            { 4, 0, -5, 0, 1, 0 }, { 0, -4, -4, 1, 1, 0 }, { 0, 4, -4, -1, 1, 0 },
            { 0, -2, -1, 2, 1, 0 }, { 0, 2, -1, -2, 1, 0 }, { 0, 4, 0, -5, 0, 1 },
        },
        new double[,]
        {
            { 1 / 4.0, 0, 0 }, { -1 / 6.0, -1 / 6.0, -1 / 6.0 }, { -1 / 6.0, 1 / 6.0, -1 / 6.0 },
            { 1 / 24.0, 1 / 12.0, 1 / 6.0 }, { 1 / 24.0, -1 / 12.0, 1 / 6.0 }, { 0, 0, 1 },
        },
        new double[,] { { 1, 1, 1, 1, 1, 0 }, { 0, 1, -1, 2, -2, 0 }, { 0, 1, 1, 4, 4, 0 }, { 0, 1, -1, 8, -8, 1 } });

    // Winograd F(m×m, 3×3): input transform Bᵀ (n × n), kernel transform G (n × 3), output transform Aᵀ (m × n), n = m + 2.
    private sealed record WinogradForm(int Tile, double[,] InputTransform, double[,] KernelTransform, double[,] OutputTransform)
    {
        public int Points => Tile + 2;
    }

    /// <summary>Returns an optimised copy of a fused graph; the argument is not changed.</summary>
    /// <param name="fused">A graph built by <see cref="FeaturizerGraph.Build"/> (or any graph with input <see cref="FeaturizerGraph.InputName"/>).</param>
    /// <param name="imageSize">Square input size the graph is run at, used to work out each convolution's spatial size.</param>
    /// <param name="options">Which rewrites to apply; null means the defaults.</param>
    /// <param name="summary">What was changed.</param>
    public static ModelProto Optimize(ModelProto fused, int imageSize, InferenceGraphOptions? options, out InferenceGraphSummary summary)
    {
        ArgumentNullException.ThrowIfNull(fused);
        ArgumentOutOfRangeException.ThrowIfLessThan(imageSize, 1);
        options ??= new InferenceGraphOptions();
        if (options.WinogradTileSize is not (2 or 4))
            throw new ArgumentOutOfRangeException(nameof(options), options.WinogradTileSize, "WinogradTileSize must be 2 or 4.");
        var model = fused.Clone();
        var graph = model.Graph;
        var folded = options.FoldInputNormalization && FoldInputNormalization(graph);
        var opset = model.OpsetImport.Where(o => o.Domain is "" or "ai.onnx").Select(o => o.Version).DefaultIfEmpty(0).Max();
        var rewritten = options.WinogradMinChannels > 0 && opset >= 5 ? RewriteWinograd(graph, imageSize, options, opset) : 0;
        if (folded || rewritten > 0)
            RemoveUnused(graph);
        summary = new InferenceGraphSummary(folded, rewritten);
        return model;
    }

    /// <summary>
    /// Names the optimised form for these options (rewrite version and settings): part of the optimised graph's file name and
    /// of the bottleneck-cache context of features computed with it.
    /// </summary>
    /// <param name="options">Which rewrites are applied; null means the defaults.</param>
    public static string VariantName(InferenceGraphOptions? options = null) => $"fast{Version}-{(options ?? new InferenceGraphOptions()).Key}";

    /// <summary>
    /// Writes the optimised form of a fused graph file next to it (once; later calls reuse the file) and returns its path.
    /// The file is written atomically.
    /// </summary>
    /// <param name="fusedGraphPath">The fused graph file.</param>
    /// <param name="imageSize">Square input size the graph is run at.</param>
    /// <param name="options">Which rewrites to apply; null means the defaults.</param>
    public static string Materialize(string fusedGraphPath, int imageSize, InferenceGraphOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(fusedGraphPath);
        options ??= new InferenceGraphOptions();
        var source = new FileInfo(fusedGraphPath);
        var identity = $"{VariantName(options)}|{source.FullName}|{source.Length}|{source.LastWriteTimeUtc.Ticks}|{imageSize}";
        var key = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(identity)))[..12];
        var path = Path.Combine(source.DirectoryName ?? ".", $"{Path.GetFileNameWithoutExtension(source.Name)}-fast{Version}-{key}.onnx");
        if (!File.Exists(path))
        {
            var optimized = Optimize(FeaturizerGraph.Load(fusedGraphPath), imageSize, options, out _);
            AtomicFile.Write(path, s => optimized.WriteTo(s));
            FeaturizerGraph.TrimFolder(Path.GetDirectoryName(path)!, FeaturizerGraph.DefaultMaxFolderBytes, keep: path);
        }
        return path;
    }

    private static bool FoldInputNormalization(GraphProto graph)
    {
        var normalize = graph.Node.FirstOrDefault(n => n.Name == FeaturizerGraph.NormalizeNodeName && n.OpType == "Conv" && n.Input.Count == 3);
        if (normalize is null || normalize.Input[0] != FeaturizerGraph.InputName)
            return false;
        var a = Floats(graph, normalize.Input[1]);
        var beta = Floats(graph, normalize.Input[2]);
        if (a is not { Length: 9 } || beta is not { Length: 3 })
            return false;
        var consumers = Consumers(graph, normalize.Output[0]);
        if (consumers.Count != 1)
            return false;
        NodeProto? subtract = null;
        float[]? mean = null;
        long[] meanDims = [1, 3, 1, 1];
        var next = consumers[0];
        if (next.OpType == "Sub" && next.Input[0] == normalize.Output[0])
        {
            subtract = next;
            if (Initializer(graph, next.Input[1]) is not { DataType: (int)TensorProto.Types.DataType.Float, Dims: [1, 3, _, _] } meanTensor)
                return false;
            mean = FeaturizerGraph.TensorValues(meanTensor);
            meanDims = meanTensor.Dims.ToArray();
            consumers = Consumers(graph, next.Output[0]);
            if (consumers.Count != 1)
                return false;
        }
        var first = consumers[0];
        var weightTensor = first.OpType == "Conv" && first.Input.Count >= 2 && first.Input[0] == (subtract ?? normalize).Output[0]
            ? Initializer(graph, first.Input[1]) : null;
        if (weightTensor is null || weightTensor.Dims.Count != 4 || weightTensor.Dims[1] != 3 || Int(first, "group", 1) != 1
            || graph.Output.Any(o => o.Name == normalize.Output[0] || o.Name == subtract?.Output[0]))
            return false;
        if (!Invert3(a, out var inverse))
            return false;

        var plane = mean is null ? 1 : mean.Length / 3;
        var centre = new float[3 * plane];
        for (var c = 0; c < 3; c++)
            for (var p = 0; p < plane; p++)
            {
                var sum = 0.0;
                for (var k = 0; k < 3; k++)
                    sum += inverse[c, k] * ((mean?[k * plane + p] ?? 0f) - beta[k]);
                centre[c * plane + p] = (float)sum;
            }
        var weights = FeaturizerGraph.TensorValues(weightTensor);
        var outputs = (int)weightTensor.Dims[0];
        var taps = (int)(weightTensor.Dims[2] * weightTensor.Dims[3]);
        var folded = new float[weights.Length];
        for (var o = 0; o < outputs; o++)
            for (var c = 0; c < 3; c++)
                for (var t = 0; t < taps; t++)
                {
                    var sum = 0.0;
                    for (var k = 0; k < 3; k++)
                        sum += (double)weights[(o * 3 + k) * taps + t] * a[k * 3 + c];
                    folded[(o * 3 + c) * taps + t] = (float)sum;
                }

        graph.Initializer.Add(FeaturizerGraph.Tensor(Prefix + "centre", meanDims, centre));
        graph.Initializer.Add(FeaturizerGraph.Tensor(Prefix + "first_w", weightTensor.Dims.ToArray(), folded));
        var centred = Prefix + "centred";
        var index = graph.Node.IndexOf(normalize);
        graph.Node.Remove(normalize);
        if (subtract is not null)
            graph.Node.Remove(subtract);
        graph.Node.Insert(index, FeaturizerGraph.Node("Sub", Prefix + "centre_pixels", [FeaturizerGraph.InputName, Prefix + "centre"], [centred]));
        first.Input[0] = centred;
        first.Input[1] = Prefix + "first_w";
        return true;
    }

    private static int RewriteWinograd(GraphProto graph, int imageSize, InferenceGraphOptions options, long opset)
    {
        var sizes = SpatialSizes(graph, imageSize);
        var count = 0;
        foreach (var conv in graph.Node.Where(n => n.OpType == "Conv").ToList())
        {
            if (conv.Input.Count < 2 || Initializer(graph, conv.Input[1]) is not { Dims.Count: 4 } weightTensor
                || weightTensor.Dims[2] != 3 || weightTensor.Dims[3] != 3)
                continue;
            var outputs = (int)weightTensor.Dims[0];
            var inputs = (int)weightTensor.Dims[1];
            if (inputs < options.WinogradMinChannels || outputs < options.WinogradMinChannels || !IsPlainSamePadding(conv)
                || !sizes.TryGetValue(conv.Input[0], out var size) || size < options.WinogradMinSize
                || graph.Output.Any(o => o.Name == conv.Output[0]))
                continue;
            var bias = conv.Input.Count > 2 ? Floats(graph, conv.Input[2]) : new float[outputs];
            if (bias is null || bias.Length != outputs)
                continue;
            var scale = Enumerable.Repeat(1.0, outputs).ToArray();
            var shift = bias.Select(b => (double)b).ToArray();
            var output = conv.Output[0];
            var consumers = Consumers(graph, output);
            NodeProto? batchNorm = null;
            if (consumers.Count == 1 && consumers[0].OpType == "BatchNormalization" && consumers[0].Input[0] == output
                && BatchNormAffine(graph, consumers[0], outputs) is { } affine)
            {
                batchNorm = consumers[0];
                for (var o = 0; o < outputs; o++)
                {
                    shift[o] = shift[o] * affine.Scale[o] + affine.Shift[o];
                    scale[o] = affine.Scale[o];
                }
                output = batchNorm.Output[0];
            }

            var name = $"{Prefix}w{count}_";
            var nodes = WinogradNodes(graph, options.WinogradTileSize == 4 ? F4 : F2, conv.Input[0], output, name,
                FeaturizerGraph.TensorValues(weightTensor), scale, shift, inputs, outputs, size, opset);
            var index = graph.Node.IndexOf(conv);
            graph.Node.Remove(conv);
            if (batchNorm is not null)
                graph.Node.Remove(batchNorm);
            for (var i = nodes.Count - 1; i >= 0; i--)
                graph.Node.Insert(index, nodes[i]);
            count++;
        }
        return count;
    }

    private static List<NodeProto> WinogradNodes(GraphProto graph, WinogradForm form, string input, string output, string name, float[] weights,
        double[] scale, double[] shift, int inputs, int outputs, int size, long opset)
    {
        var (m, n) = (form.Tile, form.Points);
        var tiles = (size + m - 1) / m;
        var padEnd = m * tiles + 1 - size;
        var (inputTransform, outputTransform) = EnsureTransformInitializers(graph, form);
        var transformed = new float[n * n * outputs * inputs];
        for (var o = 0; o < outputs; o++)
            for (var c = 0; c < inputs; c++)
            {
                var offset = (o * inputs + c) * 9;
                for (var a = 0; a < n; a++)
                    for (var b = 0; b < n; b++)
                    {
                        var sum = 0.0;
                        for (var i = 0; i < 3; i++)
                            for (var j = 0; j < 3; j++)
                                sum += form.KernelTransform[a, i] * weights[offset + i * 3 + j] * form.KernelTransform[b, j];
                        transformed[((a * n + b) * outputs + o) * inputs + c] = (float)(sum * scale[o]);
                    }
            }
        graph.Initializer.Add(FeaturizerGraph.Tensor(name + "u", [n * n, outputs, inputs], transformed));
        graph.Initializer.Add(FeaturizerGraph.Tensor(name + "bias", [1, outputs, 1, 1], shift.Select(v => (float)v).ToArray()));
        var squares = tiles * tiles;
        Shape(graph, name + "s_planes", -1, 1, size, size);
        Shape(graph, name + "s_tiles", -1, inputs, n * n, squares);
        Shape(graph, name + "s_gemm_in", n * n, inputs, -1);
        Shape(graph, name + "s_gemm_out", n * n, outputs, -1, squares);
        Shape(graph, name + "s_out_tiles", -1, n * n, tiles, tiles);
        Shape(graph, name + "s_result", -1, outputs, m * tiles, m * tiles);
        var nodes = new List<NodeProto>
        {
            FeaturizerGraph.Node("Reshape", name + "planes", [input, name + "s_planes"], [name + "planes"]),
            FeaturizerGraph.Node("Conv", name + "input_transform", [name + "planes", inputTransform], [name + "v"],
                Ints("kernel_shape", n, n), Ints("strides", m, m), Ints("pads", 1, 1, padEnd, padEnd)),
            FeaturizerGraph.Node("Reshape", name + "tiles", [name + "v", name + "s_tiles"], [name + "tiles"]),
            FeaturizerGraph.Node("Transpose", name + "to_gemm", [name + "tiles"], [name + "to_gemm"], Ints("perm", 2, 1, 0, 3)),
            FeaturizerGraph.Node("Reshape", name + "gemm_in", [name + "to_gemm", name + "s_gemm_in"], [name + "gemm_in"]),
            FeaturizerGraph.Node("MatMul", name + "gemm", [name + "u", name + "gemm_in"], [name + "m"]),
            FeaturizerGraph.Node("Reshape", name + "gemm_out", [name + "m", name + "s_gemm_out"], [name + "gemm_out"]),
            FeaturizerGraph.Node("Transpose", name + "from_gemm", [name + "gemm_out"], [name + "from_gemm"], Ints("perm", 2, 1, 0, 3)),
            FeaturizerGraph.Node("Reshape", name + "out_tiles", [name + "from_gemm", name + "s_out_tiles"], [name + "out_tiles"]),
            FeaturizerGraph.Node("Conv", name + "output_transform", [name + "out_tiles", outputTransform], [name + "y"],
                Ints("kernel_shape", 1, 1)),
            FeaturizerGraph.Node("DepthToSpace", name + "interleave", [name + "y"], [name + "interleaved"],
                new AttributeProto { Name = "blocksize", Type = AttributeProto.Types.AttributeType.Int, I = m }),
            FeaturizerGraph.Node("Reshape", name + "result", [name + "interleaved", name + "s_result"], [name + "result"]),
        };
        var last = name + "result";
        if (m * tiles != size)
        {
            if (opset >= 10)
            {
                Shape(graph, name + "crop_starts", 0, 0);
                Shape(graph, name + "crop_ends", size, size);
                Shape(graph, name + "crop_axes", 2, 3);
                nodes.Add(FeaturizerGraph.Node("Slice", name + "crop", [last, name + "crop_starts", name + "crop_ends", name + "crop_axes"], [name + "crop"]));
            }
            else
            {
                nodes.Add(FeaturizerGraph.Node("Slice", name + "crop", [last], [name + "crop"],
                    Ints("starts", 0, 0), Ints("ends", size, size), Ints("axes", 2, 3)));
            }
            last = name + "crop";
        }
        nodes.Add(FeaturizerGraph.Node("Add", name + "add_bias", [last, name + "bias"], [output]));
        return nodes;
    }

    private static (string Input, string Output) EnsureTransformInitializers(GraphProto graph, WinogradForm form)
    {
        var (m, n) = (form.Tile, form.Points);
        var names = ($"{Prefix}input_transform_f{m}", $"{Prefix}output_transform_f{m}");
        if (Initializer(graph, names.Item1) is null)
        {
            graph.Initializer.Add(FeaturizerGraph.Tensor(names.Item1, [n * n, 1, n, n], OuterProducts(form.InputTransform)));
            graph.Initializer.Add(FeaturizerGraph.Tensor(names.Item2, [m * m, n * n, 1, 1], OuterProducts(form.OutputTransform)));
        }
        return names;
    }

    // For a matrix X (r × c), the r² kernels X[a,·] ⊗ X[b,·], each c × c, laid out [(a,b), (i,j)]: the 2-D form of the 1-D transform X.
    private static float[] OuterProducts(double[,] matrix)
    {
        var rows = matrix.GetLength(0);
        var columns = matrix.GetLength(1);
        var values = new float[rows * rows * columns * columns];
        for (var a = 0; a < rows; a++)
            for (var b = 0; b < rows; b++)
                for (var i = 0; i < columns; i++)
                    for (var j = 0; j < columns; j++)
                        values[((a * rows + b) * columns + i) * columns + j] = (float)(matrix[a, i] * matrix[b, j]);
        return values;
    }

    private static (double[] Scale, double[] Shift)? BatchNormAffine(GraphProto graph, NodeProto node, int channels)
    {
        if (node.Input.Count < 5 || node.Output.Count < 1)
            return null;
        var gamma = Floats(graph, node.Input[1]);
        var beta = Floats(graph, node.Input[2]);
        var mean = Floats(graph, node.Input[3]);
        var variance = Floats(graph, node.Input[4]);
        if (gamma?.Length != channels || beta?.Length != channels || mean?.Length != channels || variance?.Length != channels)
            return null;
        var epsilon = node.Attribute.FirstOrDefault(a => a.Name == "epsilon")?.F ?? 1e-5f;
        var scale = new double[channels];
        var shift = new double[channels];
        for (var c = 0; c < channels; c++)
        {
            scale[c] = gamma[c] / Math.Sqrt(variance[c] + (double)epsilon);
            shift[c] = beta[c] - mean[c] * scale[c];
        }
        return (scale, shift);
    }

    // Height (= width) of every tensor whose size follows from the input's through Conv, pooling and element-wise ops.
    private static Dictionary<string, int> SpatialSizes(GraphProto graph, int imageSize)
    {
        var sizes = new Dictionary<string, int> { [FeaturizerGraph.InputName] = imageSize };
        foreach (var node in graph.Node)
        {
            int? result = null;
            switch (node.OpType)
            {
                case "Conv" or "MaxPool" or "AveragePool" when node.Input.Count > 0 && sizes.TryGetValue(node.Input[0], out var h):
                    if (Text(node, "auto_pad") is { } pad && pad != "NOTSET")
                        break;
                    var kernel = node.OpType == "Conv"
                        ? Initializer(graph, node.Input[1]) is { Dims.Count: 4 } w && w.Dims[2] == w.Dims[3] ? w.Dims[2] : -1
                        : Ints(node, "kernel_shape") is [var kh, var kw] && kh == kw ? kh : -1;
                    var strides = Ints(node, "strides") ?? [1, 1];
                    var pads = Ints(node, "pads") ?? [0, 0, 0, 0];
                    var dilations = Ints(node, "dilations") ?? [1, 1];
                    if (kernel < 1 || strides.Length != 2 || strides[0] != strides[1] || pads.Length != 4 || pads[0] != pads[1] || pads[2] != pads[3]
                        || dilations.Length != 2 || dilations[0] != dilations[1])
                        break;
                    var span = h + pads[0] + pads[2] - dilations[0] * (kernel - 1) - 1;
                    result = (int)((Int(node, "ceil_mode", 0) == 1 ? (span + strides[0] - 1) / strides[0] : span / strides[0]) + 1);
                    break;
                case "GlobalAveragePool" or "GlobalMaxPool":
                    result = 1;
                    break;
                case "BatchNormalization" or "Relu" or "LeakyRelu" or "Clip" or "Sigmoid" or "Tanh" or "Add" or "Sub" or "Mul" or "Sum"
                    or "Identity" or "Dropout":
                    foreach (var name in node.Input)
                        if (sizes.TryGetValue(name, out var s))
                        {
                            result = s;
                            break;
                        }
                    break;
            }
            if (result is { } value)
                sizes[node.Output[0]] = value;
        }
        return sizes;
    }

    private static bool IsPlainSamePadding(NodeProto conv) =>
        Int(conv, "group", 1) == 1
        && (Text(conv, "auto_pad") ?? "NOTSET") == "NOTSET"
        && (Ints(conv, "strides") ?? [1, 1]).All(s => s == 1)
        && (Ints(conv, "dilations") ?? [1, 1]).All(d => d == 1)
        && Ints(conv, "pads") is [1, 1, 1, 1];

    private static void RemoveUnused(GraphProto graph)
    {
        var used = graph.Node.SelectMany(n => n.Input).Concat(graph.Output.Select(o => o.Name)).ToHashSet();
        foreach (var tensor in graph.Initializer.Where(t => !used.Contains(t.Name)).ToList())
            graph.Initializer.Remove(tensor);
        foreach (var input in graph.Input.Where(i => !used.Contains(i.Name) && i.Name != FeaturizerGraph.InputName).ToList())
            graph.Input.Remove(input);
    }

    private static bool Invert3(float[] m, out double[,] inverse)
    {
        inverse = new double[3, 3];
        double At(int r, int c) => m[r * 3 + c];
        var determinant = At(0, 0) * (At(1, 1) * At(2, 2) - At(1, 2) * At(2, 1))
            - At(0, 1) * (At(1, 0) * At(2, 2) - At(1, 2) * At(2, 0))
            + At(0, 2) * (At(1, 0) * At(2, 1) - At(1, 1) * At(2, 0));
        if (Math.Abs(determinant) < 1e-12)
            return false;
        for (var r = 0; r < 3; r++)
            for (var c = 0; c < 3; c++)
            {
                int r1 = (c + 1) % 3, r2 = (c + 2) % 3, c1 = (r + 1) % 3, c2 = (r + 2) % 3;
                inverse[r, c] = (At(r1, c1) * At(r2, c2) - At(r1, c2) * At(r2, c1)) / determinant;
            }
        return true;
    }

    private static List<NodeProto> Consumers(GraphProto graph, string tensor) => graph.Node.Where(n => n.Input.Contains(tensor)).ToList();

    private static TensorProto? Initializer(GraphProto graph, string name) => graph.Initializer.FirstOrDefault(t => t.Name == name);

    private static float[]? Floats(GraphProto graph, string name) =>
        Initializer(graph, name) is { DataType: (int)TensorProto.Types.DataType.Float } tensor ? FeaturizerGraph.TensorValues(tensor) : null;

    private static void Shape(GraphProto graph, string name, params long[] values)
    {
        var tensor = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64 };
        tensor.Dims.Add(values.Length);
        tensor.Int64Data.AddRange(values);
        graph.Initializer.Add(tensor);
    }

    private static AttributeProto Ints(string name, params long[] values) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Ints, Ints = { values } };

    private static long[]? Ints(NodeProto node, string name) =>
        node.Attribute.FirstOrDefault(a => a.Name == name) is { Ints.Count: > 0 } attribute ? attribute.Ints.ToArray() : null;

    private static long Int(NodeProto node, string name, long fallback) =>
        node.Attribute.FirstOrDefault(a => a.Name == name) is { } attribute ? attribute.I : fallback;

    private static string? Text(NodeProto node, string name) =>
        node.Attribute.FirstOrDefault(a => a.Name == name) is { } attribute ? attribute.S.ToStringUtf8() : null;
}
