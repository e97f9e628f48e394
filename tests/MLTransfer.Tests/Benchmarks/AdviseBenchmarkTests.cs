using MLTransfer.Benchmarks;
using MLTransfer.Selection;
using MLTransfer.Tests.TestSupport;
using NUnit.Framework;

namespace MLTransfer.Tests.Benchmarks;

public class AdviseBenchmarkTests
{
    [Test]
    public void Should_compute_kendall_tau_b_as_worked_out_by_hand()
    {
        // 10 pairs: 6 concordant, 4 discordant.
        Assert.That(AdviseBenchmark.KendallTau([1, 2, 3, 4, 5], [3, 4, 1, 2, 5]), Is.EqualTo(0.2).Within(1e-12));
        // 6 pairs: 4 concordant, one tied in x only, one tied in y only: 4 / √(5 · 5).
        Assert.That(AdviseBenchmark.KendallTau([1, 1, 2, 3], [1, 2, 2, 3]), Is.EqualTo(0.8).Within(1e-12));
        Assert.That(AdviseBenchmark.KendallTau([1, 2, 3], [3, 2, 1]), Is.EqualTo(-1));
        Assert.That(AdviseBenchmark.KendallTau([1, 1, 1], [3, 2, 1]), Is.NaN);
    }

    [Test]
    public void Should_train_every_candidate_and_score_it_on_the_test_images()
    {
        var classes = new[] { "1", "5", "8" };
        var train = TestData.SampleSubset(6, classes);
        var test = TestData.Subset(TestData.Sample, 3, 6, classes);
        var result = AdviseBenchmark.Run(train, test, new AdviseOptions { ImageSizes = [32] }, seed: 1, otherSampleSizes: [9]);

        Assert.That(result.Rows.Select(r => r.Candidate.Layer), Is.EquivalentTo(new[] { "layer2", "layer3", "layer4" }));
        Assert.That(result.Rows.Select(r => r.Candidate.Rank), Is.EqualTo(new[] { 1, 2, 3 }));
        Assert.That(result.Rows.All(r => r.HeldOutAccuracy is >= 0 and <= 1 && r.TrainSeconds > 0));
        foreach (var row in result.Rows)
            Assert.That(row.HeldOutAccuracy * test.Count, Is.EqualTo(Math.Round(row.HeldOutAccuracy * test.Count)).Within(1e-9), "a share of the 9 test images");
        Assert.That(result.KendallLogMe, Is.InRange(-1, 1).Or.NaN);
        Assert.That(result.Default, Is.Null, "224 px is not among the sizes");
        Assert.That(result.OtherSamples.Single().Advice.Images, Is.EqualTo(9));
        Assert.That(result.SpeedUp, Is.GreaterThan(0));
    }

    [Test]
    public void Should_cross_validate_every_candidate_over_the_training_and_test_images()
    {
        var classes = new[] { "1", "5", "8" };
        var train = TestData.SampleSubset(6, classes);
        var test = TestData.Subset(TestData.Sample, 3, 6, classes);
        var result = AdviseBenchmark.Run(train, test, new AdviseOptions { ImageSizes = [32] }, seed: 1, timeTraining: false, folds: 3);

        var pool = train.Count + test.Count;
        Assert.That(result.Folds, Is.EqualTo(3));
        foreach (var row in result.Rows)
        {
            Assert.That(row.CrossValidatedAccuracy * pool, Is.EqualTo(Math.Round(row.CrossValidatedAccuracy * pool)).Within(1e-9), "a share of every image");
            Assert.That(row.CrossValidatedAccuracy, Is.InRange(0.0, 1.0));
        }
        Assert.That(result.Rows.Max(r => r.CrossValidatedAccuracy), Is.GreaterThan(1.0 / 3), "some candidate beats chance on three digit classes");
        Assert.That(result.KendallLogMeCrossValidated, Is.InRange(-1, 1).Or.NaN);
        Assert.Throws<ArgumentException>(() => AdviseBenchmark.Run(train, test, new AdviseOptions { ImageSizes = [32] }, seed: 1, folds: 3));
    }

    [Test]
    public void Should_cross_validate_each_fixed_head_l2_of_the_grid_beside_feature_extractions_own()
    {
        var classes = new[] { "1", "5", "8" };
        var train = TestData.SampleSubset(6, classes);
        var test = TestData.Subset(TestData.Sample, 3, 6, classes);
        var result = AdviseBenchmark.Run(train, test, new AdviseOptions { ImageSizes = [32] }, seed: 1, timeTraining: false, folds: 3, headL2: [1f, 1e6f]);

        Assert.That(result.KendallLogMeByL2.Keys, Is.EquivalentTo(new[] { 1f, 1e6f }));
        foreach (var row in result.Rows)
        {
            Assert.That(row.CrossValidatedAccuracyByL2.Keys, Is.EquivalentTo(new[] { 1f, 1e6f }));
            Assert.That(row.BestL2Accuracy, Is.EqualTo(row.CrossValidatedAccuracyByL2.Values.Max()));
        }
        // An L2 of a million shrinks every weight to about zero: each head then predicts one class, a third of the images.
        Assert.That(result.Rows.Max(r => r.CrossValidatedAccuracyByL2[1e6f]), Is.LessThan(result.Rows.Max(r => r.CrossValidatedAccuracy)));
        Assert.Throws<ArgumentException>(() => AdviseBenchmark.Run(train, test, new AdviseOptions { ImageSizes = [32] }, seed: 1, timeTraining: false, headL2: [10f]));
    }
}
