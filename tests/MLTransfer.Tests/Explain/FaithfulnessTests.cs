using Microsoft.ML;
using MLTransfer.Data;
using MLTransfer.Explain;
using MLTransfer.Featurization;
using MLTransfer.Techniques.FeatureExtraction;
using MLTransfer.Tests.TestSupport;
using NUnit.Framework;

namespace MLTransfer.Tests.Explain;

public class FaithfulnessTests
{
    [Test]
    public void Deleting_the_most_salient_fifth_of_held_out_sample_images_lowers_the_prediction_more_than_a_random_fifth()
    {
        var ml = new MLContext(seed: 1);
        var all = ImageFolder.Load(TestData.Sample, new ImageFolderOptions { DecodeCheck = false });
        var (train, test) = all.Split(0.4, seed: 5);
        var options = new FeatureExtractionOptions
        {
            Engine = new FeaturizerOptions { ImageSize = 160, CacheDirectory = Shared.CacheDir },
            ValidationFraction = 0,
        };
        var model = ml.Transfer().FeatureExtraction(options).Fit(ml.Data.LoadFromEnumerable(train));
        using var explainer = new ImageExplainer(ml, model);
        var result = Faithfulness.Measure(explainer, test, fraction: 0.2, seed: 1);
        TestContext.Out.WriteLine($"{result.Images} images, accuracy {result.Accuracy:F3}, p {result.MeanProbability:F3}, salient drop {result.SalientDrop:F3}, random drop {result.RandomDrop:F3}, salient > random on {result.SalientLarger:P0}");
        Assert.That(result.Images, Is.EqualTo(test.Count));
        Assert.That(result.Method, Is.EqualTo(ExplanationMethod.ClassActivationMap));
        Assert.That(result.Accuracy, Is.GreaterThan(0.5), "a model worth explaining (chance is 0.1)");
        Assert.That(result.SalientDrop, Is.GreaterThan(result.RandomDrop + 0.05), "salient deletion hurts clearly more than random deletion");
        Assert.That(result.SalientLarger, Is.GreaterThan(0.5));
    }
}
