using System.Collections.Concurrent;
using Onnx;

namespace MLTransfer.Backbones;

/// <summary>
/// A stage of a convolutional backbone: a feature map [N,C,H,W] whose global average pool is a feature vector of
/// length <see cref="Channels"/>. ResNets have four (<c>layer1</c> … <c>layer4</c>, torchvision's names).
/// </summary>
/// <param name="Name">The stage's name (<c>layer1</c>, … or the name a backbone spec gives it).</param>
/// <param name="Tensor">Name of the graph tensor holding the stage's output map.</param>
/// <param name="Channels">Channels of the map: the length of its pooled feature vector.</param>
/// <param name="Stride">Input size divided by the map's size (4, 8, 16, 32 for ResNets); 0 when it cannot be worked out.</param>
/// <param name="IsOutput">
/// Whether the backbone's own output (<see cref="Backbone.OutputName"/>) is this map's average pool, so that features of this
/// stage are exactly the backbone's default features (ResNet18's <c>layer4</c>).
/// </param>
public sealed record BackboneStage(string Name, string Tensor, int Channels, int Stride, bool IsOutput);

/// <summary>
/// Finds the stages of a backbone graph and turns stage names into graph tensors: the piece that lets any part of
/// MLTransfer read an intermediate feature map (pooled features of earlier layers, the last convolutional map).
/// </summary>
/// <remarks>
/// <para>A spec may name its stages (<see cref="Backbone.Stages"/>: stage name → tensor). Otherwise they are found in the
/// graph: every residual <c>Add</c> (two computed inputs of the same channels and spatial size, He et al. 2016) ends a block,
/// its output (or the <c>Relu</c> right after it) is the block's output; consecutive blocks at the same spatial size form a
/// stage, whose output is its last block's. Stages are named <c>layer1</c>, <c>layer2</c>, … in graph order. A graph without
/// residual blocks has no stages unless its spec names them.</para>
/// </remarks>
public static class BackboneStages
{
    private static readonly ConcurrentDictionary<string, IReadOnlyList<BackboneStage>> Known = new();

    /// <summary>The stages of a backbone in graph order (read once per backbone file and spec).</summary>
    /// <param name="backbone">The backbone.</param>
    /// <exception cref="InvalidDataException">The graph is not ONNX, or a stage named by the spec is not a feature map of it.</exception>
    public static IReadOnlyList<BackboneStage> Of(Backbone backbone)
    {
        ArgumentNullException.ThrowIfNull(backbone);
        var named = backbone.Stages is null ? "" : string.Join(";", backbone.Stages.Select(s => $"{s.Key}={s.Value}"));
        return Known.GetOrAdd($"{backbone.Identity}|{backbone.InputSize}|{named}",
            _ => Find(FeaturizerGraph.Load(backbone.ModelPath).Graph, backbone));
    }

    /// <summary>
    /// Resolves stage names (case-insensitive) to stages, in the order given.
    /// </summary>
    /// <param name="backbone">The backbone.</param>
    /// <param name="names">Stage names, e.g. <c>layer2</c>, <c>layer3</c>.</param>
    /// <exception cref="ArgumentException">A name is not a stage of the backbone, or a stage is named twice.</exception>
    public static IReadOnlyList<BackboneStage> Resolve(Backbone backbone, IReadOnlyList<string> names)
    {
        ArgumentNullException.ThrowIfNull(names);
        var stages = Of(backbone);
        var result = new List<BackboneStage>();
        foreach (var name in names)
        {
            var stage = stages.FirstOrDefault(s => string.Equals(s.Name, name?.Trim(), StringComparison.OrdinalIgnoreCase))
                ?? throw new ArgumentException(stages.Count == 0
                    ? $"Backbone '{backbone.Name}' has no layer '{name}': no residual stages were found in its graph; name them in its spec's \"stages\" (layer name → tensor)."
                    : $"Backbone '{backbone.Name}' has no layer '{name}'; its layers are {string.Join(", ", stages.Select(s => s.Name))}.");
            if (result.Contains(stage))
                throw new ArgumentException($"Layer '{stage.Name}' is named twice.");
            result.Add(stage);
        }
        return result;
    }

    /// <summary>
    /// The stages whose pooled outputs make the features of <paramref name="layers"/>, or null when they are exactly the
    /// backbone's own output (no layers, or the one stage whose pool is the output): callers then use the plain graph.
    /// </summary>
    /// <param name="backbone">The backbone.</param>
    /// <param name="layers">Stage names; null or empty means the backbone's output.</param>
    public static IReadOnlyList<BackboneStage>? ForFeatures(Backbone backbone, IReadOnlyList<string>? layers)
    {
        if (layers is null || layers.Count == 0)
            return null;
        var stages = Resolve(backbone, layers);
        return stages is [{ IsOutput: true }] ? null : stages;
    }

    /// <summary>Length of the feature vector made of these stages' pooled outputs, concatenated.</summary>
    /// <param name="backbone">The backbone.</param>
    /// <param name="stages">Stages from <see cref="ForFeatures"/>; null means the backbone's output.</param>
    public static int FeatureSize(Backbone backbone, IReadOnlyList<BackboneStage>? stages) =>
        stages?.Sum(s => s.IsOutput ? backbone.FeatureSize : s.Channels) ?? backbone.FeatureSize;

    private static List<BackboneStage> Find(GraphProto graph, Backbone backbone)
    {
        var sizes = InferenceGraph.SpatialSizes(graph, backbone.InputSize, backbone.InputName);
        var channels = Channels(graph, backbone.InputName);
        var producer = graph.Node.FirstOrDefault(n => n.Output.Contains(backbone.OutputName));
        var pooledMap = producer is { OpType: "AveragePool" or "GlobalAveragePool", Input.Count: > 0 } ? producer.Input[0] : null;
        var order = new Dictionary<string, int>();
        for (var i = 0; i < graph.Node.Count; i++)
            foreach (var output in graph.Node[i].Output)
                order[output] = i;

        BackboneStage Stage(string name, string tensor) => new(name, tensor,
            channels.GetValueOrDefault(tensor),
            sizes.TryGetValue(tensor, out var size) && size > 0 ? backbone.InputSize / size : 0,
            tensor == pooledMap);

        if (backbone.Stages is { Count: > 0 } named)
        {
            var stages = new List<BackboneStage>();
            foreach (var (name, tensor) in named)
            {
                if (!order.ContainsKey(tensor))
                    throw new InvalidDataException($"Backbone '{backbone.Name}': stage '{name}' names tensor '{tensor}', which no node of '{backbone.ModelPath}' produces.");
                var stage = Stage(name, tensor);
                if (stage.Channels < 1)
                    throw new InvalidDataException($"Backbone '{backbone.Name}': stage '{name}' ('{tensor}') is not a convolutional feature map whose channels can be read from the graph.");
                stages.Add(stage);
            }
            return stages.OrderBy(s => order[s.Tensor]).ToList();
        }

        var initializers = graph.Initializer.Select(t => t.Name).ToHashSet();
        var blocks = new List<(string Tensor, int Size)>();
        foreach (var node in graph.Node)
        {
            if (node.OpType is not ("Add" or "Sum") || node.Input.Count < 2 || node.Input.Any(initializers.Contains)
                || !node.Input.All(sizes.ContainsKey) || node.Input.Select(i => sizes[i]).Distinct().Count() != 1
                || node.Input.Select(i => channels.GetValueOrDefault(i)).Distinct().Count() != 1 || channels.GetValueOrDefault(node.Input[0]) < 1)
                continue;
            var output = node.Output[0];
            var consumers = graph.Node.Where(n => n.Input.Contains(output)).ToList();
            if (consumers is [{ OpType: "Relu" or "LeakyRelu" or "Clip" } activation])
                output = activation.Output[0];
            blocks.Add((output, sizes[node.Input[0]]));
        }
        var ends = new List<string>();
        for (var i = 0; i < blocks.Count; i++)
            if (i == blocks.Count - 1 || blocks[i + 1].Size != blocks[i].Size)
                ends.Add(blocks[i].Tensor);
        return ends.Select((tensor, i) => Stage($"layer{i + 1}", tensor)).ToList();
    }

    // Channels of every tensor whose channel count follows from convolution weights through element-wise ops and pooling.
    private static Dictionary<string, int> Channels(GraphProto graph, string inputName)
    {
        var weights = graph.Initializer.ToDictionary(t => t.Name);
        var channels = new Dictionary<string, int> { [inputName] = 3 };
        foreach (var node in graph.Node)
        {
            int? result = null;
            switch (node.OpType)
            {
                case "Conv" when node.Input.Count > 1 && weights.TryGetValue(node.Input[1], out var w) && w.Dims.Count == 4:
                    result = (int)w.Dims[0];
                    break;
                case "Concat" when node.Attribute.FirstOrDefault(a => a.Name == "axis")?.I == 1 && node.Input.All(channels.ContainsKey):
                    result = node.Input.Sum(i => channels[i]);
                    break;
                case "BatchNormalization" or "Relu" or "LeakyRelu" or "Clip" or "Sigmoid" or "Tanh" or "Add" or "Sub" or "Mul" or "Sum"
                    or "Identity" or "Dropout" or "MaxPool" or "AveragePool" or "GlobalAveragePool" or "GlobalMaxPool":
                    foreach (var input in node.Input)
                        if (channels.TryGetValue(input, out var c))
                        {
                            result = c;
                            break;
                        }
                    break;
            }
            if (result is { } value)
                channels[node.Output[0]] = value;
        }
        return channels;
    }

    /// <summary>Appends a global average pool of a feature map, flattened to [N,C], as a tensor named <paramref name="output"/>.</summary>
    internal static void AddPooledOutput(GraphProto graph, string map, string output, string prefix)
    {
        graph.Node.Add(FeaturizerGraph.Node("GlobalAveragePool", prefix + "pool", [map], [prefix + "pooled"]));
        graph.Node.Add(FeaturizerGraph.Node("Flatten", prefix + "flatten", [prefix + "pooled"], [output],
            new AttributeProto { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = 1 }));
    }

    /// <summary>Removes every node, initializer and input that none of the named outputs depends on.</summary>
    internal static void KeepOnly(GraphProto graph, IEnumerable<string> outputs)
    {
        var needed = outputs.ToHashSet();
        for (var i = graph.Node.Count - 1; i >= 0; i--)
        {
            var node = graph.Node[i];
            if (node.Output.Any(needed.Contains))
                needed.UnionWith(node.Input);
            else
                graph.Node.RemoveAt(i);
        }
        foreach (var tensor in graph.Initializer.Where(t => !needed.Contains(t.Name)).ToList())
            graph.Initializer.Remove(tensor);
        foreach (var input in graph.Input.Where(i => !needed.Contains(i.Name)).ToList())
            graph.Input.Remove(input);
    }
}
