using Microsoft.ML;
using Microsoft.ML.Data;
using MLTransfer.Backbones;
using MLTransfer.Data;
using MLTransfer.Export;
using MLTransfer.Featurization;
using MLTransfer.Tests.TestSupport;
using NUnit.Framework;

namespace MLTransfer.Tests.Backbones;

public class FeaturizerGraphTests
{
    private sealed class Row
    {
        public string ImagePath { get; set; } = "";
    }

    private static float[][] Column(IDataView view, string column, int size)
    {
        return view.GetColumn<VBuffer<float>>(column).Select(v => v.DenseValues().Take(size).ToArray()).ToArray();
    }

    [Test]
    public void Should_reproduce_mlnet_resnet18_featurizer_on_real_images()
    {
        var ml = new MLContext(seed: 1);
        var paths = new[] { TestData.SampleImage("0"), TestData.SampleImage("5"), TestData.SampleImage("9", 3) };
        var data = ml.Data.LoadFromEnumerable(paths.Select(p => new Row { ImagePath = p }));

        var reference = ml.Transforms.LoadImages("Image", null, "ImagePath")
            .Append(ml.Transforms.ResizeImages("Image", 224, 224, "Image"))
            .Append(ml.Transforms.ExtractPixels("Pixels", "Image"))
            .Append(ml.Transforms.DnnFeaturizeImage("Ref", m => m.ModelSelector.ResNet18(ml, m.OutputColumn, m.InputColumn), "Pixels"));
        var expected = Column(reference.Fit(data).Transform(data), "Ref", 512);

        var graph = FeaturizerGraph.Materialize(Backbone.ResNet18(), folder: TestData.TempFolder());
        var ours = ImagePipeline.Create(ml, 224, graph);
        var actual = Column(ours.Fit(data).Transform(data), ImagePipeline.FeaturesColumn, 512);

        for (var i = 0; i < paths.Length; i++)
        {
            var maxDiff = expected[i].Zip(actual[i], (a, b) => Math.Abs(a - b)).Max();
            Assert.That(maxDiff, Is.LessThanOrEqualTo(1e-4), $"image {i}");
            Assert.That(actual[i].Max(), Is.GreaterThan(0.1f));
        }
    }

    [TestCase(96)]
    [TestCase(224)]
    public void Should_give_engine_features_equal_to_exported_pipeline_features(int imageSize)
    {
        var ml = new MLContext(seed: 1);
        var paths = TestData.SampleSubset(2, "1", "7").Select(e => e.ImagePath).ToArray();
        using var engine = new OnnxImageFeaturizer(Backbone.ResNet18(), new FeaturizerOptions { ImageSize = imageSize, BatchSize = 3, UseCache = false, GraphDirectory = TestData.TempFolder() });
        var fromEngine = engine.Featurize(paths);

        var data = ml.Data.LoadFromEnumerable(paths.Select(p => new Row { ImagePath = p }));
        var exported = Column(ImagePipeline.Create(ml, imageSize, engine.GraphPath).Fit(data).Transform(data), ImagePipeline.FeaturesColumn, 512);

        Assert.That(fromEngine.Failed, Is.Empty);
        for (var i = 0; i < paths.Length; i++)
        {
            var maxDiff = fromEngine.Features[i]!.Zip(exported[i], (a, b) => Math.Abs(a - b)).Max();
            Assert.That(maxDiff, Is.LessThanOrEqualTo(1e-4), $"image {i}");
        }
    }

    [Test]
    public void Should_name_the_missing_node_when_spec_is_wrong()
    {
        var wrong = Backbone.ResNet18() with { InputName = "nope" };
        var error = Assert.Throws<InvalidDataException>(() => FeaturizerGraph.Build(wrong));
        Assert.That(error!.Message, Does.Contain("'nope'").And.Contain("Input247"));
    }

    [Test]
    public void Should_reject_a_file_that_is_not_onnx()
    {
        var fake = Path.Combine(TestData.TempFolder(), "fake.onnx");
        File.WriteAllText(fake, "this is not a protobuf model at all");
        var error = Assert.Throws<InvalidDataException>(() => FeaturizerGraph.Build(Backbone.ResNet18() with { ModelPath = fake }));
        Assert.That(error!.Message, Does.Contain(fake));
    }

    [Test]
    public void Should_refuse_an_image_size_the_network_cannot_take_before_running_it()
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => FeaturizerGraph.Build(Backbone.ResNet18(), 72));
        Assert.That(error!.Message, Does.Contain("multiples of 32").And.Contain("64 or 96"));
        Assert.That(FeaturizerGraph.Build(Backbone.ResNet18(), 96).Graph.Input[0].Name, Is.EqualTo(FeaturizerGraph.InputName));
    }
}
