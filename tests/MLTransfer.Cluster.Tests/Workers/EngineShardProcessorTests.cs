using Microsoft.ML;
using MLTransfer.Cluster.Client;
using MLTransfer.Cluster.Jobs;
using MLTransfer.Cluster.Output;
using MLTransfer.Cluster.Tests.TestSupport;
using MLTransfer.Data;
using MLTransfer.Evaluation;
using MLTransfer.Export;
using MLTransfer.Featurization;
using MLTransfer.Techniques.FeatureExtraction;
using MLTransfer.Tests.TestSupport;
using NUnit.Framework;
using Orleans.TestingHost;

namespace MLTransfer.Cluster.Tests.Workers;

/// <summary>The real engine and a saved model on 2 in-process silos.</summary>
[NonParallelizable]
public class EngineShardProcessorTests
{
    private TestCluster _cluster = null!;

    [OneTimeSetUp]
    public async Task StartCluster() => _cluster = await TestClusters.StartAsync(2, engine: true);

    [OneTimeTearDown]
    public async Task StopCluster()
    {
        await _cluster.StopAllSilosAsync();
        await _cluster.DisposeAsync();
    }

    [Test]
    public async Task Should_predict_like_the_saved_model_on_one_machine_with_unreadable_images_as_rejected_rows()
    {
        var ml = new MLContext(seed: 1);
        var train = TestData.SampleSubset(6, "0", "1", "2");
        var model = ml.Transfer().FeatureExtraction(new FeatureExtractionOptions { Engine = new FeaturizerOptions { ImageSize = 64, UseCache = false }, ValidationFraction = 0 })
            .Fit(ml.Data.LoadFromEnumerable(train));
        var modelPath = Path.Combine(TestData.TempFolder(), "model.zip");
        ModelFile.Save(ml, model, modelPath);
        var images = TestData.Subset(TestData.Sample, 3, 10, ["0", "1", "2"]);
        var broken = Path.Combine(TestData.TempFolder(), "broken.png");
        File.WriteAllBytes(broken, [0x89, (byte)'P', (byte)'N', (byte)'G', 0, 0, 0]);
        images.Add(new ImageExample { ImagePath = broken, Label = "1" });
        var output = TestData.TempFolder();

        var outcome = await ClusterJobs.RunAsync(_cluster.Client, new ClusterJobRequest
        {
            Spec = new JobSpec { Kind = JobKind.Predict, ModelPath = modelPath, OutputDirectory = output },
            Images = images,
            ShardSize = 4,
            PollPeriod = TimeSpan.FromMilliseconds(50),
        });

        Assert.That(outcome.Status.Rejected, Is.EqualTo(1));
        var rows = PartFiles.ReadAll<PredictionPartRow>(output).ToList();
        Assert.That(rows.Select(r => r.Path), Is.EqualTo(images.Select(i => i.ImagePath)), "every image once, in job order");
        var manifest = JobManifest.Read(output)!;
        Assert.That(manifest.Classes, Is.EqualTo(new[] { "0", "1", "2" }));
        var readable = images.Where(i => i.ImagePath != broken).Select(i => i.ImagePath).ToList();
        var reloaded = ModelFile.Load(ml, modelPath);
        var expected = ModelEvaluator.Predict(ml, reloaded, readable);
        for (var i = 0; i < readable.Count; i++)
        {
            var row = rows[i];
            Assert.That(row.Error, Is.Null);
            Assert.That(row.Label, Is.EqualTo(images[i].Label));
            Assert.That(row.Score, Is.EqualTo(expected[i]).Within(1e-5f));
            Assert.That(row.PredictedLabel, Is.EqualTo(manifest.Classes![Array.IndexOf(expected[i], expected[i].Max())]));
        }
        Assert.That(rows[^1].Error, Is.Not.Null.And.Not.Empty);
        Assert.That(rows[^1].Score, Is.Null);
        Assert.That(rows[^1].PredictedLabel, Is.Null);
    }
}
