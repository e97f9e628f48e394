using MLTransfer.Backbones;
using MLTransfer.Export;
using Onnx;

namespace MLTransfer.Techniques.MultiTask;

/// <summary>Standalone ONNX export of a multi-task model: the backbone graph plus one output per task.</summary>
public static class MultiTaskOnnx
{
    /// <summary>
    /// A copy of <paramref name="backbone"/> (input <c>Pixels</c>, output <c>Features</c>) with each task's head appended as
    /// ONNX nodes: <c>Gemm</c> → <c>Softmax</c> giving <c>Score_T</c> [N,K] for classification (classes in the head's order),
    /// <c>Gemm</c> giving <c>Score_T</c> [N,1] for regression. <c>Features</c> stays an output.
    /// </summary>
    /// <param name="backbone">The fused backbone graph (frozen or fine-tuned).</param>
    /// <param name="heads">The task heads.</param>
    public static ModelProto WithTaskOutputs(ModelProto backbone, IEnumerable<TaskHead> heads)
    {
        ArgumentNullException.ThrowIfNull(backbone);
        ArgumentNullException.ThrowIfNull(heads);
        var model = backbone.Clone();
        var graph = model.Graph;
        foreach (var head in heads)
        {
            var name = head.Task.Name;
            var (rows, bias) = head.Classifier is { } c ? (c.Weights, c.Bias) : ([head.Regressor!.Weights], new[] { head.Regressor.Bias });
            var d = rows[0].Length;
            graph.Initializer.Add(FeaturizerGraph.Tensor($"head_{name}_w", [rows.Length, d], rows.SelectMany(r => r).ToArray()));
            graph.Initializer.Add(FeaturizerGraph.Tensor($"head_{name}_b", [rows.Length], bias));
            var linear = head.Classifier is null ? MultiTaskColumns.Score(name) : $"head_{name}_logits";
            graph.Node.Add(FeaturizerGraph.Node("Gemm", $"head_{name}_gemm", [ImagePipeline.FeaturesColumn, $"head_{name}_w", $"head_{name}_b"], [linear],
                new AttributeProto { Name = "transB", Type = AttributeProto.Types.AttributeType.Int, I = 1 }));
            if (head.Classifier is not null)
                graph.Node.Add(FeaturizerGraph.Node("Softmax", $"head_{name}_softmax", [linear], [MultiTaskColumns.Score(name)],
                    new AttributeProto { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = 1 }));
            graph.Output.Add(FeaturizerGraph.ValueInfo(MultiTaskColumns.Score(name), "N", rows.Length));
        }
        return model;
    }
}
