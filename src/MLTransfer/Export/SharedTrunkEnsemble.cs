using MLTransfer.Backbones;
using Onnx;

namespace MLTransfer.Export;

/// <summary>
/// Several trained copies of one network that share their lower part (the trunk, e.g. the frozen lower blocks of a
/// backbone whose top blocks were fine-tuned) combined into one graph: the trunk runs once, each member's upper part
/// runs on the trunk's value, and the output is the members' outputs side by side, [N, K·F]. A linear head whose weights
/// are the members' heads, each divided by K, side by side, and whose bias is their mean, then gives the mean of the
/// members' logits (an ensemble that averages logits). Prediction costs the trunk once plus every member's upper part.
/// </summary>
public static class SharedTrunkEnsemble
{
    private const string Suffix = "__mltransfer_member";

    /// <summary>
    /// Combines <paramref name="members"/> (copies are made; the first member's trunk is the one kept) so that
    /// <paramref name="outputName"/> is the concatenation, along axis 1, of every member's value of it.
    /// </summary>
    /// <param name="members">Graphs with the same nodes in the same order, differing only in their initializers' values.</param>
    /// <param name="sharedValue">The value where the members part: every node that depends on it is repeated per member, the others run once.
    /// The graph's input makes a plain ensemble of whole networks.</param>
    /// <param name="outputName">The [N, F] output to concatenate.</param>
    /// <returns>The combined graph; one member gives a copy of it.</returns>
    /// <exception cref="InvalidDataException">The members differ in their nodes, the output does not depend on the shared value, or the graph has no such output.</exception>
    public static ModelProto Combine(IReadOnlyList<ModelProto> members, string sharedValue, string outputName)
    {
        ArgumentNullException.ThrowIfNull(members);
        ArgumentOutOfRangeException.ThrowIfLessThan(members.Count, 1, nameof(members));
        var result = members[0].Clone();
        var graph = result.Graph;
        var output = graph.Output.FirstOrDefault(o => o.Name == outputName)
            ?? throw new InvalidDataException($"The graph has no output '{outputName}'.");
        if (members.Count == 1)
            return result;
        foreach (var member in members.Skip(1))
        {
            if (member.Graph.Node.Count != graph.Node.Count
                || member.Graph.Node.Zip(graph.Node).Any(p => p.First.OpType != p.Second.OpType || !p.First.Input.SequenceEqual(p.Second.Input) || !p.First.Output.SequenceEqual(p.Second.Output)))
                throw new InvalidDataException("The ensemble's members are not copies of one network: their graphs have different nodes.");
        }

        var upper = UpperNodes(graph, sharedValue);
        if (!upper.Any(i => graph.Node[i].Output.Contains(outputName)))
            throw new InvalidDataException($"The output '{outputName}' does not depend on '{sharedValue}', so the members would share everything.");

        var trunk = graph.Node.Where((_, i) => !upper.Contains(i)).ToList();
        var nodes = new List<NodeProto>(trunk);
        var initializers = new List<TensorProto>();
        var parts = new List<string>();
        for (var k = 0; k < members.Count; k++)
        {
            var source = members[k].Graph;
            var weights = source.Initializer.ToDictionary(t => t.Name, StringComparer.Ordinal);
            var renamed = new Dictionary<string, string>(StringComparer.Ordinal);
            var suffix = Suffix + k;
            foreach (var index in upper)
            {
                var copy = source.Node[index].Clone();
                copy.Name += suffix;
                for (var i = 0; i < copy.Input.Count; i++)
                {
                    var input = copy.Input[i];
                    if (renamed.TryGetValue(input, out var name))
                    {
                        copy.Input[i] = name;
                    }
                    else if (weights.TryGetValue(input, out var weight))
                    {
                        var own = weight.Clone();
                        own.Name = input + suffix;
                        initializers.Add(own);
                        renamed[input] = own.Name;
                        copy.Input[i] = own.Name;
                    }
                }
                for (var i = 0; i < copy.Output.Count; i++)
                {
                    if (copy.Output[i].Length == 0)
                        continue;
                    renamed[copy.Output[i]] = copy.Output[i] + suffix;
                    copy.Output[i] += suffix;
                }
                nodes.Add(copy);
            }
            parts.Add(renamed[outputName]);
        }

        var trunkInputs = trunk.SelectMany(n => n.Input).ToHashSet(StringComparer.Ordinal);
        var kept = graph.Initializer.Where(t => trunkInputs.Contains(t.Name)).ToList();
        nodes.Add(FeaturizerGraph.Node("Concat", "mltransfer_ensemble_concat", parts.ToArray(), [outputName],
            new AttributeProto { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = 1 }));
        graph.Node.Clear();
        graph.Node.AddRange(nodes);
        graph.Initializer.Clear();
        graph.Initializer.AddRange(kept.Concat(initializers));
        // Shapes recorded for the upper part's values name values that are now repeated under other names.
        graph.ValueInfo.Clear();
        var dims = output.Type?.TensorType?.Shape?.Dim;
        if (dims is { Count: 2 } && dims[1].HasDimValue)
            dims[1].DimValue *= members.Count;
        return result;
    }

    /// <summary>The indices, in graph order, of the nodes that depend (directly or not) on <paramref name="value"/>.</summary>
    private static SortedSet<int> UpperNodes(GraphProto graph, string value)
    {
        var dependent = new HashSet<string>(StringComparer.Ordinal) { value };
        var result = new SortedSet<int>();
        for (var i = 0; i < graph.Node.Count; i++)
        {
            if (graph.Node[i].Input.Any(dependent.Contains))
            {
                result.Add(i);
                dependent.UnionWith(graph.Node[i].Output.Where(o => o.Length > 0));
            }
        }
        return result;
    }
}
