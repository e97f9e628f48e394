using Google.Protobuf;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLTransfer.Export;
using MLTransfer.Techniques;
using MLTransfer.Techniques.MultiTask;
using Onnx;

namespace MLTransfer.Torch.MultiTask;

/// <summary>
/// The result of multi-task fine-tuning: the fine-tuned backbone as ONNX (its trained weights and BatchNorm statistics
/// written back into the original graph's initializers) and one trained head per task.
/// </summary>
public sealed class MultiTaskFineTunedModel
{
    internal MultiTaskFineTunedModel(ModelProto backbone, IReadOnlyList<TaskHead> heads, int imageSize, IReadOnlyList<MultiTaskEpochMetrics> history)
    {
        Backbone = backbone;
        Heads = heads;
        ImageSize = imageSize;
        History = history;
    }

    /// <summary>The fine-tuned backbone graph: input <c>Pixels</c> [N,3,S,S] RGB 0–255, output <c>Features</c> [N,D].</summary>
    public ModelProto Backbone { get; }

    /// <summary>One head per task, in task order.</summary>
    public IReadOnlyList<TaskHead> Heads { get; }

    /// <summary>Square input size.</summary>
    public int ImageSize { get; }

    /// <summary>Metrics of every epoch run.</summary>
    public IReadOnlyList<MultiTaskEpochMetrics> History { get; }

    /// <summary>
    /// A standalone ONNX model with one output per task: <c>Score_T</c> (softmax probabilities, [N,K]) for classification,
    /// <c>Score_T</c> ([N,1]) for regression, after the shared <c>Features</c>, which stay an output.
    /// </summary>
    public ModelProto ToOnnx()
    {
        var model = Backbone.Clone();
        var graph = model.Graph;
        foreach (var head in Heads)
        {
            var name = head.Task.Name;
            var (rows, bias) = head.Classifier is { } c ? (c.Weights, c.Bias) : ([head.Regressor!.Weights], new[] { head.Regressor.Bias });
            var d = rows[0].Length;
            graph.Initializer.Add(Backbones.FeaturizerGraph.Tensor($"head_{name}_w", [rows.Length, d], rows.SelectMany(r => r).ToArray()));
            graph.Initializer.Add(Backbones.FeaturizerGraph.Tensor($"head_{name}_b", [rows.Length], bias));
            var linear = head.Classifier is null ? MultiTaskColumns.Score(name) : $"head_{name}_logits";
            graph.Node.Add(new NodeProto
            {
                OpType = "Gemm", Name = $"head_{name}_gemm", Input = { ImagePipeline.FeaturesColumn, $"head_{name}_w", $"head_{name}_b" }, Output = { linear },
                Attribute = { new AttributeProto { Name = "transB", Type = AttributeProto.Types.AttributeType.Int, I = 1 } },
            });
            if (head.Classifier is not null)
                graph.Node.Add(new NodeProto
                {
                    OpType = "Softmax", Name = $"head_{name}_softmax", Input = { linear }, Output = { MultiTaskColumns.Score(name) },
                    Attribute = { new AttributeProto { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = 1 } },
                });
            graph.Output.Add(Output(MultiTaskColumns.Score(name), rows.Length));
        }
        return model;
    }

    /// <summary>Writes <see cref="ToOnnx"/> to a file.</summary>
    /// <param name="path">The .onnx file.</param>
    public void SaveOnnx(string path) => AtomicFile.Write(path, s => ToOnnx().WriteTo(s));

    /// <summary>
    /// The model as an ML.NET chain of ML.NET's own transforms: <c>ImagePath</c> → image transforms → ApplyOnnxModel on the
    /// fine-tuned backbone (one pass) → per task ML.NET's multiclass scorer (<c>Score_T</c>, <c>PredictedLabel_T</c>) or
    /// regression scorer (<c>Score_T</c>).
    /// </summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="graphPath">Where to write the fine-tuned backbone graph (the saved <c>.zip</c> embeds it).</param>
    /// <param name="sampleImage">Any readable image, used to give the chain its schema.</param>
    public TransformerChain<ITransformer> ToMLNet(MLContext mlContext, string graphPath, string sampleImage)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        AtomicFile.Write(graphPath, s => Backbone.WriteTo(s));
        return TransferData.Compose(mlContext, ImageSize, graphPath, TaskHead.Chain(mlContext, Heads), sampleImage);
    }

    private static ValueInfoProto Output(string name, int width)
    {
        var shape = new TensorShapeProto();
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = "N" });
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = width });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } },
        };
    }
}
