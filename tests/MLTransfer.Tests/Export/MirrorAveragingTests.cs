using Google.Protobuf;
using MLTransfer.Backbones;
using MLTransfer.Export;
using MLTransfer.Tests.TestSupport;
using NUnit.Framework;
using Onnx;

namespace MLTransfer.Tests.Export;

public class MirrorAveragingTests
{
    // Y = Flatten(X · W) for X [N, 1, 1, 3] and a weight that is not symmetric, so mirroring changes the output.
    private static readonly float[] Weight = [1, 2, 4];

    private static ModelProto Tiny(long opset)
    {
        var graph = new GraphProto { Name = "tiny" };
        graph.Input.Add(FeaturizerGraph.ValueInfo("X", "N", 1, 1, 3));
        graph.Output.Add(FeaturizerGraph.ValueInfo("Y", "N", 3));
        graph.Initializer.Add(FeaturizerGraph.Tensor("W", [1, 1, 1, 3], Weight));
        graph.Node.Add(FeaturizerGraph.Node("Mul", "scale", ["X", "W"], ["XW"]));
        graph.Node.Add(FeaturizerGraph.Node("Flatten", "flat", ["XW"], ["Y"]));
        graph.ValueInfo.Add(FeaturizerGraph.ValueInfo("XW", "N", 1, 1, 3));
        var model = new ModelProto { IrVersion = 8, Graph = graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = opset });
        return model;
    }


    [TestCase(8)]
    [TestCase(13)]
    [TestCase(18)]
    public void Should_output_the_mean_of_the_image_and_its_mirror_image_for_every_image_of_the_batch(long opset)
    {
        float[] x = [1, 0, 0, /* second image */ 0, 3, 5];
        var rewritten = MirrorAveraging.Apply(Tiny(opset), "X", "Y", width: 3);
        var y = TestData.RunOnnxRuntime(rewritten.ToByteArray(), "X", x, [2, 1, 1, 3], "Y");

        // By hand: image 1 → [1, 0, 0]·W = [1, 0, 0], mirrored [0, 0, 1]·W = [0, 0, 4]; image 2 → [0, 6, 20] and [5, 6, 0].
        Assert.That(y, Is.EqualTo(new[] { 0.5f, 0, 2, 2.5f, 6, 10 }).Within(1e-6));
        var plain = TestData.RunOnnxRuntime(Tiny(opset).ToByteArray(), "X", x, [2, 1, 1, 3], "Y");
        Assert.That(plain, Is.EqualTo(new[] { 1f, 0, 0, 0, 6, 20 }), "the original graph is left as it was");
        Assert.That(rewritten.Graph.Input.Select(i => i.Name), Is.EqualTo(new[] { "X" }));
        Assert.That(rewritten.Graph.Output.Select(o => o.Name), Is.EqualTo(new[] { "Y" }));
    }

    [Test]
    public void Should_refuse_a_graph_without_the_named_values_or_already_rewritten()
    {
        Assert.That(() => MirrorAveraging.Apply(Tiny(13), "pixels", "Y", 3), Throws.TypeOf<InvalidDataException>().With.Message.Contains("no input 'pixels'"));
        Assert.That(() => MirrorAveraging.Apply(Tiny(13), "X", "features", 3), Throws.TypeOf<InvalidDataException>().With.Message.Contains("no output 'features'"));
        var once = MirrorAveraging.Apply(Tiny(13), "X", "Y", 3);
        Assert.That(() => MirrorAveraging.Apply(once, "X", "Y", 3), Throws.TypeOf<InvalidDataException>().With.Message.Contains("already"));
    }
}
