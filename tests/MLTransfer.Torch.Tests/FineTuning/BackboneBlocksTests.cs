using MLTransfer.Tests.TestSupport;
using MLTransfer.Backbones;
using MLTransfer.Torch.FineTuning;
using MLTransfer.Torch.Streaming;
using NUnit.Framework;
using static TorchSharp.torch;

namespace MLTransfer.Torch.Tests.FineTuning;

public class BackboneBlocksTests
{
    [TestCase(false, 1e-4f)]
    [TestCase(true, 0.05f)]
    public void ResNet18_splits_at_its_residual_additions_and_cached_lower_block_outputs_feed_the_top_block_to_the_same_features(bool half, float tolerance)
    {
        var blocks = BackboneBlocks.Import(Backbone.ResNet18(), 32);
        var images = TestData.Images(classes: 2, perClass: 2).Select(i => i.Path).ToList();
        var pixels = ImagePixelReader.Read(images, 32);
        var cache = new BlockCacheSettings(TestData.TempFolder(), 1L << 30, half);
        var rows = BlockOutputs.Prepare(blocks, Backbone.ResNet18(), blocks.Cut(1), 32, images, 1, null, false, 0, cache, null, default);

        blocks.Backbone.eval();
        using var noGrad = no_grad();
        using var full = blocks.Backbone.forward(tensor(pixels.SelectMany(p => p).ToArray(), [pixels.Length, 3, 32, 32]));
        var cached = new float[images.Count * 512];
        for (var i = 0; i < images.Count; i++)
            rows.Fill(i, cached.AsSpan(i * 512, 512), null);
        using var top = blocks.Backbone.Run(new Dictionary<string, Tensor> { [blocks.Cut(1)] = tensor(cached, [images.Count, .. rows.RowShape]) }, blocks.Backbone.OutputName)[blocks.Backbone.OutputName];

        Assert.That(blocks.Blocks.Select(b => b.Count), Is.EqualTo(new[] { 9, 6, 9, 6, 9, 6, 9, 6, 6 }), "stem + first residual block, then one block per residual addition (9 parameters where a block downsamples)");
        Assert.That(blocks.Blocks.Any(b => b.Any(BackboneBlocks.IsPreprocessing)), Is.False);
        Assert.That(rows.RowShape, Is.EqualTo(new long[] { 512, 1, 1 }));
        Assert.That(blocks.FirstTrainedBlock(1), Is.EqualTo(8));
        Assert.That(blocks.FirstTrainedBlock(100), Is.EqualTo(1), "the bottom block always stays frozen");
        var difference = (full - top).abs().max().item<float>();
        TestContext.Out.WriteLine($"features through cached {(half ? "fp16" : "fp32")} block outputs vs the whole network: max |Δ| = {difference:E2}");
        Assert.That(difference, Is.LessThan(tolerance));
        var entry = Directory.GetFiles(cache.Directory!, "*.bin", SearchOption.AllDirectories).First();
        Assert.That(new FileInfo(entry).Length, Is.LessThan(half ? 1200 : 2200), "16-bit entries take half the space");
    }
}
