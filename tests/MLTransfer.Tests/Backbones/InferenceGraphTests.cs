using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using MLTransfer.Backbones;
using MLTransfer.Featurization;
using MLTransfer.Tests.TestSupport;
using NUnit.Framework;
using Onnx;

namespace MLTransfer.Tests.Backbones;

public class InferenceGraphTests
{
    // ResNet18 has 3 (layer 3) + 5 (layer 4) 3×3 stride-1 convolutions with 256 or more channels; at 224 px their inputs are
    // 14×14 and 7×7 (odd: the Winograd tiles overhang and are cropped); at 128 px layer 4 is 4×4, under the minimum of 7.
    // 7×7 with tile 4 or 2 and 14×14 with tile 4 overhang and are cropped.
    [TestCase(224, 4, 8)]
    [TestCase(224, 2, 8)]
    [TestCase(128, 4, 3)]
    public void Should_compute_the_same_features_as_the_plain_graph_with_fewer_operations(int imageSize, int tileSize, int expectedWinograd)
    {
        var fused = FeaturizerGraph.Build(Backbone.ResNet18(), imageSize);

        var optimized = InferenceGraph.Optimize(fused, imageSize, new InferenceGraphOptions { WinogradTileSize = tileSize }, out var summary);

        Assert.That(summary.FoldedInputNormalization, Is.True);
        Assert.That(summary.WinogradConvolutions, Is.EqualTo(expectedWinograd));
        Assert.That(optimized.Graph.Node.Count(n => n.OpType == "MatMul"), Is.EqualTo(expectedWinograd));
        Assert.That(optimized.Graph.Node.Any(n => n.Name == "mltransfer_normalize"), Is.False);
        Assert.That(fused.Graph.Node.Any(n => n.Name == "mltransfer_normalize"), Is.True, "the argument is left as it was");
        var pixels = Pixels(imageSize, TestData.SampleSubset(1, "0", "4", "9").Select(e => e.ImagePath).ToArray());
        var plain = Run(fused, pixels, imageSize);
        var fast = Run(optimized, pixels, imageSize);
        Assert.That(plain.Max(), Is.GreaterThan(0.5f));
        Assert.That(plain.Zip(fast, (a, b) => Math.Abs(a - b)).Max(), Is.LessThanOrEqualTo(1e-4));
    }

    [Test]
    public void Should_refuse_a_tile_size_without_a_winograd_form()
    {
        var fused = FeaturizerGraph.Build(Backbone.ResNet18(), 96);

        Assert.That(() => InferenceGraph.Optimize(fused, 96, new InferenceGraphOptions { WinogradTileSize = 3 }, out _),
            Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains("2 or 4"));
    }

    [Test]
    public void Should_leave_the_graph_unchanged_when_every_rewrite_is_off()
    {
        var fused = FeaturizerGraph.Build(Backbone.ResNet18(), 96);

        var same = InferenceGraph.Optimize(fused, 96, new InferenceGraphOptions { FoldInputNormalization = false, WinogradMinChannels = 0 }, out var summary);

        Assert.That(summary, Is.EqualTo(new InferenceGraphSummary(false, 0)));
        Assert.That(same.ToByteArray(), Is.EqualTo(fused.ToByteArray()));
    }

    [Test]
    public void Should_not_fold_when_the_normalised_pixels_feed_more_than_the_first_convolution()
    {
        var fused = FeaturizerGraph.Build(Backbone.ResNet18(), 96);
        var normalized = fused.Graph.Node.Single(n => n.Name == "mltransfer_normalize").Output[0];
        fused.Graph.Node.Add(new NodeProto { OpType = "Identity", Name = "extra", Input = { normalized }, Output = { "extra_out" } });

        InferenceGraph.Optimize(fused, 96, null, out var summary);

        Assert.That(summary.FoldedInputNormalization, Is.False);
    }

    [Test]
    public void Should_write_the_optimised_graph_once_and_run_it_in_the_engine()
    {
        var folder = TestData.TempFolder();
        var plainPath = FeaturizerGraph.Materialize(Backbone.ResNet18(), 128, folder);

        var path = InferenceGraph.Materialize(plainPath, 128);
        var written = File.GetLastWriteTimeUtc(path);
        var again = InferenceGraph.Materialize(plainPath, 128);

        Assert.That(again, Is.EqualTo(path));
        Assert.That(File.GetLastWriteTimeUtc(again), Is.EqualTo(written));
        Assert.That(Directory.GetFiles(folder, "*.tmp*"), Is.Empty);
        using var fast = new OnnxImageFeaturizer(Backbone.ResNet18(), new FeaturizerOptions { ImageSize = 128, UseCache = false, GraphDirectory = folder });
        using var plain = new OnnxImageFeaturizer(Backbone.ResNet18(), new FeaturizerOptions { ImageSize = 128, UseCache = false, GraphDirectory = folder, OptimizeGraph = false });
        Assert.That(fast.ExecutionGraphPath, Is.EqualTo(path));
        Assert.That(plain.ExecutionGraphPath, Is.EqualTo(plainPath));
        Assert.That(fast.CacheContext, Is.Not.EqualTo(plain.CacheContext), "features of the two graphs differ by rounding, so they are cached apart");
        var image = TestData.SampleImage("5");
        var difference = fast.Featurize([image]).Features[0]!.Zip(plain.Featurize([image]).Features[0]!, (a, b) => Math.Abs(a - b)).Max();
        Assert.That(difference, Is.LessThanOrEqualTo(1e-4));
    }

    private static float[] Pixels(int imageSize, string[] paths)
    {
        var pixels = new float[paths.Length * ImagePreprocessor.PixelCount(imageSize)];
        for (var i = 0; i < paths.Length; i++)
            Assert.That(ImagePreprocessor.TryLoadPixels(paths[i], imageSize, pixels.AsSpan(i * ImagePreprocessor.PixelCount(imageSize))), Is.Null);
        return pixels;
    }

    private static float[] Run(ModelProto model, float[] pixels, int imageSize)
    {
        using var options = OnnxImageFeaturizer.CreateSessionOptions(1);
        using var session = new InferenceSession(model.ToByteArray(), options);
        var count = pixels.Length / ImagePreprocessor.PixelCount(imageSize);
        var input = new DenseTensor<float>(pixels, [count, 3, imageSize, imageSize]);
        using var results = session.Run([NamedOnnxValue.CreateFromTensor(FeaturizerGraph.InputName, input)]);
        return results.First().AsTensor<float>().ToArray();
    }
}
