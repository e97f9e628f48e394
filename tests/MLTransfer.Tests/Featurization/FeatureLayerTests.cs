using MLTransfer.Featurization;
using MLTransfer.Tests.TestSupport;
using NUnit.Framework;
using static MLTransfer.Tests.Featurization.FeaturizationTestSupport;

namespace MLTransfer.Tests.Featurization;

public class FeatureLayerTests
{
    [Test]
    public void Should_featurise_several_layers_in_one_pass_and_cache_each_layer_on_its_own()
    {
        var paths = CopyImages(2, "1", "4");
        var cache = TestData.TempFolder();
        using var all = Engine(cache, layers: ["layer2", "layer3", "layer4"]);
        var together = all.Featurize(paths);
        Assert.That(together.Failed, Is.Empty);
        Assert.That(all.FeatureSize, Is.EqualTo(128 + 256 + 512));
        Assert.That(all.CacheContexts.Distinct().Count(), Is.EqualTo(3));
        Assert.That(all.Cache!.Measure().Entries, Is.EqualTo(3 * paths.Count), "one entry per image and layer");

        using var layer3 = Engine(cache, layers: ["layer3"]);
        using var output = Engine(cache);
        var alone3 = layer3.Featurize(paths);
        var alone4 = output.Featurize(paths);
        Assert.That(alone3.FromCache, Is.EqualTo(paths.Count), "layer3 features written by the three-layer run are found again");
        Assert.That(alone4.FromCache, Is.EqualTo(paths.Count), "layer4 is the backbone's output: same cache entries as the default");
        for (var i = 0; i < paths.Count; i++)
        {
            Assert.That(alone3.Features[i], Is.EqualTo(all.Layers[1].Slice(together.Features[i]!)));
            Assert.That(alone4.Features[i], Is.EqualTo(all.Layers[2].Slice(together.Features[i]!)));
        }
    }

    [Test]
    public void Should_never_serve_features_of_one_layer_for_another()
    {
        var paths = CopyImages(1, "2", "7");
        var cache = TestData.TempFolder();
        using var layer3 = Engine(cache, layers: ["layer3"]);
        layer3.Featurize(paths);
        using var layer2 = Engine(cache, layers: ["layer2"]);
        using var plain = Engine(null, layers: ["layer2"]);
        var cached = layer2.Featurize(paths);
        var fresh = plain.Featurize(paths);
        Assert.That(layer3.CacheContext, Is.Not.EqualTo(layer2.CacheContext));
        Assert.That(cached.FromCache, Is.Zero);
        Assert.That(cached.Features[0], Has.Length.EqualTo(128));
        Assert.That(MaxAbsDifference(cached.Features[0]!, fresh.Features[0]!), Is.Zero);
    }
}
