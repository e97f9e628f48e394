using System.Security.Cryptography;
using Google.Protobuf;
using MLTransfer.Backbones;
using Onnx;

namespace MLTransfer.Techniques.DomainAdaptation;

/// <summary>
/// Edits of the fused featuriser graph (<see cref="FeaturizerGraph"/>) that fold a domain-adaptation transform
/// into the exported ONNX model, so the <c>.zip</c> keeps using nothing but ML.NET's <c>ApplyOnnxModel</c>.
/// </summary>
public static class FeatureGraphEdits
{
    /// <summary>Name given to the backbone's own pooled features once a transform follows them.</summary>
    public const string RawFeatures = "mltransfer_raw_features";

    /// <summary>
    /// Writes a copy of <paramref name="graphPath"/> whose <c>Features</c> output is <c>Gemm(raw, A) + b</c>
    /// (<c>features·A + b</c> on row vectors) and returns its path (content-addressed, reused when present).
    /// </summary>
    /// <param name="graphPath">A fused graph with output <c>Features</c> [N,D].</param>
    /// <param name="map">The affine map, D×D.</param>
    /// <param name="folder">Where to write the graph; null means <see cref="FeaturizerGraph.DefaultFolder"/>.</param>
    /// <param name="tag">Short name used in the file name, e.g. <c>coral</c>.</param>
    public static string AppendAffine(string graphPath, AffineMap map, string? folder, string tag)
    {
        ArgumentNullException.ThrowIfNull(map);
        var d = map.Bias.Length;
        var matrix = new float[d * d];
        for (var i = 0; i < d; i++)
            for (var j = 0; j < d; j++)
                matrix[i * d + j] = (float)map.Matrix[i, j];
        return AppendLayers(graphPath, [new DenseLayer(d, d, matrix, map.Bias.Select(v => (float)v).ToArray(), Relu: false)], folder, tag);
    }

    /// <summary>
    /// Writes a copy of <paramref name="graphPath"/> whose <c>Features</c> output is the backbone's features passed
    /// through dense layers (<c>Gemm</c>, optionally <c>Relu</c>), and returns its path (content-addressed).
    /// The output's declared width becomes the last layer's.
    /// </summary>
    /// <param name="graphPath">A fused graph with output <c>Features</c> [N,D].</param>
    /// <param name="layers">The layers, in order; the first reads D inputs.</param>
    /// <param name="folder">Where to write the graph; null means <see cref="FeaturizerGraph.DefaultFolder"/>.</param>
    /// <param name="tag">Short name used in node and file names.</param>
    public static string AppendLayers(string graphPath, IReadOnlyList<DenseLayer> layers, string? folder, string tag)
    {
        ArgumentNullException.ThrowIfNull(layers);
        if (layers.Count == 0)
            throw new ArgumentException("Give at least one layer.", nameof(layers));
        var key = FeatureGraphEdits.Hash(layers.SelectMany(l => new[] { l.Weights, l.Bias, [l.Relu ? 1f : 0f] }).ToArray());
        return WriteEdited(graphPath, folder, tag, key, model =>
        {
            var graph = model.Graph;
            var prefix = "mltransfer_" + tag + "_";
            RenameOutput(graph, FeaturizerGraph.OutputName, RawFeatures);
            var current = RawFeatures;
            for (var i = 0; i < layers.Count; i++)
            {
                var layer = layers[i];
                graph.Initializer.Add(FeaturizerGraph.Tensor($"{prefix}w{i}", [layer.Inputs, layer.Outputs], layer.Weights));
                graph.Initializer.Add(FeaturizerGraph.Tensor($"{prefix}b{i}", [layer.Outputs], layer.Bias));
                var last = i == layers.Count - 1;
                var gemmOut = last && !layer.Relu ? FeaturizerGraph.OutputName : $"{prefix}gemm{i}_out";
                graph.Node.Add(FeaturizerGraph.Node("Gemm", $"{prefix}gemm{i}", [current, $"{prefix}w{i}", $"{prefix}b{i}"], [gemmOut]));
                current = gemmOut;
                if (layer.Relu)
                {
                    var reluOut = last ? FeaturizerGraph.OutputName : $"{prefix}relu{i}_out";
                    graph.Node.Add(FeaturizerGraph.Node("Relu", $"{prefix}relu{i}", [current], [reluOut]));
                    current = reluOut;
                }
            }
            var output = graph.Output.Single(o => o.Name == FeaturizerGraph.OutputName);
            output.Type.TensorType.Shape.Dim[1].DimValue = layers[^1].Outputs;
        });
    }

    /// <summary>Makes the node producing <paramref name="from"/> produce <paramref name="to"/> instead (graph outputs keep <paramref name="from"/>).</summary>
    /// <param name="graph">The graph.</param>
    /// <param name="from">Current tensor name.</param>
    /// <param name="to">New tensor name.</param>
    public static void RenameOutput(GraphProto graph, string from, string to)
    {
        ArgumentNullException.ThrowIfNull(graph);
        var producer = graph.Node.FirstOrDefault(n => n.Output.Contains(from))
            ?? throw new InvalidDataException($"The graph has no node producing '{from}'.");
        producer.Output[producer.Output.IndexOf(from)] = to;
        foreach (var node in graph.Node)
            for (var i = 0; i < node.Input.Count; i++)
                if (node.Input[i] == from)
                    node.Input[i] = to;
    }

    /// <summary>Loads a graph, applies an edit and writes it under a content-derived name, reusing an existing file.</summary>
    /// <param name="graphPath">The graph to start from.</param>
    /// <param name="folder">Output folder; null means <see cref="FeaturizerGraph.DefaultFolder"/>.</param>
    /// <param name="tag">Short name used in the file name.</param>
    /// <param name="contentKey">A key identifying the edit's content.</param>
    /// <param name="edit">The edit.</param>
    public static string WriteEdited(string graphPath, string? folder, string tag, string contentKey, Action<ModelProto> edit)
    {
        ArgumentNullException.ThrowIfNull(edit);
        folder ??= FeaturizerGraph.DefaultFolder;
        var key = Convert.ToHexString(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes($"{Path.GetFullPath(graphPath)}|{new FileInfo(graphPath).Length}|{contentKey}")))[..20].ToLowerInvariant();
        var path = Path.Combine(folder, $"{Path.GetFileNameWithoutExtension(graphPath)}-{tag}-{key}.onnx");
        if (File.Exists(path))
            return path;
        var model = FeaturizerGraph.Load(graphPath);
        edit(model);
        AtomicFile.Write(path, s => model.WriteTo(s));
        FeaturizerGraph.TrimFolder(folder, FeaturizerGraph.DefaultMaxFolderBytes, keep: path);
        return path;
    }

    /// <summary>A short content hash of float arrays.</summary>
    /// <param name="arrays">The arrays.</param>
    public static string Hash(params float[][] arrays)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var array in arrays)
        {
            var bytes = new byte[array.Length * 4];
            Buffer.BlockCopy(array, 0, bytes, 0, bytes.Length);
            sha.AppendData(bytes);
        }
        return Convert.ToHexString(sha.GetHashAndReset())[..24];
    }
}

/// <summary>A dense layer on row vectors: <c>y = x·W + b</c>, then <c>max(0, y)</c> when <see cref="Relu"/>.</summary>
/// <param name="Inputs">Input width.</param>
/// <param name="Outputs">Output width.</param>
/// <param name="Weights">W, [Inputs, Outputs] row-major.</param>
/// <param name="Bias">b, [Outputs].</param>
/// <param name="Relu">Whether a ReLU follows.</param>
public sealed record DenseLayer(int Inputs, int Outputs, float[] Weights, float[] Bias, bool Relu)
{
    /// <summary>Applies the layer to one vector.</summary>
    /// <param name="x">The vector.</param>
    public float[] Apply(float[] x)
    {
        ArgumentNullException.ThrowIfNull(x);
        var y = new float[Outputs];
        for (var j = 0; j < Outputs; j++)
        {
            double sum = Bias[j];
            for (var i = 0; i < Inputs; i++)
                sum += x[i] * Weights[i * Outputs + j];
            y[j] = Relu ? (float)Math.Max(sum, 0) : (float)sum;
        }
        return y;
    }
}
