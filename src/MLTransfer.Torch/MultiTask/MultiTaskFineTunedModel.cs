using Google.Protobuf;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLTransfer.Export;
using MLTransfer.Techniques;
using MLTransfer.Techniques.MultiTask;
using MLTransfer.Torch.Training;
using Onnx;

namespace MLTransfer.Torch.MultiTask;

/// <summary>
/// The result of multi-task fine-tuning: the fine-tuned backbone as ONNX (its trained weights and BatchNorm statistics
/// written back into the original graph's initializers) and one trained head per task.
/// </summary>
public sealed class MultiTaskFineTunedModel
{
    internal MultiTaskFineTunedModel(ModelProto backbone, IReadOnlyList<TaskHead> heads, int imageSize, IReadOnlyList<TrainingEpochMetrics> history)
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
    public IReadOnlyList<TrainingEpochMetrics> History { get; }

    /// <summary>
    /// A standalone ONNX model with one output per task: <c>Score_T</c> (softmax probabilities, [N,K]) for classification,
    /// <c>Score_T</c> ([N,1]) for regression, after the shared <c>Features</c>, which stay an output.
    /// </summary>
    public ModelProto ToOnnx() => MultiTaskOnnx.WithTaskOutputs(Backbone, Heads);

    /// <summary>Writes <see cref="ToOnnx"/> to a file.</summary>
    /// <param name="path">The .onnx file.</param>
    public void SaveOnnx(string path) => AtomicFile.Write(path, s => ToOnnx().WriteTo(s));

    /// <summary>
    /// The model as an ML.NET chain of ML.NET's own transforms: <c>ImagePath</c> → image transforms → ApplyOnnxModel on the
    /// fine-tuned backbone (one pass) → per task ML.NET's multiclass scorer (<c>Score_T</c>, <c>PredictedLabel_T</c>) or
    /// regression scorer (<c>Score_T</c>).
    /// </summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="sampleImage">Any readable image, used to give the chain its schema.</param>
    /// <param name="scratchFolder">Where the graph is written while the chain is assembled (deleted before returning); null means the system's temporary folder.</param>
    public ITransformer ToMLNet(MLContext mlContext, string sampleImage, string? scratchFolder = null)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        return TransferData.ComposeInMemory(mlContext, ImageSize, Backbone.WriteTo, TaskHead.Chain(mlContext, Heads), sampleImage, scratchFolder: scratchFolder);
    }
}
