using MLTransfer.Tests.TestSupport;
using MLTransfer.Backbones;
using MLTransfer.Torch.FineTuning;
using MLTransfer.Torch.Streaming;
using NUnit.Framework;
using static TorchSharp.torch;

namespace MLTransfer.Torch.Tests.Streaming;

public class BlockOutputsTests
{
    [Test]
    public void Should_cache_the_mirror_image_of_each_view_and_train_on_both()
    {
        var blocks = BackboneBlocks.Import(Backbone.ResNet18(), 32);
        var cut = blocks.Cut(2);
        var images = TestData.Images(classes: 2, perClass: 2).Select(i => i.Path).ToList();
        var pixels = ImagePixelReader.Read(images, 32);
        var cache = new BlockCacheSettings(TestData.TempFolder(), 1L << 30, HalfPrecision: false);
        var rows = BlockOutputs.Prepare(blocks, Backbone.ResNet18(), cut, 32, images, 1, null, mirrors: true, 0, cache, null, default);

        // Ground truth: the lower blocks on the exact pixels and on the same pixels flipped left to right by libtorch.
        blocks.Backbone.eval();
        using var noGrad = no_grad();
        using var input = tensor(pixels.SelectMany(p => p).ToArray(), [pixels.Length, 3, 32, 32]);
        using var flipped = input.flip(3);
        using var exact = blocks.Backbone.Run(new Dictionary<string, Tensor> { [blocks.Backbone.InputName] = input }, cut)[cut].contiguous();
        using var mirror = blocks.Backbone.Run(new Dictionary<string, Tensor> { [blocks.Backbone.InputName] = flipped }, cut)[cut].contiguous();
        var length = (int)rows.RowShape.Aggregate(1L, (a, d) => a * d);
        var exactValues = Rows(exact.data<float>().ToArray(), length);
        var mirrorValues = Rows(mirror.data<float>().ToArray(), length);

        Assert.That(rows.Views, Is.EqualTo(2), "the exact image and its mirror");
        Assert.That(Directory.GetDirectories(cache.Directory!), Has.Length.EqualTo(2));
        var seen = new HashSet<string>();
        var value = new float[length];
        for (var i = 0; i < images.Count; i++)
        {
            Assert.That(TestData.MaxAbsDifference(exactValues[i], mirrorValues[i]), Is.GreaterThan(1e-2), "ResNet18 is not mirror-invariant");
            rows.Fill(i, value, null);
            Assert.That(TestData.MaxAbsDifference(value, exactValues[i]), Is.LessThan(1e-4), "validation (no generator) reads the exact view");
            for (var draw = 0; draw < 16; draw++)
            {
                rows.Fill(i, value, new Random(draw));
                var toExact = TestData.MaxAbsDifference(value, exactValues[i]);
                var toMirror = TestData.MaxAbsDifference(value, mirrorValues[i]);
                Assert.That(Math.Min(toExact, toMirror), Is.LessThan(1e-4), "every training read is the exact view or its mirror");
                seen.Add(toExact < toMirror ? "exact" : "mirror");
            }
        }
        Assert.That(seen, Is.EquivalentTo(new[] { "exact", "mirror" }));
    }

    private static float[][] Rows(float[] values, int length) => values.Chunk(length).ToArray();
}
