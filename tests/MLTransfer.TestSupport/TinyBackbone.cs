using System.Text.Json;
using Google.Protobuf;
using MLTransfer.Backbones;
using Onnx;

namespace MLTransfer.Tests.TestSupport;

/// <summary>
/// A tiny convolutional backbone written as a real ONNX file plus its JSON spec, for fast tests of the bring-your-own-backbone
/// path: input <c>x</c> [N,3,32,32] → 3×3 convolution with 4 filters → ReLU → global average pool → output <c>pool</c> [N,4,1,1]
/// (4 features). Optionally with an initializer no node uses, which makes ONNX Runtime log a warning.
/// </summary>
public static class TinyBackbone
{
    /// <summary>The real feature length of the graph.</summary>
    public const int Features = 4;

    /// <summary>Writes <c>tiny.onnx</c> and <c>tiny.json</c> into a fresh folder; returns the spec's path.</summary>
    /// <param name="specFeatureSize">The featureSize the spec claims (the graph gives <see cref="Features"/>).</param>
    /// <param name="unusedInitializer">Add an initializer no node reads.</param>
    public static string Write(int specFeatureSize = Features, bool unusedInitializer = false)
    {
        var folder = TestData.TempFolder();
        var graph = new GraphProto { Name = "tiny" };
        graph.Input.Add(FeaturizerGraph.ValueInfo("x", "N", 3, 32, 32));
        graph.Output.Add(FeaturizerGraph.ValueInfo("pool", "N", Features, 1, 1));
        var random = new Random(7);
        var weights = Enumerable.Range(0, Features * 3 * 3 * 3).Select(_ => (float)(random.NextDouble() - 0.5) / 100f).ToArray();
        graph.Initializer.Add(FeaturizerGraph.Tensor("w", [Features, 3, 3, 3], weights));
        graph.Initializer.Add(FeaturizerGraph.Tensor("b", [Features], new float[Features]));
        if (unusedInitializer)
            graph.Initializer.Add(FeaturizerGraph.Tensor("unused", [2], [1f, 2f]));
        graph.Node.Add(FeaturizerGraph.Node("Conv", "conv", ["x", "w", "b"], ["conv"], new AttributeProto { Name = "kernel_shape", Type = AttributeProto.Types.AttributeType.Ints, Ints = { 3, 3 } }));
        graph.Node.Add(FeaturizerGraph.Node("Relu", "relu", ["conv"], ["relu"]));
        graph.Node.Add(FeaturizerGraph.Node("GlobalAveragePool", "pool", ["relu"], ["pool"]));
        var model = new ModelProto { IrVersion = 8, ProducerName = "mltransfer-tests", Graph = graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 13 });
        File.WriteAllBytes(Path.Combine(folder, "tiny.onnx"), model.ToByteArray());
        var spec = Path.Combine(folder, "tiny.json");
        File.WriteAllText(spec, JsonSerializer.Serialize(new
        {
            name = "tiny",
            modelPath = "tiny.onnx",
            inputName = "x",
            outputName = "pool",
            inputSize = 32,
            sizeMultiple = 1,
            pixelScale = 1 / 255f,
            featureSize = specFeatureSize,
        }));
        return spec;
    }
}
