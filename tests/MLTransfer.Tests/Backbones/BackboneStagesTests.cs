using Google.Protobuf;
using MLTransfer.Backbones;
using MLTransfer.Featurization;
using MLTransfer.Tests.TestSupport;
using NUnit.Framework;

namespace MLTransfer.Tests.Backbones;

public class BackboneStagesTests
{
    private const int Size = 64;

    [Test]
    public void Should_find_the_four_residual_stages_of_resnet18_with_their_channels_and_strides()
    {
        var stages = BackboneStages.Of(Backbone.ResNet18());
        Assert.That(stages.Select(s => s.Name), Is.EqualTo(new[] { "layer1", "layer2", "layer3", "layer4" }));
        Assert.That(stages.Select(s => s.Tensor), Is.EqualTo(new[] { "ReLU283_Output_0", "ReLU315_Output_0", "ReLU347_Output_0", "ReLU393_Output_0" }));
        Assert.That(stages.Select(s => s.Channels), Is.EqualTo(new[] { 64, 128, 256, 512 }));
        Assert.That(stages.Select(s => s.Stride), Is.EqualTo(new[] { 4, 8, 16, 32 }));
        Assert.That(stages.Select(s => s.IsOutput), Is.EqualTo(new[] { false, false, false, true }), "the final average pool reads layer4");
    }

    [Test]
    public void Should_use_the_stages_a_spec_names_in_graph_order()
    {
        var backbone = Backbone.ResNet18() with
        {
            Stages = new Dictionary<string, string> { ["top"] = "ReLU393_Output_0", ["middle"] = "ReLU315_Output_0" },
        };
        var stages = BackboneStages.Of(backbone);
        Assert.That(stages.Select(s => (s.Name, s.Channels, s.Stride)), Is.EqualTo(new[] { ("middle", 128, 8), ("top", 512, 32) }));
        Assert.That(BackboneStages.Resolve(backbone, ["MIDDLE"]).Single().Tensor, Is.EqualTo("ReLU315_Output_0"));

        var wrong = Backbone.ResNet18() with { Stages = new Dictionary<string, string> { ["x"] = "NoSuchTensor" } };
        Assert.That(() => BackboneStages.Of(wrong), Throws.InstanceOf<InvalidDataException>().With.Message.Contains("NoSuchTensor"));
    }

    [Test]
    public void Should_name_the_layers_there_are_when_a_layer_is_unknown()
    {
        var error = Assert.Throws<ArgumentException>(() => BackboneStages.Resolve(Backbone.ResNet18(), ["layer9"]));
        Assert.That(error!.Message, Does.Contain("'layer9'").And.Contain("layer1, layer2, layer3, layer4"));
        Assert.That(() => BackboneStages.Resolve(Backbone.ResNet18(), ["layer3", "Layer3"]), Throws.ArgumentException.With.Message.Contains("twice"));
    }

    [Test]
    public void Should_treat_the_stage_the_output_pools_as_the_default_features()
    {
        var backbone = Backbone.ResNet18();
        Assert.That(BackboneStages.ForFeatures(backbone, ["layer4"]), Is.Null);
        Assert.That(BackboneStages.ForFeatures(backbone, null), Is.Null);
        var folder = TestData.TempFolder();
        Assert.That(FeaturizerGraph.Materialize(backbone, Size, folder, ["layer4"]), Is.EqualTo(FeaturizerGraph.Materialize(backbone, Size, folder)));
    }

    [Test]
    public void Should_pool_an_earlier_stage_exactly_and_drop_the_layers_after_it()
    {
        var backbone = Backbone.ResNet18();
        var pixels = RandomPixels(seed: 5);

        // Ground truth: the full fused graph with layer3's map exposed, averaged over its 4×4 positions here.
        var full = FeaturizerGraph.Build(backbone, Size);
        full.Graph.Output.Add(new Onnx.ValueInfoProto { Name = "ReLU347_Output_0" });
        var map = TestData.RunOnnxRuntime(full.ToByteArray(), FeaturizerGraph.InputName, pixels, [1, 3, Size, Size], "ReLU347_Output_0");
        var cells = Size / 16 * (Size / 16);
        Assert.That(map, Has.Length.EqualTo(256 * cells));
        var expected = Enumerable.Range(0, 256).Select(c => map.Skip(c * cells).Take(cells).Average()).ToArray();

        var layer3 = FeaturizerGraph.Build(backbone, Size, ["layer3"]);
        var actual = TestData.RunOnnxRuntime(layer3.ToByteArray(), FeaturizerGraph.InputName, pixels, [1, 3, Size, Size], FeaturizerGraph.OutputName);
        Assert.That(actual, Has.Length.EqualTo(256));
        Assert.That(TestData.MaxAbsDifference(actual, expected), Is.LessThan(1e-5));
        Assert.That(expected.Max(), Is.GreaterThan(0.01f), "a real, non-zero feature map");
        Assert.That(layer3.Graph.Node.Select(n => n.Name), Has.None.EqualTo("Convolution349"), "layer4's first convolution is not computed");
        Assert.That(layer3.Graph.Initializer.Count, Is.LessThan(full.Graph.Initializer.Count));
    }

    [Test]
    public void Should_concatenate_several_layers_in_one_graph_with_the_output_layer_unchanged()
    {
        var backbone = Backbone.ResNet18();
        var pixels = RandomPixels(seed: 9);
        float[] Run(IReadOnlyList<string>? layers) =>
            TestData.RunOnnxRuntime(FeaturizerGraph.Build(backbone, Size, layers).ToByteArray(), FeaturizerGraph.InputName, pixels, [1, 3, Size, Size], FeaturizerGraph.OutputName);

        var all = Run(["layer2", "layer3", "layer4"]);
        Assert.That(all, Has.Length.EqualTo(128 + 256 + 512));
        Assert.That(all[..128], Is.EqualTo(Run(["layer2"])).Within(1e-6f));
        Assert.That(all[128..384], Is.EqualTo(Run(["layer3"])).Within(1e-6f));
        Assert.That(all[384..], Is.EqualTo(Run(null)).Within(1e-6f), "layer4 is the backbone's own output");
        Assert.That(FeatureLayer.Of(backbone, BackboneStages.ForFeatures(backbone, ["layer2", "layer3", "layer4"])).Select(l => (l.Name, l.Offset, l.Length)),
            Is.EqualTo(new[] { ("layer2", 0, 128), ("layer3", 128, 256), ("layer4", 384, 512) }));
    }

    private static float[] RandomPixels(int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, 3 * Size * Size).Select(_ => (float)random.Next(256)).ToArray();
    }
}
