using MLTransfer.Featurization;
using MLTransfer.Tests.TestSupport;
using NUnit.Framework;
using static MLTransfer.Tests.Featurization.FeaturizationTestSupport;

namespace MLTransfer.Tests.Featurization;

public class OnnxImageFeaturizerTests
{
    [TestCase(3, 1)]
    [TestCase(3, 2)]
    [TestCase(1, 3)]
    public void Should_preserve_order_with_several_decode_and_inference_threads(int decodeThreads, int inferenceThreads)
    {
        var distinct = TestData.SampleSubset(2, "0", "3", "5", "8").Select(e => e.ImagePath)
            .Concat(new[] { "banana.jpg", "hotdog.jpg", "tomato.bmp", "tomato_indexedpixelformat.gif" }.Select(f => Path.Combine(TestData.MlNetImages, f)))
            .ToList();
        using var reference = Engine(cacheDirectory: null, decodeThreads: 1, batchSize: 1);
        var expected = distinct.ToDictionary(p => p, p => reference.Featurize([p]).Features[0]!);
        // Big and small images interleaved, repeated, so that workers finish out of order.
        var paths = Enumerable.Range(0, 3).SelectMany(r => r % 2 == 0 ? distinct : Enumerable.Reverse(distinct)).ToList();

        using var engine = Engine(cacheDirectory: null, decodeThreads: decodeThreads, batchSize: 5, inferenceThreads: inferenceThreads);
        var result = engine.Featurize(paths);

        Assert.That(result.Failed, Is.Empty);
        for (var i = 0; i < paths.Count; i++)
            Assert.That(MaxAbsDifference(result.Features[i]!, expected[paths[i]]), Is.LessThanOrEqualTo(1e-4), $"position {i}: {paths[i]}");
    }

    [Test]
    public void Should_report_unreadable_images_and_featurize_the_others()
    {
        var folder = TestData.TempFolder();
        var (empty, text, truncated) = UnreadableImages(folder);
        var missing = Path.Combine(folder, "missing.png");
        var good = TestData.SampleSubset(2, "1", "2").Select(e => e.ImagePath).ToList();
        var paths = new List<string> { good[0], empty, good[1], text, truncated, good[2], missing, good[3] };

        using var engine = Engine(TestData.TempFolder(), decodeThreads: 2, batchSize: 3, inferenceThreads: 2);
        var progress = new Recorder();
        var result = engine.Featurize(paths, progress);

        Assert.That(result.Failed.Select(f => f.Path), Is.EqualTo(new[] { empty, text, truncated, missing }));
        Assert.That(result.Failed.Select(f => f.Reason), Is.All.Not.Empty);
        Assert.That(result.Failed[0].Reason, Does.Contain("empty"));
        Assert.That(result.Failed[2].Reason, Does.Contain("truncated"));
        Assert.That(result.Failed[3].Reason, Does.Contain("not found"));
        foreach (var i in new[] { 1, 3, 4, 6 })
            Assert.That(result.Features[i], Is.Null);
        foreach (var i in new[] { 0, 2, 5, 7 })
            Assert.That(result.Features[i], Has.Length.EqualTo(512).And.Some.GreaterThan(0f));
        Assert.That(progress.Reports[^1].Done, Is.EqualTo(paths.Count));
        Assert.That(progress.Reports.Select(r => r.Done), Is.Ordered);
    }

    [Test]
    public void Should_return_an_empty_result_for_no_images()
    {
        using var engine = Engine(cacheDirectory: null);
        var result = engine.Featurize([]);
        Assert.That(result.Features, Is.Empty);
        Assert.That(result.Failed, Is.Empty);
    }

    [Test]
    public void Should_stop_when_cancelled()
    {
        var paths = Enumerable.Repeat(TestData.SampleImage("4"), 40).ToList();
        using var engine = Engine(cacheDirectory: null, batchSize: 2, inferenceThreads: 2);
        using var cancel = new CancellationTokenSource();
        var progress = new ActionProgress(p =>
        {
            if (p.Done >= 4)
                cancel.Cancel();
        });
        Assert.That(() => engine.Featurize(paths, progress, cancel.Token), Throws.InstanceOf<OperationCanceledException>());
    }

    private sealed class ActionProgress(Action<FeaturizationProgress> action) : IProgress<FeaturizationProgress>
    {
        public void Report(FeaturizationProgress value) => action(value);
    }
}
