using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using MLTransfer.Backbones;
using MLTransfer.Featurization;
using MLTransfer.Tests.TestSupport;
using NUnit.Framework;

namespace MLTransfer.Tests.Backbones;

public class GraphOutputsTests
{
    [TestCase(224, 7)]
    [TestCase(64, 2)]
    public void The_exposed_last_convolutional_map_averages_to_the_pooled_features(int size, int cells)
    {
        var fused = FeaturizerGraph.Build(Backbone.ResNet18(), size);
        var site = GraphOutputs.FindGlobalPooling(fused, FeaturizerGraph.OutputName);
        Assert.That(site, Is.Not.Null);
        Assert.That(site!.Operator, Is.EqualTo(size == 224 ? "AveragePool" : "GlobalAveragePool"), "the native size keeps ResNet18's fixed 7×7 pool");
        Assert.That(site.After.Select(n => n.OpType), Is.EqualTo(new[] { "Flatten" }));

        var pixels = new float[ImagePreprocessor.PixelCount(size)];
        Assert.That(ImagePreprocessor.TryLoadPixels(TestData.SampleImage("4", 2), size, pixels), Is.Null);
        using var session = new InferenceSession(GraphOutputs.WithOutputs(fused, [site.MapName]).ToByteArray());
        using var input = OrtValue.CreateTensorValueFromMemory(pixels, [1, 3, size, size]);
        using var outputs = session.Run(new RunOptions(), [FeaturizerGraph.InputName], [input], [FeaturizerGraph.OutputName, site.MapName]);
        var features = outputs[0].GetTensorDataAsSpan<float>().ToArray();
        var map = outputs[1].GetTensorDataAsSpan<float>().ToArray();
        Assert.That(outputs[1].GetTensorTypeAndShape().Shape, Is.EqualTo(new long[] { 1, 512, cells, cells }));
        var means = Enumerable.Range(0, 512).Select(c => map.AsSpan(c * cells * cells, cells * cells).ToArray().Average()).ToArray();
        Assert.That(TestData.MaxAbsDifference(means, features), Is.LessThan(1e-4));
    }

    [Test]
    public void Should_find_no_affine_pooling_behind_a_relu_and_reject_unknown_names()
    {
        var fused = FeaturizerGraph.Build(Backbone.ResNet18(), 64);
        var flatten = fused.Graph.Node.Single(n => n.Output.Contains(FeaturizerGraph.OutputName));
        flatten.Output[0] = "flat";
        fused.Graph.Node.Add(FeaturizerGraph.Node("Relu", "relu", ["flat"], [FeaturizerGraph.OutputName]));
        Assert.That(GraphOutputs.FindGlobalPooling(fused, FeaturizerGraph.OutputName), Is.Null);
        Assert.That(() => GraphOutputs.WithOutputs(fused, ["no_such_value"]), Throws.TypeOf<InvalidDataException>().With.Message.Contains("no_such_value"));
    }

    [Test]
    public void A_graph_truncated_at_a_value_computes_that_value_of_the_whole_graph_and_nothing_after_it()
    {
        const int size = 64;
        var fused = FeaturizerGraph.Build(Backbone.ResNet18(), size);
        var site = GraphOutputs.FindGlobalPooling(fused, FeaturizerGraph.OutputName)!;
        var cut = fused.Graph.Node.Where(n => n.OpType == "Add").Select(n => n.Output[0]).ToList()[^3];
        var truncated = GraphOutputs.TruncatedAt(fused, cut);

        Assert.That(truncated.Graph.Output.Select(o => o.Name), Is.EqualTo(new[] { cut }));
        Assert.That(truncated.Graph.Node.Count, Is.LessThan(fused.Graph.Node.Count));
        Assert.That(truncated.Graph.Node.SelectMany(n => n.Output), Does.Not.Contain(site.MapName), "nothing after the cut is kept");
        Assert.That(fused.Graph.Output.Select(o => o.Name), Is.EqualTo(new[] { FeaturizerGraph.OutputName }), "the argument is not changed");

        var pixels = new float[ImagePreprocessor.PixelCount(size)];
        Assert.That(ImagePreprocessor.TryLoadPixels(TestData.SampleImage("4", 2), size, pixels), Is.Null);
        using var whole = new InferenceSession(GraphOutputs.WithOutputs(fused, [cut]).ToByteArray());
        using var part = new InferenceSession(truncated.ToByteArray());
        using var input = OrtValue.CreateTensorValueFromMemory(pixels, [1, 3, size, size]);
        using var expected = whole.Run(new RunOptions(), [FeaturizerGraph.InputName], [input], [cut]);
        using var actual = part.Run(new RunOptions(), [FeaturizerGraph.InputName], [input], [cut]);
        var truth = expected[0].GetTensorDataAsSpan<float>().ToArray();
        Assert.That(truth.Select(Math.Abs).Max(), Is.GreaterThan(0.1f), "a non-trivial value");
        Assert.That(TestData.MaxAbsDifference(actual[0].GetTensorDataAsSpan<float>().ToArray(), truth), Is.LessThan(1e-5));
        Assert.That(() => GraphOutputs.TruncatedAt(fused, "no_such_value"), Throws.TypeOf<InvalidDataException>().With.Message.Contains("no_such_value"));
    }
}
