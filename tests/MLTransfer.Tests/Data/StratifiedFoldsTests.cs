using MLTransfer.Data;
using NUnit.Framework;

namespace MLTransfer.Tests.Data;

public class StratifiedFoldsTests
{
    [Test]
    public void Should_deal_every_class_evenly_over_the_folds_and_repeat_with_the_seed()
    {
        var examples = Enumerable.Range(0, 23).Select(i => i < 11 ? "a" : i < 21 ? "b" : "c").ToList();
        var folds = StratifiedFolds.Assign(examples, 4, seed: 3);

        Assert.That(folds, Has.All.InRange(0, 3));
        foreach (var label in new[] { "a", "b", "c" })
        {
            var counts = Enumerable.Range(0, 4).Select(k => examples.Where((e, i) => e == label && folds[i] == k).Count()).ToList();
            Assert.That(counts.Max() - counts.Min(), Is.LessThanOrEqualTo(1), $"class {label}: {string.Join(",", counts)}");
        }
        Assert.That(StratifiedFolds.Assign(examples, 4, seed: 3), Is.EqualTo(folds));
        Assert.That(StratifiedFolds.Assign(examples, 4, seed: 4), Is.Not.EqualTo(folds));
    }
}
