using Onnx;

namespace MLTransfer.Backbones;

/// <summary>
/// Exposes intermediate values of a backbone graph: extra named outputs (e.g. the last convolutional map, which
/// class-activation maps read, or the output of an earlier stage), and the global pooling that turns a convolutional
/// map into the pooled features a head reads.
/// </summary>
/// <remarks>
/// The exported models are never changed: callers edit a copy of the graph for their own ONNX Runtime session.
/// </remarks>
public static class GraphOutputs
{
    /// <summary>Operators that average a [N,C,H,W] map over its spatial axes.</summary>
    private static readonly HashSet<string> PoolingOps = ["GlobalAveragePool", "AveragePool", "ReduceMean"];

    /// <summary>
    /// Operators that are affine in their first input when their other inputs are initializers: a chain of them after
    /// the pooling keeps the pooled features an affine function of the map's mean.
    /// </summary>
    private static readonly HashSet<string> AffineOps = ["Flatten", "Reshape", "Squeeze", "Unsqueeze", "Identity", "Gemm", "MatMul", "Add", "Sub", "Mul", "Div"];

    /// <summary>
    /// Returns a copy of <paramref name="model"/> whose graph also outputs the named values (float tensors of any shape).
    /// Values already among the outputs are left as they are.
    /// </summary>
    /// <param name="model">The graph, e.g. a fused featuriser graph (<see cref="FeaturizerGraph"/>).</param>
    /// <param name="valueNames">Names of values produced by nodes of the graph.</param>
    /// <exception cref="InvalidDataException">A name is not produced by any node.</exception>
    public static ModelProto WithOutputs(ModelProto model, IEnumerable<string> valueNames)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(valueNames);
        var copy = model.Clone();
        var graph = copy.Graph;
        var produced = graph.Node.SelectMany(n => n.Output).ToHashSet(StringComparer.Ordinal);
        foreach (var name in valueNames)
        {
            if (!produced.Contains(name))
                throw new InvalidDataException($"The graph has no value named '{name}' (no node produces it).");
            if (graph.Output.Any(o => o.Name == name))
                continue;
            graph.Output.Add(new ValueInfoProto
            {
                Name = name,
                Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float } },
            });
        }
        return copy;
    }

    /// <summary>
    /// Returns a copy of <paramref name="model"/> cut at one value: that value is the graph's only output, and every node,
    /// initializer and input it does not depend on is removed (e.g. the frozen lower blocks of a backbone, whose outputs a
    /// top-blocks fine-tuning run caches).
    /// </summary>
    /// <param name="model">The graph.</param>
    /// <param name="valueName">A float value produced by a node of the graph.</param>
    /// <exception cref="InvalidDataException">No node produces <paramref name="valueName"/>.</exception>
    public static ModelProto TruncatedAt(ModelProto model, string valueName)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(valueName);
        var copy = WithOutputs(model, [valueName]);
        var graph = copy.Graph;
        foreach (var output in graph.Output.Where(o => o.Name != valueName).ToList())
            graph.Output.Remove(output);
        BackboneStages.KeepOnly(graph, [valueName]);
        return copy;
    }

    /// <summary>
    /// Finds the global average pooling whose result becomes the graph output <paramref name="featuresName"/>: walks
    /// back from that output through reshapes and affine layers with constant weights (the <c>Flatten</c> of the fused
    /// graph, a CORAL <c>Gemm</c>) to a <c>GlobalAveragePool</c>, <c>AveragePool</c> or <c>ReduceMean</c> node.
    /// </summary>
    /// <param name="model">The graph.</param>
    /// <param name="featuresName">The pooled-features output, e.g. <see cref="FeaturizerGraph.OutputName"/>.</param>
    /// <returns>The pooling site, or null when a non-affine node (e.g. a <c>Relu</c> bottleneck) lies between the pooling and the output, or no pooling is found.</returns>
    public static PoolingSite? FindGlobalPooling(ModelProto model, string featuresName)
    {
        ArgumentNullException.ThrowIfNull(model);
        var graph = model.Graph;
        var constants = graph.Initializer.Select(t => t.Name).Concat(graph.Node.Where(n => n.OpType == "Constant").SelectMany(n => n.Output))
            .ToHashSet(StringComparer.Ordinal);
        var producers = new Dictionary<string, NodeProto>(StringComparer.Ordinal);
        foreach (var node in graph.Node)
            foreach (var output in node.Output)
                producers[output] = node;
        var after = new List<NodeProto>();
        var value = featuresName;
        while (producers.TryGetValue(value, out var node))
        {
            if (PoolingOps.Contains(node.OpType))
            {
                after.Reverse();
                return new PoolingSite(node.Input[0], node.Output[0], node.OpType, after);
            }
            if (!AffineOps.Contains(node.OpType))
                return null;
            var variable = node.Input.Where(i => i.Length > 0 && !constants.Contains(i)).ToList();
            if (variable.Count != 1)
                return null;
            after.Add(node);
            value = variable[0];
        }
        return null;
    }

    /// <summary>
    /// A graph that applies the nodes after a pooling (<see cref="PoolingSite.After"/>) to pooled vectors: input
    /// <see cref="PoolingSite.PooledName"/> [N,C,1,1] (or [N,C] for <c>ReduceMean</c> without kept dimensions), output
    /// <paramref name="featuresName"/>. With it a head's affine front can be applied to each spatial position of a map.
    /// </summary>
    /// <param name="model">The graph the site was found in.</param>
    /// <param name="site">The pooling site.</param>
    /// <param name="featuresName">The output to keep.</param>
    public static ModelProto AfterPooling(ModelProto model, PoolingSite site, string featuresName)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(site);
        var slice = new ModelProto
        {
            IrVersion = model.IrVersion,
            ProducerName = "mltransfer",
            Graph = new GraphProto { Name = "after_pooling" },
        };
        slice.OpsetImport.AddRange(model.OpsetImport.Select(o => o.Clone()));
        var graph = slice.Graph;
        var needed = site.After.SelectMany(n => n.Input).ToHashSet(StringComparer.Ordinal);
        graph.Node.AddRange(model.Graph.Node.Where(n => n.OpType == "Constant" && n.Output.Any(needed.Contains)).Select(n => n.Clone()));
        graph.Node.AddRange(site.After.Select(n => n.Clone()));
        graph.Initializer.AddRange(model.Graph.Initializer.Where(t => needed.Contains(t.Name)).Select(t => t.Clone()));
        var floatType = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float } };
        graph.Input.Add(new ValueInfoProto { Name = site.PooledName, Type = floatType.Clone() });
        if (site.After.Count == 0)
            graph.Node.Add(FeaturizerGraph.Node("Identity", "mltransfer_identity", [site.PooledName], [featuresName]));
        graph.Output.Add(new ValueInfoProto { Name = featuresName, Type = floatType.Clone() });
        return slice;
    }
}

/// <summary>Where a graph globally pools a convolutional map into its features.</summary>
/// <param name="MapName">The pooled map [N,C,H,W]: for a CNN, the last convolutional output.</param>
/// <param name="PooledName">The pooling node's output.</param>
/// <param name="Operator">The pooling operator.</param>
/// <param name="After">The affine nodes between the pooling and the features output, in graph order.</param>
public sealed record PoolingSite(string MapName, string PooledName, string Operator, IReadOnlyList<NodeProto> After);
