using Microsoft.ML;
using MLTransfer.Heads;
using NUnit.Framework;

namespace MLTransfer.Tests.Heads;

public class LbfgsHeadTrainerTests
{
    private static readonly string[] Classes = ["a", "b"];

    // Two classes of Gaussian vectors (sd 1 per feature). Sparse: one feature carries the signal (means ±1) among
    // features of pure noise (sd 3), so shrinking every weight alike loses the signal and a weak L2 is right. Dense: every
    // feature carries a little (means ±0.15), so the best rule is the mean difference, which a strong L2 tends to, while a
    // weak one fits the noise of too few images.
    private static (List<float[]> Features, List<string> Labels) Blobs(int perClass, int dimensions, bool dense, int seed)
    {
        var random = new Random(seed);
        double Normal() => Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
        var features = new List<float[]>();
        var labels = new List<string>();
        for (var i = 0; i < 2 * perClass; i++)
        {
            var sign = i % 2 == 0 ? -1 : 1;
            var x = new float[dimensions];
            for (var j = 0; j < dimensions; j++)
                x[j] = (float)(dense ? 0.15 * sign + Normal() : j == 0 ? sign + Normal() : 3 * Normal());
            features.Add(x);
            labels.Add(Classes[i % 2]);
        }
        return (features, labels);
    }

    private static double Accuracy(LinearHead head, List<float[]> features, List<string> labels) =>
        head.Accuracy(features, labels.Select(l => Array.IndexOf(Classes, l)).ToList());

    [TestCase(true, 1000f)]
    [TestCase(false, 0.001f)]
    public void Should_choose_the_l2_that_generalises_better_on_fresh_images(bool dense, float right)
    {
        var (train, labels) = Blobs(perClass: 40, dimensions: 300, dense, seed: 1);
        var (test, testLabels) = Blobs(perClass: 1000, dimensions: 300, dense, seed: 2);
        var ml = new MLContext(seed: 1);
        var wrong = right == 1000f ? 0.001f : 1000f;

        var (tuned, l2) = LbfgsHeadTrainer.TrainTuned(ml, Classes, train, labels, seed: 3, grid: [0.001f, 1000f]);
        var other = LbfgsHeadTrainer.Train(ml, Classes, train, labels, wrong);

        Assert.That(l2, Is.EqualTo(right));
        Assert.That(Accuracy(tuned, test, testLabels), Is.GreaterThan(Accuracy(other, test, testLabels) + 0.05),
            "on fresh images from the same distribution the chosen head is clearly better");
    }

    [Test]
    public void Should_retrain_on_every_vector_with_the_chosen_l2_and_repeat_given_the_seed()
    {
        var (train, labels) = Blobs(perClass: 30, dimensions: 20, dense: true, seed: 5);
        var ml = new MLContext(seed: 1);

        var (head, l2) = LbfgsHeadTrainer.TrainTuned(ml, Classes, train, labels, seed: 3);
        var again = LbfgsHeadTrainer.TrainTuned(new MLContext(seed: 1), Classes, train, labels, seed: 3);
        var direct = LbfgsHeadTrainer.Train(new MLContext(seed: 1), Classes, train, labels, l2);

        Assert.That(LbfgsHeadTrainer.DefaultL2Grid, Does.Contain(l2));
        Assert.That(again.L2, Is.EqualTo(l2));
        Assert.That(again.Head.Weights, Is.EqualTo(head.Weights));
        Assert.That(direct.Weights, Is.EqualTo(head.Weights), "the returned head is the one trained on all vectors with that L2");
    }

    [Test]
    public void Should_keep_the_default_l2_when_a_class_has_too_few_vectors_to_hold_any_out()
    {
        var (train, labels) = Blobs(perClass: 2, dimensions: 3, dense: true, seed: 5);
        var (_, l2) = LbfgsHeadTrainer.TrainTuned(new MLContext(seed: 1), Classes, train, labels, seed: 3);
        Assert.That(l2, Is.EqualTo(LbfgsHeadTrainer.DefaultL2Regularization));
        Assert.Throws<ArgumentException>(() => LbfgsHeadTrainer.TrainTuned(new MLContext(seed: 1), Classes, train, labels, seed: 3, grid: [float.NaN]));
    }
}
