using Microsoft.ML;
using MLTransfer.Data;
using MLTransfer.Evaluation;
using MLTransfer.Explain;
using MLTransfer.Export;
using MLTransfer.Featurization;
using MLTransfer.Tests.TestSupport;
using MLTransfer.Torch.DomainAdaptation;
using MLTransfer.Torch.FineTuning;
using NUnit.Framework;

namespace MLTransfer.Torch.Tests.Explain;

public class ExplainTrainedBackboneTests
{
    private static ImageExample[] Images(int classes, int perClass, int skip = 0) => FineTuning.FineTuningTechniqueTests.Images(classes, perClass, skip);

    [Test]
    public void Class_activation_maps_of_a_fine_tuned_model_come_from_its_own_weights()
    {
        // The fine-tuned backbone and head live only inside the .zip: maps computed from the pretrained weights could not
        // average to the reloaded model's logits.
        var ml = new MLContext(seed: 0);
        var options = new FineTuningOptions { Epochs = 1, UnfreezeAfterEpochs = 0, BatchSize = 3, ImageSize = 64, ValidationFraction = 0, Seed = 3, TrainTopBlocksOnly = false };
        var model = ml.Transfer().FineTuning(options).Fit(ml.Data.LoadFromEnumerable(Images(classes: 3, perClass: 3)));
        var path = Path.Combine(TestData.TempFolder(), "fine-tuned.zip");
        ModelFile.Save(ml, model, path);
        var loaded = new MLContext().Model.Load(path, out _);
        var probes = Images(classes: 3, perClass: 2, skip: 10).Select(e => e.ImagePath).ToList();
        using var explainer = new ImageExplainer(ml, loaded);
        Assert.That(explainer.Method, Is.EqualTo(ExplanationMethod.ClassActivationMap));
        ExplainChecks.Run(ml, loaded, explainer, probes);
    }

    [Test]
    public void A_relu_bottleneck_is_explained_by_occlusion()
    {
        string[] classes = ["0", "1", "2"];
        var ml = new MLContext(seed: 1);
        var target = Domains.TargetImages(6, 10, classes).Select(e => e.ImagePath).ToList();
        var estimator = ml.Transfer().DomainAdaptation(new DannOptions
        {
            TargetImages = target, Engine = new FeaturizerOptions { ImageSize = 64 }, Epochs = 3, BatchSize = 8, Seed = 3, TrainedBackboneBlocks = 0,
        });
        var model = estimator.Fit(ml.Data.LoadFromEnumerable(Domains.SourceImages(6, 0, classes)));
        using var explainer = new ImageExplainer(ml, model, new ExplainerOptions { OcclusionGrid = 4 });
        Assert.That(explainer.Method, Is.EqualTo(ExplanationMethod.Occlusion), "Gemm → Relu after the pooling is not affine");
        Assert.Throws<ArgumentException>(() => new ImageExplainer(ml, model, new ExplainerOptions { Method = ExplanationMethod.ClassActivationMap }));
        var explanation = ExplainChecks.Run(ml, model, explainer, [Domains.TargetImages(1, 15, classes)[0].ImagePath]).Single();
        Assert.That(explanation.Maps.Single().Width, Is.EqualTo(4));
    }
}
