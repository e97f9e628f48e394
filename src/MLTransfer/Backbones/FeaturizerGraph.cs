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

    /// <summary>Smallest square image size accepted: 16 pixels.</summary>
    public const int MinImageSize = 16;

    /// <summary>
    /// Largest square image size accepted: 2,048 pixels. A batch of 8 such images is 400 MB of pixels and several GB of
    /// activations in a ResNet; larger sizes overflow the engine's buffers.
    /// </summary>
    public const int MaxImageSize = 2048;

    /// <summary>Builds the fused graph for a backbone at an image size.</summary>
    /// <param name="backbone">The backbone description.</param>
    /// <param name="imageSize">Square input size in pixels; null means the backbone's native size.</param>
    /// <param name="layers">
    /// Stages (<see cref="BackboneStages"/>, e.g. <c>layer3</c>) whose globally pooled outputs, concatenated in this order, are
    /// the features; the graph keeps only the nodes they need, so one run computes them all. Null means the backbone's own
    /// output, as do the names of the one stage whose pool that output is.
    /// </param>
    /// <returns>The fused model.</returns>
    /// <exception cref="InvalidDataException">The file is not ONNX, or names nodes it does not have.</exception>
    /// <exception cref="ArgumentException">A layer is not a stage of the backbone.</exception>
    public static ModelProto Build(Backbone backbone, int? imageSize = null, IReadOnlyList<string>? layers = null)
    {
        ArgumentNullException.ThrowIfNull(backbone);
        var stages = BackboneStages.ForFeatures(backbone, layers);
        var size = imageSize ?? backbone.InputSize;
        CheckImageSize(backbone, size);
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
        if (stages is null)
            graph.Node.Add(Node("Flatten", prefix + "flatten", [backbone.OutputName], [OutputName],
                new AttributeProto { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = 1 }));
        else
            AddLayerOutputs(graph, backbone, stages, prefix);

        graph.Input.Insert(0, ValueInfo(InputName, BatchDim, 3, size, size));
        graph.Output.Add(ValueInfo(OutputName, BatchDim, BackboneStages.FeatureSize(backbone, stages)));
        foreach (var stale in model.MetadataProps.Where(p => p.Key == BackboneMetadataKey).ToList())
            model.MetadataProps.Remove(stale);
        model.MetadataProps.Add(new StringStringEntryProto { Key = BackboneMetadataKey, Value = backbone.Name });
        return model;
    }

    /// <summary>Throws when a backbone cannot run at an image size (too small, or not a multiple of its total stride).</summary>
    /// <param name="backbone">The backbone.</param>
    /// <param name="imageSize">Square input size in pixels.</param>
    /// <exception cref="ArgumentOutOfRangeException">The size is refused, with the nearest sizes that work.</exception>
    public static void CheckImageSize(Backbone backbone, int imageSize)
    {
        ArgumentNullException.ThrowIfNull(backbone);
        if (imageSize is < MinImageSize or > MaxImageSize)
            throw new ArgumentOutOfRangeException(nameof(imageSize), imageSize, $"Image size must be between {MinImageSize} and {MaxImageSize} pixels.");
        if (imageSize != backbone.InputSize && backbone.SizeMultiple > 1 && imageSize % backbone.SizeMultiple != 0)
            throw new ArgumentOutOfRangeException(nameof(imageSize), imageSize,
                $"Backbone '{backbone.Name}' takes image sizes that are multiples of {backbone.SizeMultiple} (e.g. {imageSize / backbone.SizeMultiple * backbone.SizeMultiple} or {(imageSize / backbone.SizeMultiple + 1) * backbone.SizeMultiple}), or its native {backbone.InputSize}.");
    }

    private static void AddLayerOutputs(GraphProto graph, Backbone backbone, IReadOnlyList<BackboneStage> stages, string prefix)
    {
        var parts = new List<string>();
        for (var i = 0; i < stages.Count; i++)
        {
            var part = stages.Count == 1 ? OutputName : $"{prefix}layer{i}";
            if (stages[i].IsOutput)
                graph.Node.Add(Node("Flatten", $"{prefix}layer{i}_flatten", [backbone.OutputName], [part],
                    new AttributeProto { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = 1 }));
            else
                BackboneStages.AddPooledOutput(graph, stages[i].Tensor, part, $"{prefix}layer{i}_");
            parts.Add(part);
        }
        if (parts.Count > 1)
            graph.Node.Add(Node("Concat", prefix + "concat_layers", [.. parts], [OutputName],
                new AttributeProto { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = 1 }));
        BackboneStages.KeepOnly(graph, [OutputName]);
    }

    /// <summary>
    /// Builds the fused graph and stores it in <paramref name="folder"/> under a name derived from the backbone's
    /// identity and the image size, reusing an existing file. Before a new file is stored, the graph is run once on a
    /// blank image and its real output length is compared with <see cref="Backbone.FeatureSize"/>, so a wrong spec fails
    /// here instead of producing an unusable model. Beyond <see cref="DefaultMaxFolderBytes"/>, the oldest graphs in the
    /// folder are deleted. Returns the file's path.
    /// </summary>
    /// <param name="backbone">The backbone description.</param>
    /// <param name="imageSize">Square input size; null means the backbone's native size.</param>
    /// <param name="folder">Where to keep the file; null means <see cref="DefaultFolder"/>.</param>
    /// <exception cref="InvalidDataException">The graph's output does not have <see cref="Backbone.FeatureSize"/> values per image.</exception>
    /// <param name="layers">Stages whose pooled outputs are the features (see <see cref="Build"/>); null means the backbone's output.</param>
    public static string Materialize(Backbone backbone, int? imageSize = null, string? folder = null, IReadOnlyList<string>? layers = null)
    {
        ArgumentNullException.ThrowIfNull(backbone);
        folder ??= DefaultFolder;
        var size = imageSize ?? backbone.InputSize;
        var stages = BackboneStages.ForFeatures(backbone, layers);
        var layerKey = stages is null ? "" : "|layers:" + string.Join(",", stages.Select(s => s.IsOutput ? "<output>" : s.Tensor));
        var layerName = stages is null ? "" : "-" + string.Join("+", stages.Select(s => SafeName(s.Name)));
        var key = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes($"v2|{backbone.Identity}|{size}|{backbone.FeatureSize}{layerKey}")))[..20].ToLowerInvariant();
        var path = Path.Combine(folder, $"{backbone.Name}-{size}px{layerName}-{key}.onnx");
        if (!File.Exists(path))
        {
            var model = Build(backbone, size, layers);
            var bytes = model.ToByteArray();
            CheckOutputLength(backbone, size, bytes, BackboneStages.FeatureSize(backbone, BackboneStages.ForFeatures(backbone, layers)), layers);
            AtomicFile.WriteAllBytes(path, bytes);
            TrimFolder(folder, DefaultMaxFolderBytes, keep: path);
        }
        else
        {
            // A reused graph counts as recent, so another run's TrimFolder does not delete it while this run uses it. The access
            // time carries this, not the write time, which is part of the identity of graphs derived from this one (InferenceGraph).
            try
            {
                File.SetLastAccessTimeUtc(path, DateTime.UtcNow);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Recency is a hint for trimming only.
            }
        }
        return path;
    }

    /// <summary>Folder for fused graphs when none is given: <c>graphs/</c> in the cache folder (<see cref="IO.CacheLocation"/>).</summary>
    public static string DefaultFolder => IO.CacheLocation.Graphs();

    /// <summary>Size bound of a folder of fused graphs: 1 GiB (about eight ResNet18 image sizes with their optimised copies).</summary>
    public const long DefaultMaxFolderBytes = 1L << 30;

    /// <summary>
    /// Deletes the least recently used <c>.onnx</c> files of a graph folder (by the later of their write and access times) until it
    /// holds at most <paramref name="maxBytes"/>; files used in the last ten minutes (possibly about to be opened by another run) and
    /// <paramref name="keep"/> stay. Returns how many were deleted.
    /// </summary>
    /// <param name="folder">The graph folder.</param>
    /// <param name="maxBytes">Size bound.</param>
    /// <param name="keep">A file never deleted (the one just written).</param>
    public static int TrimFolder(string folder, long maxBytes, string? keep = null)
    {
        List<FileInfo> files;
        try
        {
            files = new DirectoryInfo(folder).EnumerateFiles("*.onnx").ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return 0;
        }
        var total = files.Sum(f => f.Length);
        var recent = DateTime.UtcNow.AddMinutes(-10);
        var deleted = 0;
        static DateTime LastUse(FileInfo f) => f.LastAccessTimeUtc > f.LastWriteTimeUtc ? f.LastAccessTimeUtc : f.LastWriteTimeUtc;
        foreach (var file in files.OrderBy(LastUse))
        {
            if (total <= maxBytes)
                break;
            if (LastUse(file) > recent || file.FullName == keep)
                continue;
            try
            {
                file.Delete();
                total -= file.Length;
                deleted++;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // In use elsewhere; stays.
            }
        }
        return deleted;
    }

    private static void CheckOutputLength(Backbone backbone, int size, byte[] graph, int expected, IReadOnlyList<string>? layers)
    {
        Featurization.OnnxRuntimeEnvironment.EnsureConfigured();
        int length;
        try
        {
            using var options = new Microsoft.ML.OnnxRuntime.SessionOptions { IntraOpNumThreads = 1, GraphOptimizationLevel = Microsoft.ML.OnnxRuntime.GraphOptimizationLevel.ORT_ENABLE_BASIC };
            using var session = new Microsoft.ML.OnnxRuntime.InferenceSession(graph, options);
            var pixels = new float[3 * size * size];
            using var input = Microsoft.ML.OnnxRuntime.OrtValue.CreateTensorValueFromMemory(pixels, [1, 3, size, size]);
            using var runOptions = new Microsoft.ML.OnnxRuntime.RunOptions();
            using var outputs = session.Run(runOptions, [InputName], [input], [OutputName]);
            length = (int)outputs[0].GetTensorTypeAndShape().ElementCount;
        }
        catch (Microsoft.ML.OnnxRuntime.OnnxRuntimeException e)
        {
            throw new InvalidDataException(
                $"Backbone '{backbone.Name}' ('{backbone.ModelPath}') does not run at {size} px: {FirstLine(e.Message)}", e);
        }
        if (length != expected && layers is not null)
            throw new InvalidDataException(
                $"Backbone '{backbone.Name}': the pooled outputs of {string.Join(", ", layers)} give {length} values per image at {size} px, not the {expected} their channels add up to.");
        if (length != expected)
            throw new InvalidDataException(
                $"Backbone '{backbone.Name}': its spec says featureSize {backbone.FeatureSize}, but output '{backbone.OutputName}' of '{backbone.ModelPath}' " +
                $"gives {length} values per image at {size} px. Set \"featureSize\": {length} in the spec.");
    }

    private static string FirstLine(string message)
    {
        var line = message.ReplaceLineEndings("\n").Split('\n')[0];
        return line.Length > 300 ? line[..300] + "…" : line;
    }

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

    /// <summary>Makes a graph node.</summary>
    /// <param name="op">Operator type.</param>
    /// <param name="name">Node name.</param>
    /// <param name="inputs">Input tensor names.</param>
    /// <param name="outputs">Output tensor names.</param>
    /// <param name="attributes">Attributes.</param>
    public static NodeProto Node(string op, string name, string[] inputs, string[] outputs, params AttributeProto[] attributes)
    {
        var node = new NodeProto { OpType = op, Name = name };
        node.Input.AddRange(inputs);
        node.Output.AddRange(outputs);
        node.Attribute.AddRange(attributes);
        return node;
    }

    /// <summary>Describes a float tensor [batch, dims...] whose first dimension is symbolic.</summary>
    /// <param name="name">Tensor name.</param>
    /// <param name="batchDim">Name of the symbolic batch dimension.</param>
    /// <param name="dims">The other dimensions.</param>
    public static ValueInfoProto ValueInfo(string name, string batchDim, params long[] dims)
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

    private static string SafeName(string name) => new(name.Select(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' ? c : '_').ToArray());

    private static string Names(IEnumerable<ValueInfoProto> values) => string.Join(", ", values.Select(v => $"'{v.Name}'"));
}
