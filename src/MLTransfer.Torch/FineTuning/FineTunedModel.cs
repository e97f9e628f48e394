using Google.Protobuf;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLTransfer.Backbones;
using MLTransfer.Export;
using MLTransfer.Heads;
using MLTransfer.Techniques;
using MLTransfer.Torch.Streaming;
using MLTransfer.Torch.Onnx;
using MLTransfer.Torch.Training;
using Onnx;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace MLTransfer.Torch.FineTuning;

/// <summary>
/// The result of fine-tuning: the trained backbone and head (in evaluation mode), or an ensemble of them that share the
/// frozen lower blocks, which can predict directly with TorchSharp or be exported as a standalone ONNX model whose
/// weights are the fine-tuned ones.
/// </summary>
public sealed class FineTunedModel : IDisposable
{
    /// <summary>The name of the probabilities output of <see cref="ToOnnx"/> with the head.</summary>
    public const string ProbabilitiesName = "Probabilities";

    /// <summary>The name of the logits (pre-softmax scores) value of <see cref="ToOnnx"/> with the head.</summary>
    public const string LogitsName = "Logits";

    private readonly FineTuningNetwork _network;
    private readonly IReadOnlyList<FineTuningNetwork> _members;
    private readonly string _sharedValue;

    // members: the ensemble's networks (one for a single model), whose blocks below sharedValue are the same;
    // sharedValue: the graph value where the members part (the backbone input when they share nothing).
    internal FineTunedModel(IReadOnlyList<FineTuningNetwork> members, string sharedValue, IReadOnlyList<string> classNames, int imageSize,
        IReadOnlyList<TrainingEpochMetrics> history, bool testTimeFlip = false)
    {
        TestTimeFlip = testTimeFlip;
        _members = members;
        _network = members[0];
        _sharedValue = sharedValue;
        foreach (var member in members)
        {
            member.InputValue = members.Count == 1 ? member.Backbone.InputName : sharedValue;
            member.BackboneWithoutGradients = false;
            member.eval();
        }
        ClassNames = classNames;
        ImageSize = imageSize;
        History = history;
    }

    /// <summary>The class labels, in the order of the probabilities.</summary>
    public IReadOnlyList<string> ClassNames { get; }

    /// <summary>The side of the square images the model takes.</summary>
    public int ImageSize { get; }

    /// <summary>
    /// Whether every prediction averages the backbone features of the image and of its mirror image (in TorchSharp and in
    /// every export; see <see cref="MirrorAveraging"/>).
    /// </summary>
    public bool TestTimeFlip { get; }

    /// <summary>
    /// The number of networks whose logits every prediction averages (<see cref="FineTuningOptions.EnsembleSize"/>); in
    /// top-blocks mode they share the frozen lower blocks, which run once.
    /// </summary>
    public int EnsembleSize => _members.Count;

    /// <summary>The metrics of every epoch run, in order (including epochs restored from a checkpoint), member after member.</summary>
    public IReadOnlyList<TrainingEpochMetrics> History { get; }

    /// <summary>The name of the model's input: RGB planar pixels in 0–255, [N, 3, <see cref="ImageSize"/>, <see cref="ImageSize"/>].</summary>
    public string InputName => _network.Backbone.InputName;

    /// <summary>The name of the backbone's features output.</summary>
    public string FeaturesName => _network.Backbone.OutputName;

    /// <summary>The number of backbone features the head reads (every member's, side by side, for an ensemble).</summary>
    public int FeatureCount => _members.Count * (int)_network.Head.weight!.shape[1];

    /// <summary>Class probabilities for images given as RGB planar floats in 0–255 (as <see cref="ImagePixelReader"/> reads them).</summary>
    /// <param name="pixels">One array of 3·ImageSize·ImageSize values per image.</param>
    /// <param name="batchSize">Images per forward pass.</param>
    /// <returns>One probability vector per image, in <see cref="ClassNames"/> order.</returns>
    public float[][] PredictProbabilities(IReadOnlyList<float[]> pixels, int batchSize = 32)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        var result = new List<float[]>(pixels.Count);
        using var noGrad = no_grad();
        for (int start = 0; start < pixels.Count; start += batchSize)
        {
            using var scope = NewDisposeScope();
            int count = Math.Min(batchSize, pixels.Count - start);
            float[] batch = pixels.Skip(start).Take(count).SelectMany(p => p).ToArray();
            var probabilities = F.softmax(Logits(tensor(batch, [count, 3, ImageSize, ImageSize])), 1);
            float[] flat = probabilities.data<float>().ToArray();
            int classes = ClassNames.Count;
            for (int i = 0; i < count; i++)
            {
                result.Add(flat.AsSpan(i * classes, classes).ToArray());
            }
        }

        return result.ToArray();
    }

    /// <summary>
    /// Class probabilities for image files, decoded exactly like ML.NET's LoadImages → ResizeImages → ExtractPixels,
    /// streamed in batches (memory does not grow with the number of images).
    /// </summary>
    /// <param name="imagePaths">The image files.</param>
    /// <param name="batchSize">Images per forward pass.</param>
    /// <exception cref="InvalidDataException">An image cannot be decoded.</exception>
    public float[][] PredictProbabilities(IReadOnlyList<string> imagePaths, int batchSize = 32) => Predict(imagePaths, null, batchSize);

    /// <summary>
    /// Class probabilities of one ensemble member alone (with <see cref="TestTimeFlip"/> when the model has it), for image
    /// files decoded like <see cref="PredictProbabilities(IReadOnlyList{string}, int)"/>; out-of-fold scores of an ensemble
    /// trained with <see cref="FineTuningOptions.EnsembleFolds"/> come from here.
    /// </summary>
    /// <param name="imagePaths">The image files.</param>
    /// <param name="member">The member, from 0 to <see cref="EnsembleSize"/> − 1.</param>
    /// <param name="batchSize">Images per forward pass.</param>
    /// <exception cref="InvalidDataException">An image cannot be decoded.</exception>
    public float[][] PredictMemberProbabilities(IReadOnlyList<string> imagePaths, int member, int batchSize = 32)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(member);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(member, EnsembleSize);
        return Predict(imagePaths, member, batchSize);
    }

    private float[][] Predict(IReadOnlyList<string> imagePaths, int? member, int batchSize)
    {
        ArgumentNullException.ThrowIfNull(imagePaths);
        var result = new float[imagePaths.Count][];
        using var noGrad = no_grad();
        foreach (var batch in BatchStream.Ordered(new ImageFileRows(imagePaths, ImageSize), Enumerable.Range(0, imagePaths.Count).ToArray(), batchSize))
        {
            using (batch)
            using (NewDisposeScope())
            {
                var flat = F.softmax(Logits(batch.Input, member), 1).data<float>().ToArray();
                var classes = ClassNames.Count;
                for (var k = 0; k < batch.Count; k++)
                    result[batch.Items[k]] = flat.AsSpan(k * classes, classes).ToArray();
            }
        }
        return result;
    }

    // The head is linear, so the mean of the two images' logits is the head applied to the mean of their features.
    private Tensor Logits(Tensor pixels, int? member = null) =>
        TestTimeFlip ? MemberMean(pixels, member).Plus(MemberMean(pixels.flip(3), member)).Times(0.5) : MemberMean(pixels, member);

    // The members' mean logits (or one member's); the shared lower blocks run once.
    private Tensor MemberMean(Tensor pixels, int? member)
    {
        if (_members.Count == 1)
            return _network.forward(pixels);
        var shared = _sharedValue == InputName ? pixels
            : _network.Backbone.Run(new Dictionary<string, Tensor>(StringComparer.Ordinal) { [InputName] = pixels }, _sharedValue)[_sharedValue];
        if (member is { } only)
            return _members[only].forward(shared);
        var sum = _members[0].forward(shared);
        foreach (var other in _members.Skip(1))
            sum = sum.Plus(other.forward(shared));
        return sum.Times(1.0 / _members.Count);
    }

    /// <summary>
    /// The head's weights, [classes × <see cref="FeatureCount"/>] row-major, and biases, [classes]. For an ensemble, the
    /// members' heads each divided by <see cref="EnsembleSize"/>, side by side, and the mean of their biases: on the
    /// members' features side by side, the mean of their logits.
    /// </summary>
    public (float[] Weights, float[] Biases) HeadParameters()
    {
        using var scope = NewDisposeScope();
        var scale = 1.0 / _members.Count;
        var weights = cat(_members.Select(m => m.Head.weight!.detach()).ToList(), 1).Times(scale).contiguous();
        var biases = stack(_members.Select(m => m.Head.bias!.detach()).ToList(), 0).mean([0L]).contiguous();
        return (weights.data<float>().ToArray(), biases.data<float>().ToArray());
    }

    /// <summary>
    /// The fine-tuned network as ONNX: the original backbone graph with its initializers (weights and BatchNorm running
    /// statistics) replaced by the trained values under the same names, plus, with <paramref name="includeHead"/>,
    /// the head as Gemm → Softmax with output <see cref="ProbabilitiesName"/> [N, classes] (the features stay an output).
    /// With <see cref="TestTimeFlip"/> the features are those of the image and its mirror image, averaged. For an
    /// ensemble the features are the members' side by side (<see cref="SharedTrunkEnsemble"/>: shared lower blocks
    /// run once) and the head is <see cref="HeadParameters"/>.
    /// </summary>
    /// <param name="includeHead">Whether to append the classification head.</param>
    public ModelProto ToOnnx(bool includeHead = true)
    {
        var model = _members.Count == 1 ? _network.Backbone.ExportModel()
            : SharedTrunkEnsemble.Combine(_members.Select(m => m.Backbone.ExportModel()).ToList(), _sharedValue, FeaturesName);
        if (TestTimeFlip)
            model = MirrorAveraging.Apply(model, InputName, FeaturesName, ImageSize);
        if (!includeHead)
        {
            return model;
        }

        var graph = model.Graph;
        var (weights, biases) = HeadParameters();
        graph.Initializer.Add(FeaturizerGraph.Tensor("HeadWeight", [ClassNames.Count, FeatureCount], weights));
        graph.Initializer.Add(FeaturizerGraph.Tensor("HeadBias", [ClassNames.Count], biases));
        graph.Node.Add(new NodeProto
        {
            OpType = "Gemm",
            Name = "HeadGemm",
            Input = { FeaturesName, "HeadWeight", "HeadBias" },
            Output = { LogitsName },
            Attribute = { new AttributeProto { Name = "transB", Type = AttributeProto.Types.AttributeType.Int, I = 1 } },
        });
        graph.Node.Add(new NodeProto
        {
            OpType = "Softmax",
            Name = "HeadSoftmax",
            Input = { LogitsName },
            Output = { ProbabilitiesName },
            Attribute = { new AttributeProto { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = 1 } },
        });
        graph.Output.Insert(0, ProbabilitiesValue(ClassNames.Count));
        return model;
    }

    /// <summary>Writes <see cref="ToOnnx"/> to <paramref name="path"/> (through a temporary file and a rename).</summary>
    /// <param name="path">The .onnx file to write.</param>
    /// <param name="includeHead">Whether to append the classification head.</param>
    public void SaveOnnx(string path, bool includeHead = true)
    {
        ArgumentNullException.ThrowIfNull(path);
        var bytes = ToOnnx(includeHead).ToByteArray();
        AtomicFile.WriteAllBytes(path, bytes);
    }

    /// <summary>
    /// The fine-tuned model as an ML.NET chain made of ML.NET's own transforms only (<c>ImagePath</c> → LoadImages →
    /// ResizeImages → ExtractPixels → ApplyOnnxModel on the fine-tuned backbone → linear softmax head →
    /// <c>PredictedLabel</c>, <c>Score</c>), ready for <c>mlContext.Model.Save</c>.
    /// </summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="sampleImage">Any readable image, used to give the chain its schema.</param>
    /// <param name="scratchFolder">Where the graph is written while the chain is assembled (deleted before returning); null means the system's temporary folder.</param>
    /// <remarks>The chain holds the graph (ML.NET keeps a temporary copy until the chain is disposed); nothing else is left on disk.</remarks>
    public ITransformer ToMLNet(MLContext mlContext, string sampleImage, string? scratchFolder = null)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        var (weights, biases) = HeadParameters();
        var rows = Enumerable.Range(0, ClassNames.Count).Select(k => weights.AsSpan(k * FeatureCount, FeatureCount).ToArray()).ToArray();
        var head = new LinearHead(rows, biases, ClassNames).ToMLNet(mlContext, ImagePipeline.FeaturesColumn);
        var graph = ToOnnx(includeHead: false);
        return TransferData.ComposeInMemory(mlContext, ImageSize, graph.WriteTo, head, sampleImage, scratchFolder: scratchFolder);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var member in _members)
            member.Dispose();
    }

    private static ValueInfoProto ProbabilitiesValue(int classes)
    {
        var shape = new TensorShapeProto();
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = "N" });
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = classes });
        return new ValueInfoProto
        {
            Name = ProbabilitiesName,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } },
        };
    }
}
