using MLTransfer.Backbones;
using MLTransfer.Tests.TestSupport;
using NUnit.Framework;

namespace MLTransfer.Tests.Backbones;

public class BackboneTests
{
    [Test]
    public void Should_resolve_the_catalog_spec_to_the_built_in_resnet18()
    {
        var fromSpec = Backbone.Resolve(Path.Combine(TestData.RepoRoot, "models", "backbones", "resnet18.json"));
        var builtIn = Backbone.Resolve("ResNet18");
        Assert.That(fromSpec.Identity, Is.EqualTo(builtIn.Identity));
        Assert.That(File.Exists(fromSpec.ModelPath) && File.Exists(fromSpec.MeanImagePath));
    }

    [Test]
    public void Should_round_trip_a_spec_file_with_relative_paths()
    {
        var folder = TestData.TempFolder();
        var original = Backbone.ResNet18();
        File.Copy(original.ModelPath, Path.Combine(folder, "net.onnx"));
        var spec = Path.Combine(folder, "net.json");
        File.WriteAllText(spec, """{ "name": "net", "modelPath": "net.onnx", "inputName": "Input247", "outputName": "Pooling395_Output_0", "normalization": "MeanStd", "mean": [100, 110, 120], "std": [50, 50, 50], "channelOrder": "Bgr" }""");
        var backbone = Backbone.FromSpecFile(spec);
        Assert.That(backbone.ModelPath, Is.EqualTo(Path.Combine(folder, "net.onnx")));
        Assert.That(backbone.Normalization, Is.EqualTo(NormalizationKind.MeanStd));
        Assert.That(backbone.Identity, Is.Not.EqualTo(original.Identity));
        var graph = FeaturizerGraph.Build(backbone, 64);
        Assert.That(graph.Graph.Output.Single().Name, Is.EqualTo(FeaturizerGraph.OutputName));
    }

    [TestCase("""{ "name": "x" """, "not valid")]
    [TestCase("""{ "name": "x", "modelPath": "m.onnx", "inputName": "a", "outputName": "b", "normalization": "MeanStd" }""", "mean")]
    [TestCase("""{ "name": "x", "modelPath": "m.onnx", "inputName": "a", "outputName": "b", "inputSize": 4 }""", "inputSize")]
    public void Should_reject_an_invalid_spec_with_a_clear_message(string json, string expected)
    {
        var spec = Path.Combine(TestData.TempFolder(), "bad.json");
        File.WriteAllText(spec, json);
        var error = Assert.Throws<InvalidDataException>(() => Backbone.FromSpecFile(spec));
        Assert.That(error!.Message, Does.Contain(expected).And.Contain("bad.json"));
    }
}
