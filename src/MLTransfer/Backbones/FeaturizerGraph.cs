using System.Security.Cryptography;
using System.Text;
using Google.Protobuf;
using Onnx;

namespace MLTransfer.Backbones;

/// <summary>
/// Builds the single ONNX graph every technique uses to featurise images: input <see cref="InputName"/>
/// [N,3,S,S] planar RGB pixels in 0–255 (exactly what ML.NET's <c>ExtractPixels</c> produces by default),
/// output <see cref="OutputName"/> [N,D]. The backbone's channel order, pixel scale and normalisation are folded
/// into a leading 1×1 convolution (plus a mean-image subtraction where the backbone has one), the batch
/// dimension is made dynamic, and for an image size other than the backbone's native one a fixed-size final
/// average pool is replaced by a global average pool.
/// </summary>
public static class FeaturizerGraph
{
    /// <summary>Name of the fused graph's input: planar RGB pixels, 0–255, [N,3,S,S].</summary>
    public const string InputName = "Pixels";

    /// <summary>Name of the fused graph's output: pooled features [N,D].</summary>
    public const string OutputName = "Features";

    /// <summary>Name of the leading 1×1 convolution that applies the backbone's channel order and normalisation.</summary>
    internal const string NormalizeNodeName = "mltransfer_normalize";

    /// <summary>Key of the graph metadata entry (ONNX <c>metadata_props</c>) that names the backbone the graph was built from.</summary>
    public const string BackboneMetadataKey = "mltransfer.backbone";

    private const string BatchDim = "N";

    /// <summary>Builds the fused graph for a backbone at an image size.</summary>
    /// <param name="backbone">The backbone description.</param>
    /// <param name="imageSize">Square input size in pixels; null means the backbone's native size.</param>
    /// <returns>The fused model.</returns>
    /// <exception cref="InvalidDataException">The file is not ONNX, or names nodes it does not have.</exception>
    public static ModelProto Build(Backbone backbone, int? imageSize = null)
    {
        ArgumentNullException.ThrowIfNull(backbone);
        var size = imageSize ?? backbone.InputSize;
        if (size < 16)
            throw new ArgumentOutOfRangeException(nameof(imageSize), size, "Image size must be at least 16 pixels.");
        if (size != backbone.InputSize && backbone.SizeMultiple > 1 && size % backbone.SizeMultiple != 0)
            throw new ArgumentOutOfRangeException(nameof(imageSize), size,
                $"Backbone '{backbone.Name}' takes image sizes that are multiples of {backbone.SizeMultiple} (e.g. {size / backbone.SizeMultiple * backbone.SizeMultiple} or {(size / backbone.SizeMultiple + 1) * backbone.SizeMultiple}), or its native {backbone.InputSize}.");
        var model = Load(backbone.ModelPath);
        var graph = model.Graph;

        var input = graph.Input.FirstOrDefault(i => i.Name == backbone.InputName)
            ?? throw new InvalidDataException(
                $"Backbone '{backbone.ModelPath}' has no input node '{backbone.InputName}'. Inputs: {Names(graph.Input.Where(i => graph.Initializer.All(t => t.Name != i.Name)))}.");
        CheckInputShape(backbone, input);
        var producer = graph.Node.FirstOrDefault(n => n.Output.Contains(backbone.OutputName));
        if (producer is null)
            throw new InvalidDataException(
                $"Backbone '{backbone.ModelPath}' has no output node '{backbone.OutputName}'. Outputs: {Names(graph.Output)}.");

        if (size != backbone.InputSize && producer.OpType == "AveragePool")
        {
            producer.OpType = "GlobalAveragePool";
            producer.Attribute.Clear();
        }

        graph.Input.Remove(input);
        graph.ValueInfo.Clear();
        graph.Output.Clear();

        var prefix = "mltransfer_";
        var (weight, bias) = NormalizationConv(backbone, size, out var meanImage);
        graph.Initializer.Add(Tensor(prefix + "norm_w", [3, 3, 1, 1], weight));
        graph.Initializer.Add(Tensor(prefix + "norm_b", [3], bias));
        var lead = new List<NodeProto>();
        var normalized = meanImage is null ? backbone.InputName : prefix + "scaled";
        lead.Add(Node("Conv", NormalizeNodeName, [InputName, prefix + "norm_w", prefix + "norm_b"], [normalized],
            new AttributeProto { Name = "kernel_shape", Type = AttributeProto.Types.AttributeType.Ints, Ints = { 1, 1 } }));
        if (meanImage is not null)
        {
            graph.Initializer.Add(Tensor(prefix + "mean_image", [1, 3, size, size], meanImage));
            lead.Add(Node("Sub", prefix + "subtract_mean", [normalized, prefix + "mean_image"], [backbone.InputName]));
        }
        for (var i = lead.Count - 1; i >= 0; i--)
            graph.Node.Insert(0, lead[i]);
        graph.Node.Add(Node("Flatten", prefix + "flatten", [backbone.OutputName], [OutputName],
            new AttributeProto { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = 1 }));

        graph.Input.Insert(0, ValueInfo(InputName, BatchDim, 3, size, size));
        graph.Output.Add(ValueInfo(OutputName, BatchDim, backbone.FeatureSize));
        foreach (var stale in model.MetadataProps.Where(p => p.Key == BackboneMetadataKey).ToList())
            model.MetadataProps.Remove(stale);
        model.MetadataProps.Add(new StringStringEntryProto { Key = BackboneMetadataKey, Value = backbone.Name });
        return model;
    }

    /// <summary>
    /// Builds the fused graph and stores it in <paramref name="folder"/> under a name derived from the backbone's
    /// identity and the image size, reusing an existing file. Returns the file's path.
    /// </summary>
    /// <param name="backbone">The backbone description.</param>
    /// <param name="imageSize">Square input size; null means the backbone's native size.</param>
    /// <param name="folder">Where to keep the file; null means <see cref="DefaultFolder"/>.</param>
    public static string Materialize(Backbone backbone, int? imageSize = null, string? folder = null)
    {
        ArgumentNullException.ThrowIfNull(backbone);
        folder ??= DefaultFolder;
        var size = imageSize ?? backbone.InputSize;
        var key = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes($"v2|{backbone.Identity}|{size}|{backbone.FeatureSize}")))[..20].ToLowerInvariant();
        var path = Path.Combine(folder, $"{backbone.Name}-{size}px-{key}.onnx");
        if (!File.Exists(path))
        {
            var model = Build(backbone, size);
            AtomicFile.Write(path, s => model.WriteTo(s));
        }
        return path;
    }

    /// <summary>Folder for fused graphs when none is given: <c>$TMPDIR/mltransfer/graphs</c>.</summary>
    public static string DefaultFolder => Path.Combine(Path.GetTempPath(), "mltransfer", "graphs");

    /// <summary>Reads an ONNX file, with a clear error when it is not one.</summary>
    /// <param name="path">Path of the ONNX file.</param>
    public static ModelProto Load(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"Backbone file '{path}' does not exist.", path);
        try
        {
            using var stream = File.OpenRead(path);
            var parser = new MessageParser<ModelProto>(() => new ModelProto());
            var model = parser.ParseFrom(CodedInputStream.CreateWithLimits(stream, int.MaxValue, 100));
            if (model.Graph is null || model.Graph.Node.Count == 0)
                throw new InvalidDataException($"'{path}' is not an ONNX model: it has no graph.");
            return model;
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new InvalidDataException($"'{path}' is not an ONNX model: {e.Message}", e);
        }
    }

    private static void CheckInputShape(Backbone backbone, ValueInfoProto input)
    {
        var dims = input.Type?.TensorType?.Shape?.Dim;
        if (dims is null || dims.Count != 4)
            throw new InvalidDataException(
                $"Backbone '{backbone.ModelPath}': input '{backbone.InputName}' must be a 4-d image tensor [N,3,H,W], got rank {dims?.Count ?? 0}.");
        if (dims[1].DimValue is not 0 and not 3)
            throw new InvalidDataException(
                $"Backbone '{backbone.ModelPath}': input '{backbone.InputName}' has {dims[1].DimValue} channels; MLTransfer feeds 3 (RGB).");
    }

    private static (float[] Weight, float[] Bias) NormalizationConv(Backbone backbone, int size, out float[]? meanImage)
    {
        var weight = new float[9];
        var bias = new float[3];
        meanImage = null;
        for (var outChannel = 0; outChannel < 3; outChannel++)
        {
            var source = backbone.ChannelOrder == ChannelOrder.Bgr ? 2 - outChannel : outChannel;
            var scale = backbone.PixelScale;
            if (backbone.Normalization == NormalizationKind.MeanStd)
            {
                scale /= backbone.Std![outChannel];
                bias[outChannel] = -backbone.Mean![outChannel] / backbone.Std[outChannel];
            }
            weight[outChannel * 3 + source] = scale;
        }
        if (backbone.Normalization == NormalizationKind.MeanImage)
        {
            var mean = ReadMeanImage(backbone);
            if (size == backbone.InputSize && mean.Length == 3 * size * size)
                meanImage = mean;
            else
            {
                var plane = mean.Length / 3;
                for (var c = 0; c < 3; c++)
                    bias[c] = -(float)mean.AsSpan(c * plane, plane).ToArray().Average();
            }
        }
        return (weight, bias);
    }

    private static float[] ReadMeanImage(Backbone backbone)
    {
        var model = Load(backbone.MeanImagePath!);
        var tensor = model.Graph.Initializer.FirstOrDefault(t => t.Name == backbone.MeanImageInitializer)
            ?? throw new InvalidDataException($"'{backbone.MeanImagePath}' has no initializer '{backbone.MeanImageInitializer}'.");
        var values = TensorValues(tensor);
        if (values.Length % 3 != 0)
            throw new InvalidDataException($"Mean image '{backbone.MeanImageInitializer}' in '{backbone.MeanImagePath}' is not [1,3,H,W].");
        return values;
    }

    /// <summary>Reads the float values of an initializer, whether stored as raw bytes or as a float list.</summary>
    /// <param name="tensor">A FLOAT tensor.</param>
    public static float[] TensorValues(TensorProto tensor)
    {
        if (tensor.DataType != (int)TensorProto.Types.DataType.Float)
            throw new InvalidDataException($"Initializer '{tensor.Name}' is not float32.");
        if (tensor.RawData.Length > 0)
        {
            var values = new float[tensor.RawData.Length / 4];
            Buffer.BlockCopy(tensor.RawData.ToByteArray(), 0, values, 0, values.Length * 4);
            return values;
        }
        return tensor.FloatData.ToArray();
    }

    /// <summary>Makes a FLOAT initializer stored as raw little-endian bytes.</summary>
    /// <param name="name">Initializer name.</param>
    /// <param name="dims">Shape.</param>
    /// <param name="values">Values in row-major order.</param>
    public static TensorProto Tensor(string name, long[] dims, float[] values)
    {
        var bytes = new byte[values.Length * 4];
        Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
        var tensor = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float, RawData = ByteString.CopyFrom(bytes) };
        tensor.Dims.AddRange(dims);
        return tensor;
    }

    internal static NodeProto Node(string op, string name, string[] inputs, string[] outputs, params AttributeProto[] attributes)
    {
        var node = new NodeProto { OpType = op, Name = name };
        node.Input.AddRange(inputs);
        node.Output.AddRange(outputs);
        node.Attribute.AddRange(attributes);
        return node;
    }

    internal static ValueInfoProto ValueInfo(string name, string batchDim, params long[] dims)
    {
        var shape = new TensorShapeProto();
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = batchDim });
        foreach (var d in dims)
            shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } },
        };
    }

    private static string Names(IEnumerable<ValueInfoProto> values) => string.Join(", ", values.Select(v => $"'{v.Name}'"));
}
