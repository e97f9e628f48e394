using MLTransfer.Featurization;
using MLTransfer.Selection;
using MLTransfer.Tests.TestSupport;
using NUnit.Framework;

namespace MLTransfer.Tests.Selection;

public class AdvisorTests
{
    private static readonly string[] Classes = ["0", "4", "7", "9"];

    [Test]
    public void Should_rank_every_layer_and_size_by_logme_and_leave_the_winner_in_the_cache()
    {
        var cache = TestData.TempFolder();
        var examples = TestData.SampleSubset(8, Classes);
        var lines = new List<string>();
        var advice = Advisor.Advise(examples, new AdviseOptions
        {
            ImageSizes = [32, 64],
            MaxImages = 24,
            Engine = new FeaturizerOptions { CacheDirectory = cache },
            Log = lines.Add,
        });

        Assert.That(advice.Images, Is.EqualTo(24), "a stratified sample of 6 images per class");
        Assert.That(advice.Classes, Is.EqualTo(4));
        Assert.That(advice.Candidates.Select(c => (c.Layer, c.ImageSize)).Order(),
            Is.EqualTo(new[] { ("layer2", 32), ("layer2", 64), ("layer3", 32), ("layer3", 64), ("layer4", 32), ("layer4", 64) }));
        Assert.That(advice.Candidates.Select(c => c.Rank), Is.EqualTo(Enumerable.Range(1, 6)));
        Assert.That(advice.Candidates.Select(c => c.LogMe), Is.Ordered.Descending);
        Assert.That(advice.Candidates.Select(c => c.FeatureLength).Distinct().Order(), Is.EqualTo(new[] { 128, 256, 512 }));
        Assert.That(advice.Candidates.All(c => c.KnnAccuracy is >= 0 and <= 1 && c.Seconds > 0 && double.IsFinite(c.LogMe)));
        Assert.That(advice.Best, Is.SameAs(advice.Candidates[0]));
        Assert.That(lines.Count(l => l.Contains("featurising")), Is.EqualTo(2), "one backbone pass per size for all three layers");

        var sample = Advisor.Sample(examples, 24, seed: 0);
        using var winner = new OnnxImageFeaturizer(advice.Best.Backbone,
            new FeaturizerOptions { ImageSize = advice.Best.ImageSize, Layers = [advice.Best.Layer], CacheDirectory = cache });
        Assert.That(winner.Featurize(sample.Select(e => e.ImagePath).ToList()).FromCache, Is.EqualTo(24),
            "training the winner finds the features advise computed");
    }

    [Test]
    public void Should_refuse_an_image_size_or_layer_the_backbone_cannot_give_before_featurising()
    {
        var examples = TestData.SampleSubset(2, Classes);
        Assert.That(() => Advisor.Advise(examples, new AdviseOptions { ImageSizes = [64, 72] }),
            Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("multiples of 32"));
        Assert.That(() => Advisor.Advise(examples, new AdviseOptions { ImageSizes = [64], Layers = ["layer5"] }),
            Throws.ArgumentException.With.Message.Contains("layer1, layer2, layer3, layer4"));
    }

    [Test]
    public void Should_sample_the_same_images_for_a_seed_keeping_every_class()
    {
        var examples = TestData.SampleSubset(10, Classes);
        var a = Advisor.Sample(examples, 20, seed: 3);
        Assert.That(a, Has.Count.EqualTo(20));
        Assert.That(a.GroupBy(e => e.Label).Select(g => g.Count()), Is.All.EqualTo(5));
        Assert.That(Advisor.Sample(examples, 20, seed: 3).Select(e => e.ImagePath), Is.EqualTo(a.Select(e => e.ImagePath)));
        Assert.That(Advisor.Sample(examples, 0, seed: 3), Is.SameAs(examples));
    }
}
