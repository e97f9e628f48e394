using MLTransfer.Backbones;
using Onnx;

namespace MLTransfer.Export;

/// <summary>
/// Horizontal-flip test-time augmentation built into a graph: the rewritten graph runs every image and its mirror image
/// through the same nodes in one batch of 2N and outputs the mean of the two feature vectors. A linear head on those
/// features then gives the mean of the two images' logits. The graph keeps its input and output names and shapes, so the
/// exported ML.NET chain is unchanged; prediction costs twice the backbone's work.
/// </summary>
public static class MirrorAveraging
{
    private const string Prefix = "mltransfer_mirror_";

    /// <summary>
    /// Rewrites <paramref name="model"/> (a copy is returned) so that <paramref name="outputName"/> is the mean of its value for
    /// the input and for the input mirrored along its last axis (width, for [N, C, H, W] pixels).
    /// </summary>
    /// <param name="model">A graph with a 4-d input <paramref name="inputName"/> and an output <paramref name="outputName"/> whose first axis is the batch.</param>
    /// <param name="inputName">The pixels input.</param>
    /// <param name="outputName">The features output to average.</param>
    /// <param name="width">The width of the input images, in pixels.</param>
    /// <exception cref="InvalidDataException">The graph has no such input or output, or is already rewritten.</exception>
    public static ModelProto Apply(ModelProto model, string inputName, string outputName, int width)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        var result = model.Clone();
        var graph = result.Graph;
        if (graph.Input.All(i => i.Name != inputName))
            throw new InvalidDataException($"The graph has no input '{inputName}'.");
        if (graph.Output.All(o => o.Name != outputName))
            throw new InvalidDataException($"The graph has no output '{outputName}'.");
        if (graph.Initializer.Any(t => t.Name.StartsWith(Prefix, StringComparison.Ordinal)))
            throw new InvalidDataException("The graph already averages mirror images.");
        var opset = result.OpsetImport.Where(o => o.Domain is "" or "ai.onnx").Select(o => o.Version).DefaultIfEmpty(1).Max();
        if (opset < 7)
            throw new InvalidDataException($"The graph's opset is {opset}; averaging mirror images needs opset 7 or later (broadcasting Mul).");

        var pair = Prefix + "pair";
        var pairedFeatures = Prefix + "features";
        foreach (var node in graph.Node)
        {
            for (var i = 0; i < node.Input.Count; i++)
            {
                if (node.Input[i] == inputName)
                    node.Input[i] = pair;
            }
            for (var i = 0; i < node.Output.Count; i++)
            {
                if (node.Output[i] == outputName)
                    node.Output[i] = pairedFeatures;
            }
        }
        // Shapes recorded for the N-image batch no longer hold for the 2N one inside the graph.
        graph.ValueInfo.Clear();

        var indices = new TensorProto { Name = Prefix + "columns", DataType = (int)TensorProto.Types.DataType.Int64, Dims = { width } };
        indices.Int64Data.AddRange(Enumerable.Range(0, width).Select(c => (long)(width - 1 - c)));
        var half = FeaturizerGraph.Tensor(Prefix + "half", [], [0.5f]);
        graph.Initializer.Add(indices);
        graph.Initializer.Add(half);

        var mirrored = Prefix + "mirrored";
        var first = Prefix + "original_features";
        var second = Prefix + "mirrored_features";
        var sum = Prefix + "sum";
        var head = new[]
        {
            Node("Gather", "Mirror", [inputName, indices.Name], [mirrored], Int("axis", 3)),
            Node("Concat", "MirrorPair", [inputName, mirrored], [pair], Int("axis", 0)),
        };
        var split = Node("Split", "MirrorSplit", [pairedFeatures], [first, second], Int("axis", 0));
        if (opset >= 18)
            split.Attribute.Add(Int("num_outputs", 2));
        for (var i = head.Length - 1; i >= 0; i--)
            graph.Node.Insert(0, head[i]);
        graph.Node.Add(split);
        graph.Node.Add(Node("Add", "MirrorSum", [first, second], [sum]));
        graph.Node.Add(Node("Mul", "MirrorMean", [sum, half.Name], [outputName]));
        return result;
    }

    private static NodeProto Node(string op, string name, string[] inputs, string[] outputs, params AttributeProto[] attributes) =>
        FeaturizerGraph.Node(op, Prefix + name, inputs, outputs, attributes);

    private static AttributeProto Int(string name, long value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };
}
