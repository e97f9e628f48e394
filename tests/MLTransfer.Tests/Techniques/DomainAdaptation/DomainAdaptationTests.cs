using Microsoft.ML;
using MLTransfer.Evaluation;
using MLTransfer.Featurization;
using MLTransfer.Techniques.DomainAdaptation;
using MLTransfer.Tests.TestSupport;
using NUnit.Framework;

namespace MLTransfer.Tests.Techniques.DomainAdaptation;

public class DomainAdaptationTests
{
    private static readonly string[] Classes = ["0", "1", "2", "3"];

    private static T Options<T>(T options, string targetFolder, int imageSize = 32) where T : DomainAdaptationOptions
    {
        options.TargetFolder = targetFolder;
        options.Engine = new FeaturizerOptions { ImageSize = imageSize, CacheDirectory = Shared.CacheDir };
        options.ValidationFraction = 0.2;
        options.Seed = 4;
        return options;
    }

    private static IReadOnlyList<string> Probes() => Domains.TargetImages(1, 15, Classes).Select(e => e.ImagePath).ToList();

    [TestCase(CoralDirection.TargetToSource)]
    [TestCase(CoralDirection.SourceToTarget)]
    public void Coral_fits_saves_and_reloads_with_MLNet_only(CoralDirection direction)
    {
        var ml = new MLContext(seed: 1);
        var target = Domains.TargetFolder(Domains.TargetImages(6, 10, Classes), scramble: true);
        var estimator = ml.Transfer().DomainAdaptation(Options(new CoralOptions { Direction = direction }, target));
        var model = EstimatorChecks.Run(ml, estimator, Domains.SourceImages(6, 0, Classes), Probes());
        Assert.That(((MLTransfer.Techniques.TransferModel)model).Report.Technique, Is.EqualTo("domain-adaptation/coral"));
    }

    [TestCase(DomainAdaptationMethod.Coral)]
    [TestCase(DomainAdaptationMethod.AdaBN)]
    public void The_exported_graph_carries_the_adaptation(DomainAdaptationMethod method)
    {
        // The saved model's scores equal the head applied to the target features as the method maps them (CORAL's
        // Gemm, AdaBN's target statistics) and differ from the head on raw backbone features: the adaptation is in the graph.
        var ml = new MLContext(seed: 1);
        var target = Domains.TargetFolder(Domains.TargetImages(6, 10, Classes), scramble: false);
        DomainAdaptationEstimator estimator = method == DomainAdaptationMethod.Coral
            ? ml.Transfer().DomainAdaptation(Options(new CoralOptions { Direction = CoralDirection.TargetToSource }, target))
            : ml.Transfer().DomainAdaptation(Options(new AdaBNOptions { MaxTargetImages = 24 }, target));
        var result = estimator.FitDetailed(ml.Data.LoadFromEnumerable(Domains.SourceImages(6, 0, Classes)));
        var probes = Probes().Select(p => new MLTransfer.Data.ImageExample { ImagePath = p }).ToList();
        var exported = ModelEvaluator.Predict(ml, result.Model, Probes());
        using var featurizer = new OnnxImageFeaturizer(MLTransfer.Backbones.Backbone.ResNet18(), new FeaturizerOptions { ImageSize = 32 });
        var raw = featurizer.Featurize(Probes()).Features.Select(f => f!).ToArray();
        var mapped = result.ToHeadFeatures(raw, probes).Select(f => result.Head.Predict(f)).ToArray();
        var unmapped = raw.Select(f => result.Head.Predict(f)).ToArray();
        for (var i = 0; i < exported.Length; i++)
            Assert.That(mapped[i], Is.EqualTo(exported[i]).Within(1e-4f));
        Assert.That(exported.Zip(unmapped).Max(p => p.First.Zip(p.Second).Max(q => Math.Abs(q.First - q.Second))), Is.GreaterThan(1e-3),
            "the adaptation changes what the head sees");
        Assert.That(result.TargetAfter, Has.Length.EqualTo(24));
    }

    [Test]
    public void AdaBN_fits_saves_and_reloads_with_MLNet_only()
    {
        var ml = new MLContext(seed: 1);
        var target = Domains.TargetFolder(Domains.TargetImages(5, 10, Classes), scramble: true);
        var estimator = ml.Transfer().DomainAdaptation(Options(new AdaBNOptions { MaxTargetImages = 16 }, target));
        EstimatorChecks.Run(ml, estimator, Domains.SourceImages(5, 0, Classes), Probes());
    }

    [Test]
    public void Source_only_fits_saves_and_reloads_with_MLNet_only()
    {
        var ml = new MLContext(seed: 1);
        var target = Domains.TargetFolder(Domains.TargetImages(3, 10, Classes), scramble: true);
        EstimatorChecks.Run(ml, ml.Transfer().DomainAdaptation(Options(new SourceOnlyOptions(), target)), Domains.SourceImages(5, 0, Classes), Probes());
    }

    [TestCase(DomainAdaptationMethod.Coral)]
    [TestCase(DomainAdaptationMethod.AdaBN)]
    public void Training_never_reads_target_labels(DomainAdaptationMethod method)
    {
        // The same target images under their true class folders and under meaningless folders and file names must give
        // the same model: nothing about the target's labels reaches training.
        var images = Domains.TargetImages(5, 10, Classes);
        var source = Domains.SourceImages(5, 0, Classes);
        var outputs = new List<float[][]>();
        foreach (var scramble in new[] { false, true })
        {
            var ml = new MLContext(seed: 1);
            var folder = Domains.TargetFolder(images, scramble);
            DomainAdaptationEstimator estimator = method == DomainAdaptationMethod.Coral
                ? ml.Transfer().DomainAdaptation(Options(new CoralOptions(), folder))
                : ml.Transfer().DomainAdaptation(Options(new AdaBNOptions { MaxTargetImages = 20 }, folder));
            var model = estimator.Fit(ml.Data.LoadFromEnumerable(source));
            outputs.Add(ModelEvaluator.Predict(ml, model, Probes()));
        }
        for (var i = 0; i < outputs[0].Length; i++)
            Assert.That(outputs[1][i], Is.EqualTo(outputs[0][i]).Within(1e-5f));
    }

    [Test]
    public void Missing_target_images_fail_clearly()
    {
        var ml = new MLContext(seed: 1);
        var empty = TestData.TempFolder();
        var estimator = ml.Transfer().DomainAdaptation(Options(new CoralOptions(), empty));
        Assert.That(() => estimator.Fit(ml.Data.LoadFromEnumerable(Domains.SourceImages(3, 0, Classes))),
            Throws.ArgumentException.With.Message.Contains("target images"));
        Assert.That(() => ml.Transfer().DomainAdaptation(Options(new CoralOptions(), Path.Combine(empty, "nope"))).Fit(
            ml.Data.LoadFromEnumerable(Domains.SourceImages(3, 0, Classes))), Throws.InstanceOf<DirectoryNotFoundException>());
    }

    [Test]
    public void Coral_beats_source_only_on_the_shifted_sample()
    {
        // Source: 100 colour photos. Target: 100 other photos as grey, slightly blurred 64×64 images, given
        // unlabelled for adaptation and scored with their labels afterwards (the transductive protocol of the DA papers).
        string[] classes = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
        var source = Domains.SourceImages(10, 0, classes);
        var targetImages = Domains.TargetImages(10, 10, classes);
        var target = Domains.TargetFolder(targetImages, scramble: true);
        var accuracy = new Dictionary<string, double>();
        foreach (var estimator in new Func<MLContext, DomainAdaptationEstimator>[]
                 {
                     ml => ml.Transfer().DomainAdaptation(Options(new SourceOnlyOptions(), target, 64)),
                     ml => ml.Transfer().DomainAdaptation(Options(new CoralOptions(), target, 64)),
                 })
        {
            var ml = new MLContext(seed: 1);
            var e = estimator(ml);
            accuracy[e.Method] = ModelEvaluator.Evaluate(ml, e.Fit(ml.Data.LoadFromEnumerable(source)), targetImages).MicroAccuracy;
        }
        TestContext.Out.WriteLine($"shifted-sample accuracy: source-only {accuracy["source-only"]:F3}, coral {accuracy["coral"]:F3} (100 images)");
        Assert.That(accuracy["source-only"], Is.GreaterThan(0.15), "chance is 0.1");
        Assert.That(accuracy["coral"], Is.GreaterThan(accuracy["source-only"] + 0.1), "CORAL must beat source-only by more than noise (measured: 0.27 against 0.48)");
    }
}
