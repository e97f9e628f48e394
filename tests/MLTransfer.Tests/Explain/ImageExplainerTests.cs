using Microsoft.ML;
using MLTransfer.Data;
using MLTransfer.Evaluation;
using MLTransfer.Explain;
using MLTransfer.Export;
using MLTransfer.Featurization;
using MLTransfer.Techniques.DomainAdaptation;
using MLTransfer.Techniques.FeatureExtraction;
using MLTransfer.Tests.TestSupport;
using NUnit.Framework;

namespace MLTransfer.Tests.Explain;

public class ImageExplainerTests
{
    private static readonly string[] Classes = ["0", "3", "5", "8"];

    private static readonly Dictionary<HeadKind, string> Saved = [];

    /// <summary>A feature-extraction model on 4 sample classes at 96 px, trained once per head and test run.</summary>
    internal static string TrainAndSave(HeadKind head)
    {
        lock (Saved)
        {
            if (!Saved.TryGetValue(head, out var path))
                Saved[head] = path = Train(head, 96);
            return path;
        }
    }

    private static string Train(HeadKind head, int imageSize)
    {
        var ml = new MLContext(seed: 1);
        var options = new FeatureExtractionOptions
        {
            Head = head,
            Engine = new FeaturizerOptions { ImageSize = imageSize, CacheDirectory = Shared.CacheDir },
            ValidationFraction = 0,
            Seed = 3,
        };
        var model = ml.Transfer().FeatureExtraction(options).Fit(ml.Data.LoadFromEnumerable(TestData.SampleSubset(8, Classes)));
        var path = Path.Combine(TestData.TempFolder(), $"{head}.zip");
        ModelFile.Save(ml, model, path);
        return path;
    }

    private static List<string> Probes() => Classes.Select(c => TestData.SampleImage(c, 15)).ToList();

    [TestCase(HeadKind.LbfgsMaximumEntropy)]
    [TestCase(HeadKind.SdcaMaximumEntropy)]
    [TestCase(HeadKind.ImageClassification)]
    public void Class_activation_maps_of_a_reloaded_linear_head_average_to_the_models_own_logits(HeadKind head)
    {
        var ml = new MLContext(seed: 1);
        var loaded = ModelFile.Load(ml, TrainAndSave(head));
        using var explainer = new ImageExplainer(ml, loaded, new ExplainerOptions { Top = 4 });
        Assert.That(explainer.Method, Is.EqualTo(ExplanationMethod.ClassActivationMap));
        foreach (var e in ExplainChecks.Run(ml, loaded, explainer, Probes()))
        {
            Assert.That(e.Maps, Has.Count.EqualTo(4));
            Assert.That(e.Maps.Select(m => m.Probability), Is.Ordered.Descending);
            Assert.That(e.Maps[0].Class, Is.EqualTo(e.PredictedLabel));
            Assert.That((e.Maps[0].Width, e.Maps[0].Height), Is.EqualTo((3, 3)), "ResNet18's last map at 96 px");
            Assert.That(e.Maps[0].Values.Max() - e.Maps[0].Values.Min(), Is.GreaterThan(0), "the map is not flat");
        }
    }

    [TestCase(DomainAdaptationMethod.Coral)]
    [TestCase(DomainAdaptationMethod.AdaBN)]
    public void Class_activation_maps_of_a_domain_adapted_model_use_its_adapted_graph(DomainAdaptationMethod method)
    {
        // CORAL folds a Gemm after the pooling and AdaBN rewrites BatchNorm statistics: the maps must come from that graph,
        // so their means reproduce the adapted model's scores, which differ from the raw backbone's.
        var ml = new MLContext(seed: 1);
        string[] classes = ["0", "1", "2", "3"];
        var target = Domains.TargetFolder(Domains.TargetImages(6, 10, classes), scramble: false);
        var engine = new FeaturizerOptions { ImageSize = 64, CacheDirectory = Shared.CacheDir };
        DomainAdaptationEstimator estimator = method == DomainAdaptationMethod.Coral
            ? ml.Transfer().DomainAdaptation(new CoralOptions { TargetFolder = target, Engine = engine, Direction = CoralDirection.TargetToSource, Seed = 4 })
            : ml.Transfer().DomainAdaptation(new AdaBNOptions { TargetFolder = target, Engine = engine, MaxTargetImages = 24, Seed = 4 });
        var model = estimator.Fit(ml.Data.LoadFromEnumerable(Domains.SourceImages(6, 0, classes)));
        var path = Path.Combine(TestData.TempFolder(), "adapted.zip");
        ModelFile.Save(ml, model, path);
        var loaded = ModelFile.Load(ml, path);
        var probes = Domains.TargetImages(1, 15, classes).Select(e => e.ImagePath).ToList();
        using var explainer = new ImageExplainer(ml, loaded);
        Assert.That(explainer.Method, Is.EqualTo(ExplanationMethod.ClassActivationMap));
        foreach (var e in ExplainChecks.Run(ml, loaded, explainer, probes))
            Assert.That((e.Maps[0].Width, e.Maps[0].Height), Is.EqualTo((2, 2)));
    }

    [Test]
    public void Occlusion_explains_a_lightgbm_head_and_a_patch_over_the_hand_lowers_the_probability()
    {
        var ml = new MLContext(seed: 1);
        var loaded = ModelFile.Load(ml, TrainAndSave(HeadKind.LightGbm));
        using var explainer = new ImageExplainer(ml, loaded, new ExplainerOptions { OcclusionGrid = 4 });
        Assert.That(explainer.Method, Is.EqualTo(ExplanationMethod.Occlusion));
        var explanations = ExplainChecks.Run(ml, loaded, explainer, Probes());
        foreach (var e in explanations)
        {
            var map = e.Maps.Single();
            Assert.That((map.Width, map.Height), Is.EqualTo((4, 4)));
            Assert.That(map.Values.Max(), Is.LessThanOrEqualTo(map.Probability + 1e-6), "a drop cannot exceed the probability");
        }
        Assert.That(explanations.Any(e => e.Maps[0].Values.Max() > 0.01), "covering some part of some image lowers its probability");
    }

    [Test]
    public void Should_ask_for_occlusion_when_class_activation_maps_are_requested_for_lightgbm()
    {
        var ml = new MLContext(seed: 1);
        var loaded = ModelFile.Load(ml, TrainAndSave(HeadKind.LightGbm));
        var e = Assert.Throws<ArgumentException>(() => new ImageExplainer(ml, loaded, new ExplainerOptions { Method = ExplanationMethod.ClassActivationMap }));
        Assert.That(e!.Message, Does.Contain("occlusion"));
    }

    [Test]
    public void Should_explain_a_named_class_and_report_unreadable_images()
    {
        var ml = new MLContext(seed: 1);
        using var explainer = ImageExplainer.Load(ml, TrainAndSave(HeadKind.LbfgsMaximumEntropy), new ExplainerOptions { Class = "5" });
        var bad = Path.Combine(TestData.TempFolder(), "bad.jpg");
        File.WriteAllText(bad, "not an image");
        var outcomes = explainer.ExplainAll([TestData.SampleImage("0", 15), bad, TestData.SampleImage("8", 15)]).ToList();
        Assert.That(outcomes.Select(o => o.ImagePath), Is.EqualTo(new[] { TestData.SampleImage("0", 15), bad, TestData.SampleImage("8", 15) }));
        Assert.That(outcomes[1].Explanation, Is.Null);
        Assert.That(outcomes[1].Problem, Does.Contain("not a supported image"));
        Assert.That(outcomes.Where(o => o.Explanation is not null).Select(o => o.Explanation!.Maps.Single().Class), Is.All.EqualTo("5"));
        var unknown = Assert.Throws<ArgumentException>(() => ImageExplainer.Load(ml, TrainAndSave(HeadKind.LbfgsMaximumEntropy), new ExplainerOptions { Class = "9" }));
        Assert.That(unknown!.Message, Does.Contain("no class '9'"));
    }

    [Test]
    public void Should_render_overlays_as_png_at_least_224_pixels_wide()
    {
        var ml = new MLContext(seed: 1);
        using var explainer = ImageExplainer.Load(ml, TrainAndSave(HeadKind.LbfgsMaximumEntropy));
        var explanation = explainer.Explain(TestData.SampleImage("3", 15));
        using var overlay = SkiaSharp.SKBitmap.Decode(HeatMapImage.Overlay(explanation));
        using var photo = SkiaSharp.SKBitmap.Decode(HeatMapImage.Photo(explanation));
        Assert.That((overlay.Width, overlay.Height), Is.EqualTo((224, 224)));
        Assert.That((photo.Width, photo.Height), Is.EqualTo((224, 224)));
        Assert.That(overlay.GetPixel(112, 112), Is.Not.EqualTo(photo.GetPixel(112, 112)), "the heat map colours the image");
    }
}
