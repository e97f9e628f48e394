using MLTransfer.Tests.TestSupport;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLTransfer.Data;
using MLTransfer.Featurization;
using MLTransfer.Techniques.DomainAdaptation;
using MLTransfer.Torch.DomainAdaptation;
using NUnit.Framework;
using static TorchSharp.torch;

namespace MLTransfer.Torch.Tests.DomainAdaptation;

public class GradientDomainAdaptationTests
{
    private static readonly string[] Classes = ["0", "1", "2"];

    [Test]
    public void Gradient_reversal_is_the_identity_forward_and_negates_the_gradient_backward()
    {
        var x = tensor(new float[] { 1, -2, 3 }).requires_grad_();
        var y = Dann.GradientReversal(x, 0.7);
        Assert.That(y.data<float>().ToArray(), Is.EqualTo(new float[] { 1, -2, 3 }));
        (y * tensor(new float[] { 1, 2, 3 })).sum().backward();
        Assert.That(x.grad!.data<float>().ToArray(), Is.EqualTo(new[] { -0.7f, -1.4f, -2.1f }).Within(1e-6f));
    }

    [Test]
    public void The_warm_up_schedule_rises_from_zero_to_almost_one()
    {
        Assert.That(FeatureAdapterTrainer.Schedule(0), Is.EqualTo(0).Within(1e-12));
        Assert.That(FeatureAdapterTrainer.Schedule(0.5), Is.EqualTo(2 / (1 + Math.Exp(-5)) - 1).Within(1e-12));
        Assert.That(FeatureAdapterTrainer.Schedule(1), Is.GreaterThan(0.9999));
    }

    [Test]
    public void Mmd_and_deep_coral_losses_vanish_for_equal_batches_and_grow_with_the_shift()
    {
        manual_seed(1);
        var a = randn(64, 8);
        var near = a + 0.05 * randn(64, 8);
        var far = 2 * a + 1.5;
        Assert.That(Mmd.MmdLoss(a, a).item<float>(), Is.EqualTo(0).Within(1e-5));
        Assert.That(Mmd.MmdLoss(a, far).item<float>(), Is.GreaterThan(Mmd.MmdLoss(a, near).item<float>() * 5));
        Assert.That(Mmd.DeepCoralLoss(a, a).item<float>(), Is.EqualTo(0).Within(1e-7));
        Assert.That(Mmd.DeepCoralLoss(a, far).item<float>(), Is.GreaterThan(Mmd.DeepCoralLoss(a, near).item<float>() * 5));
    }

    [TestCase("dann")]
    [TestCase("mmd")]
    public void Gradient_methods_on_frozen_features_fit_export_and_reload_with_MLNet_only_deterministically(string method)
    {
        var source = Domains.SourceImages(6, 0, Classes);
        var target = Domains.TargetImages(6, 10, Classes).Select(e => e.ImagePath).ToList();
        var probes = Domains.TargetImages(2, 15, Classes).Select(e => new ImageExample { ImagePath = e.ImagePath }).ToList();
        var scores = new List<float[][]>();
        for (var run = 0; run < 2; run++)
        {
            var ml = new MLContext(seed: 1);
            var engine = new FeaturizerOptions { ImageSize = 32 };
            var estimator = method == "dann"
                ? ml.Transfer().DomainAdaptation(new DannOptions { TargetImages = target, Engine = engine, Epochs = 5, BatchSize = 8, Seed = 3, TrainedBackboneBlocks = 0 })
                : ml.Transfer().DomainAdaptation(new MmdOptions { TargetImages = target, Engine = engine, Epochs = 5, BatchSize = 8, Seed = 3, TrainedBackboneBlocks = 0 });
            var result = estimator.FitDetailed(ml.Data.LoadFromEnumerable(source));
            Assert.That(result.Method, Is.EqualTo(method));
            Assert.That(result.Model.Report.History, Has.Count.EqualTo(5));
            var path = Path.Combine(TestData.TempFolder(), "model.zip");
            var probe = ml.Data.LoadFromEnumerable(probes);
            ml.Model.Save(result.Model, probe.Schema, path);
            var fresh = new MLContext();
            var reloaded = fresh.Model.Load(path, out _);
            var before = result.Model.Transform(probe).GetColumn<VBuffer<float>>("Score").Select(v => v.DenseValues().ToArray()).ToArray();
            var after = reloaded.Transform(fresh.Data.LoadFromEnumerable(probes)).GetColumn<VBuffer<float>>("Score").Select(v => v.DenseValues().ToArray()).ToArray();
            var labels = reloaded.Transform(fresh.Data.LoadFromEnumerable(probes)).GetColumn<ReadOnlyMemory<char>>("PredictedLabel").Select(l => l.ToString()).ToList();
            Assert.That(labels, Is.All.AnyOf(Classes));
            for (var i = 0; i < before.Length; i++)
            {
                Assert.That(after[i], Is.EqualTo(before[i]).Within(1e-5f));
                Assert.That(after[i].Sum(), Is.EqualTo(1f).Within(1e-3f));
            }
            // The head on the exported graph's features reproduces the saved model.
            using var featurizer = new OnnxImageFeaturizer(Backbones.Backbone.ResNet18(), engine);
            var raw = featurizer.Featurize(probes.Select(p => p.ImagePath).ToList()).Features.Select(f => f!).ToArray();
            var direct = result.ToHeadFeatures(raw, probes).Select(f => result.Head.Predict(f)).ToArray();
            for (var i = 0; i < before.Length; i++)
                Assert.That(direct[i], Is.EqualTo(before[i]).Within(1e-4f));
            scores.Add(before);
        }
        for (var i = 0; i < scores[0].Length; i++)
            Assert.That(scores[1][i], Is.EqualTo(scores[0][i]).Within(1e-6f), "same seed, same model");
    }
}
