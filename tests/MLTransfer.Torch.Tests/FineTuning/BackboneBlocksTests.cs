using MLTransfer.Tests.TestSupport;
using MLTransfer.Backbones;
using MLTransfer.Torch.FineTuning;
using NUnit.Framework;
using static TorchSharp.torch;

namespace MLTransfer.Torch.Tests.FineTuning;

public class BackboneBlocksTests
{
    [Test]
    public void ResNet18_splits_at_its_residual_additions_and_cached_lower_block_outputs_feed_the_top_block_to_the_same_features()
    {
        var blocks = BackboneBlocks.Import(Backbone.ResNet18(), 32);
        var images = TestData.Images(classes: 2, perClass: 2).Select(i => i.Path).ToList();
        var pixels = ImagePixelReader.Read(images, 32);

        var (rows, shape) = blocks.CacheOutputs(pixels, blocks.Cut(1), batchSize: 3);
        blocks.Backbone.eval();
        using var noGrad = no_grad();
        using var full = blocks.Backbone.forward(tensor(pixels.SelectMany(p => p).ToArray(), [pixels.Length, 3, 32, 32]));
        using var top = blocks.Backbone.Run(new Dictionary<string, Tensor> { [blocks.Cut(1)] = tensor(rows.SelectMany(r => r).ToArray(), [rows.Length, .. shape]) }, blocks.Backbone.OutputName)[blocks.Backbone.OutputName];

        Assert.That(blocks.Blocks.Select(b => b.Count), Is.EqualTo(new[] { 9, 6, 9, 6, 9, 6, 9, 6, 6 }), "stem + first residual block, then one block per residual addition (9 parameters where a block downsamples)");
        Assert.That(blocks.Blocks.Any(b => b.Any(BackboneBlocks.IsPreprocessing)), Is.False);
        Assert.That(shape, Is.EqualTo(new long[] { 512, 1, 1 }));
        Assert.That(blocks.FirstTrainedBlock(1), Is.EqualTo(8));
        Assert.That(blocks.FirstTrainedBlock(100), Is.EqualTo(1), "the bottom block always stays frozen");
        Assert.That((full - top).abs().max().item<float>(), Is.LessThan(1e-4f));
    }
}
