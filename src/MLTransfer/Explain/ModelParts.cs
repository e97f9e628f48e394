using System.Reflection;
using Google.Protobuf;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Onnx;
using MLTransfer.Backbones;
using MLTransfer.Evaluation;
using Onnx;

namespace MLTransfer.Explain;

/// <summary>
/// An exported (or freshly trained) MLTransfer classifier taken apart: the ONNX graph inside its <c>ApplyOnnxModel</c>
/// step (the model's own backbone, fine-tuned or adapted weights included), the image size that graph takes, and the
/// ML.NET transformers after it (the head), which score feature vectors exactly as the model does.
/// </summary>
internal sealed class ModelParts
{
    private ModelParts(ModelProto graph, string inputName, int imageSize, string featuresName, ITransformer head, IReadOnlyList<ITransformer> headSteps,
        IReadOnlyList<string> classes, string scoreColumn)
    {
        Graph = graph;
        InputName = inputName;
        ImageSize = imageSize;
        FeaturesName = featuresName;
        Head = head;
        HeadSteps = headSteps;
        Classes = classes;
        ScoreColumn = scoreColumn;
    }

    /// <summary>The backbone graph the model runs.</summary>
    public ModelProto Graph { get; }

    /// <summary>The graph's pixel input, [N,3,S,S] RGB 0–255.</summary>
    public string InputName { get; }

    /// <summary>S, the square image size.</summary>
    public int ImageSize { get; }

    /// <summary>The graph output (and column) the head reads.</summary>
    public string FeaturesName { get; }

    /// <summary>The head as one transformer: feature column in, <see cref="ScoreColumn"/> out.</summary>
    public ITransformer Head { get; }

    /// <summary>The head's individual steps, in order.</summary>
    public IReadOnlyList<ITransformer> HeadSteps { get; }

    /// <summary>Class names in score order.</summary>
    public IReadOnlyList<string> Classes { get; }

    /// <summary>The probability column explained.</summary>
    public string ScoreColumn { get; }

    /// <summary>Takes a model apart.</summary>
    /// <param name="model">An MLTransfer image classifier (<c>ImagePath</c> → … → <c>ApplyOnnxModel</c> → head).</param>
    /// <param name="scoreColumn">The probability column to explain.</param>
    /// <exception cref="InvalidDataException">The model is not an MLTransfer image classifier.</exception>
    public static ModelParts Of(ITransformer model, string scoreColumn)
    {
        ArgumentNullException.ThrowIfNull(model);
        var classes = ModelEvaluator.Classes(model, scoreColumn);
        var steps = Flatten(model).ToList();
        var onnxIndex = steps.FindLastIndex(s => s is OnnxTransformer);
        if (onnxIndex < 0)
            throw new InvalidDataException("The model has no ApplyOnnxModel step; only MLTransfer image classifiers (ImagePath → ONNX backbone → head) can be explained.");
        var onnx = (OnnxTransformer)steps[onnxIndex];
        var graph = ModelProto.Parser.ParseFrom(OnnxBytes(onnx));
        var outputs = OnnxOutputColumns(onnx);
        var headSteps = steps.Skip(onnxIndex + 1).ToList();
        if (headSteps.Count == 0)
            throw new InvalidDataException("The model has no head after its ONNX backbone.");
        var featuresName = outputs.Length == 1 ? outputs[0]
            : outputs.Contains(FeaturizerGraph.OutputName) ? FeaturizerGraph.OutputName
            : throw new InvalidDataException($"The model's ONNX step has the outputs '{string.Join("', '", outputs)}'; expected one feature output.");
        var input = graph.Graph.Input.FirstOrDefault(i => graph.Graph.Initializer.All(t => t.Name != i.Name))
            ?? throw new InvalidDataException("The model's ONNX graph has no input.");
        var dims = input.Type?.TensorType?.Shape?.Dim;
        if (dims is not { Count: 4 } || dims[2].DimValue <= 0 || dims[2].DimValue != dims[3].DimValue)
            throw new InvalidDataException($"The model's ONNX input '{input.Name}' is not a square image tensor [N,3,S,S].");
        var head = new TransformerChain<ITransformer>(headSteps.ToArray());
        return new ModelParts(graph, input.Name, (int)dims[2].DimValue, featuresName, head, headSteps, classes, scoreColumn);
    }

    /// <summary>The graph with extra outputs, as bytes for an ONNX Runtime session.</summary>
    /// <param name="outputs">Values to output besides the features.</param>
    public byte[] GraphWithOutputs(params string[] outputs) => GraphOutputs.WithOutputs(Graph, outputs).ToByteArray();

    private static IEnumerable<ITransformer> Flatten(ITransformer transformer)
    {
        if (transformer is Techniques.TransferModel transfer)
            transformer = transfer.Chain;
        if (transformer is IEnumerable<ITransformer> chain)
        {
            foreach (var inner in chain)
                foreach (var step in Flatten(inner))
                    yield return step;
        }
        else
            yield return transformer;
    }

    // ML.NET keeps the graph internal (its OnnxModel holds the bytes in a stream over a temporary file); read them the way
    // its own Save does.
    private static byte[] OnnxBytes(OnnxTransformer onnx)
    {
        const BindingFlags flags = BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public;
        var model = typeof(OnnxTransformer).GetProperty("Model", flags)?.GetValue(onnx) ?? typeof(OnnxTransformer).GetField("Model", flags)?.GetValue(onnx);
        if (model?.GetType().GetMethod("ToByteArray", flags, Type.EmptyTypes)?.Invoke(model, null) is byte[] bytes)
            return bytes;
        if (model?.GetType().GetProperty("ModelStream", flags)?.GetValue(model) is Stream { CanSeek: true, CanRead: true } stream)
        {
            lock (stream)
            {
                var position = stream.Position;
                try
                {
                    stream.Position = 0;
                    using var copy = new MemoryStream();
                    stream.CopyTo(copy);
                    return copy.ToArray();
                }
                finally
                {
                    stream.Position = position;
                }
            }
        }
        throw new MissingMethodException("This version of ML.NET does not expose the ONNX graph of ApplyOnnxModel; MLTransfer supports Microsoft.ML 6.0.");
    }

    private static string[] OnnxOutputColumns(OnnxTransformer onnx)
    {
        const BindingFlags flags = BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public;
        var value = typeof(OnnxTransformer).GetField("Outputs", flags)?.GetValue(onnx) ?? typeof(OnnxTransformer).GetProperty("Outputs", flags)?.GetValue(onnx);
        return value as string[] ?? throw new MissingMethodException("This version of ML.NET does not expose the outputs of ApplyOnnxModel; MLTransfer supports Microsoft.ML 6.0.");
    }
}
