using MLTransfer.Selection;
using NUnit.Framework;

namespace MLTransfer.Tests.Selection;

public class NearestNeighborsTests
{
    private static float[] At(double degrees, float length = 1) =>
        [length * (float)Math.Cos(degrees * Math.PI / 180), length * (float)Math.Sin(degrees * Math.PI / 180)];

    // Class 0 at 0°, 10°, 20°; class 1 at 32°, 90°, 100°. Worked out by hand: only the point at 32° has a class-0 majority
    // among its nearest neighbours (20° is 12° away; 90° is 58°), for k = 1 and k = 3.
    private static readonly float[][] Points = [At(0), At(10, 7), At(20), At(32), At(90, 0.2f), At(100)];
    private static readonly int[] Labels = [0, 0, 0, 1, 1, 1];

    [TestCase(1)]
    [TestCase(3)]
    public void Should_give_the_hand_computed_leave_one_out_accuracy(int k)
    {
        Assert.That(NearestNeighbors.LeaveOneOutAccuracy(Points, Labels, k), Is.EqualTo(5.0 / 6).Within(1e-12));
    }

    [Test]
    public void Should_break_a_tied_vote_towards_the_more_similar_class()
    {
        // k = 2, worked out by hand: 0° has 5° (class 1) and 40° (class 0), a 1–1 vote that the closer 5° wins: 1 ✗;
        // 5° has 0° and 40°, both class 0 ✗; 40° has 45° and 5°, both class 1 ✗; 45° has 40° (class 0) and 5° (class 1),
        // a tie that 40° wins ✗. Without the tie-break by similarity, 0° would get class 0 and be counted right.
        float[][] points = [At(0), At(5), At(40), At(45)];
        int[] labels = [0, 1, 0, 1];
        Assert.That(NearestNeighbors.LeaveOneOutAccuracy(points, labels, 2), Is.Zero);
        labels = [1, 1, 0, 0];
        Assert.That(NearestNeighbors.LeaveOneOutAccuracy(points, labels, 1), Is.EqualTo(1.0));
    }

    [Test]
    public void Should_separate_clusters_and_be_near_chance_on_shuffled_labels()
    {
        var random = new Random(3);
        var centres = Enumerable.Range(0, 4).Select(_ => Enumerable.Range(0, 32).Select(_ => (float)random.NextDouble()).ToArray()).ToArray();
        var labels = Enumerable.Range(0, 400).Select(i => i % 4).ToArray();
        var features = labels.Select(l => centres[l].Select(c => c + 0.05f * (float)random.NextDouble()).ToArray()).ToArray();
        Assert.That(NearestNeighbors.LeaveOneOutAccuracy(features, labels), Is.EqualTo(1.0));
        var shuffled = labels.OrderBy(_ => random.Next()).ToArray();
        Assert.That(NearestNeighbors.LeaveOneOutAccuracy(features, shuffled), Is.InRange(0.1, 0.45), "chance is 0.25");
    }
}
