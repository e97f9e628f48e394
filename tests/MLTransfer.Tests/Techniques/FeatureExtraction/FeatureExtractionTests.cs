using Microsoft.ML;
using Microsoft.ML.Data;
using MLTransfer.Data;
using MLTransfer.Evaluation;
using MLTransfer.Featurization;
using MLTransfer.Heads;
using MLTransfer.Techniques;
using MLTransfer.Techniques.FeatureExtraction;
using MLTransfer.Tests.TestSupport;
using NUnit.Framework;

namespace MLTransfer.Tests.Techniques.FeatureExtraction;

public class FeatureExtractionTests
{
    private static readonly string[] Classes = ["0", "3", "5", "8"];

    private static FeatureExtractionOptions Options(HeadKind head) => new()
    {
        Head = head,
        Engine = new FeaturizerOptions { ImageSize = 96, CacheDirectory = Shared.CacheDir },
        ValidationFraction = 0,
        Seed = 3,
    };

    [TestCase(HeadKind.LbfgsMaximumEntropy)]
    [TestCase(HeadKind.SdcaMaximumEntropy)]
    [TestCase(HeadKind.LightGbm)]
    [TestCase(HeadKind.ImageClassification)]
    public void Should_fit_save_and_reload_with_every_head(HeadKind head)
    {
        var ml = new MLContext(seed: 1);
        var train = TestData.SampleSubset(8, Classes);
        var probes = TestData.SampleSubset(1, Classes).Select(e => e.ImagePath).Append(TestData.SampleImage("5", 12)).ToList();
        var options = Options(head);
        options.ImageClassification = new ImageClassificationHeadOptions { Epoch = 30, EarlyStoppingCriteria = null };
        EstimatorChecks.Run(ml, ml.Transfer().FeatureExtraction(options), train, probes);
    }

    [Test]
    public void Should_classify_held_out_sample_images_well_above_chance()
    {
        var ml = new MLContext(seed: 1);
        var all = ImageFolder.Load(TestData.Sample, new ImageFolderOptions { DecodeCheck = false });
        var (train, test) = all.Split(0.25, seed: 7);
        var model = ml.Transfer().FeatureExtraction(Options(HeadKind.LbfgsMaximumEntropy)).Fit(ml.Data.LoadFromEnumerable(train));
        var report = ModelEvaluator.Evaluate(ml, model, test);
        TestContext.Out.WriteLine($"held-out micro-accuracy {report.MicroAccuracy:F3} on {report.Count} images");
        Assert.That(report.Count, Is.EqualTo(50));
        Assert.That(report.MicroAccuracy, Is.GreaterThan(0.6), "chance is 0.1");
        Assert.That(report.ConfusionMatrix.Sum(r => r.Sum()), Is.EqualTo(50));
    }

    [Test]
    public void Should_report_validation_metrics_and_image_classification_history()
    {
        var ml = new MLContext(seed: 1);
        var epochs = new List<EpochMetrics>();
        var options = Options(HeadKind.ImageClassification);
        options.ValidationFraction = 0.25;
        options.ImageClassification = new ImageClassificationHeadOptions { Epoch = 15, MetricsCallback = epochs.Add, EarlyStoppingCriteria = new EarlyStopping(patience: 100) };
        var model = ml.Transfer().FeatureExtraction(options).Fit(ml.Data.LoadFromEnumerable(TestData.SampleSubset(8, Classes)));
        Assert.That(epochs, Has.Count.EqualTo(15));
        Assert.That(epochs.Last().TrainLoss, Is.LessThan(epochs.First().TrainLoss));
        Assert.That(model.Report.Validation, Is.Not.Null);
        Assert.That(model.Report.ValidationCount, Is.EqualTo(8));
        Assert.That(model.Report.Validation!.Count, Is.EqualTo(8));
        Assert.That(model.Report.Classes, Is.EqualTo(Classes));
    }

    [TestCase(true, 4)]
    [TestCase(false, 0)]
    public void Should_hold_out_a_tenth_for_early_stopping_when_image_classification_is_given_no_validation(bool earlyStopping, int held)
    {
        var ml = new MLContext(seed: 1);
        var options = new ImageClassificationHeadOptions { Epoch = 5, EarlyStoppingCriteria = earlyStopping ? new EarlyStopping() : null, WorkspacePath = Shared.CacheDir };
        var model = ml.Transfer().ImageClassification(options).Fit(ml.Data.LoadFromEnumerable(TestData.SampleSubset(10, Classes)));
        Assert.That((model.Report.TrainCount, model.Report.ValidationCount), Is.EqualTo((40 - held, held)), "0.1 of each of the 4 classes of 10");
    }

    [Test]
    public void Should_validate_on_the_validation_set_it_is_given()
    {
        var ml = new MLContext(seed: 1);
        var validation = TestData.Subset(TestData.Sample, 3, 12, Classes);
        var epochs = new List<EpochMetrics>();
        var options = new ImageClassificationHeadOptions { Epoch = 5, EarlyStoppingCriteria = new EarlyStopping(patience: 100), MetricsCallback = epochs.Add, ValidationSet = ml.Data.LoadFromEnumerable(validation), WorkspacePath = Shared.CacheDir };
        var model = ml.Transfer().ImageClassification(options).Fit(ml.Data.LoadFromEnumerable(TestData.SampleSubset(6, Classes)));
        Assert.That((model.Report.TrainCount, model.Report.ValidationCount), Is.EqualTo((24, 12)));
        Assert.That(model.Report.Validation!.Count, Is.EqualTo(12));
        Assert.That(epochs.Select(e => e.ValidationAccuracy), Is.Not.Empty.And.All.Not.NaN, "every epoch is scored on the given set");
    }

    [TestCase(true, true, 40)]
    [TestCase(false, true, 4)]
    [TestCase(true, false, 36)]
    public void Should_read_the_workspace_cache_only_for_the_sets_told_to_reuse_it(bool reuseTrain, bool reuseValidation, int fromCache)
    {
        var workspace = TestData.TempFolder();
        var images = TestData.SampleSubset(10, Classes);
        TransferModel Fit(bool train, bool validation)
        {
            var ml = new MLContext(seed: 1);
            var options = new ImageClassificationHeadOptions
            {
                Epoch = 3, WorkspacePath = workspace, ValidationSetFraction = 0.1f,
                ReuseTrainSetBottleneckCachedValues = train, ReuseValidationSetBottleneckCachedValues = validation,
            };
            var estimator = ml.Transfer().FeatureExtraction(new FeatureExtractionOptions
            {
                Head = HeadKind.ImageClassification, ImageClassification = options, Engine = new FeaturizerOptions { ImageSize = 64 },
            });
            return estimator.Fit(ml.Data.LoadFromEnumerable(images));
        }
        Assert.That(Fit(true, true).Report.FromCache, Is.Zero, "a new workspace is empty");
        Assert.That(Directory.EnumerateFiles(workspace, "*", SearchOption.AllDirectories), Is.Not.Empty, "the workspace holds the cache");
        Assert.That(Fit(reuseTrain, reuseValidation).Report.FromCache, Is.EqualTo(fromCache), "36 training and 4 validation images");
    }

    [Test]
    public void Should_be_deterministic_for_a_seed()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(TestData.SampleSubset(6, Classes));
        var options = Options(HeadKind.ImageClassification);
        options.ImageClassification = new ImageClassificationHeadOptions { Epoch = 10, EarlyStoppingCriteria = null };
        var probe = new[] { TestData.SampleImage("8", 15) };
        var a = ModelEvaluator.Predict(ml, ml.Transfer().FeatureExtraction(options).Fit(data), probe);
        var b = ModelEvaluator.Predict(ml, ml.Transfer().FeatureExtraction(options).Fit(data), probe);
        Assert.That(b[0], Is.EqualTo(a[0]));
    }

    [Test]
    public void Should_plug_in_a_custom_technique_without_touching_the_library()
    {
        var ml = new MLContext(seed: 1);
        var train = TestData.SampleSubset(5, Classes);
        var test = TestData.Subset(TestData.Sample, 10, 5, Classes);
        var model = ml.Transfer().Use(new NearestMeanTechnique()).Fit(ml.Data.LoadFromEnumerable(train));

        // Ground truth computed here, outside the technique: the class whose mean training feature is nearest.
        using var featurizer = new OnnxImageFeaturizer(MLTransfer.Backbones.Backbone.ResNet18(), new FeaturizerOptions { ImageSize = 96, CacheDirectory = Shared.CacheDir });
        var trainFeatures = featurizer.Featurize(train.Select(e => e.ImagePath).ToList()).Features;
        var means = Classes.ToDictionary(c => c, c => Enumerable.Range(0, featurizer.FeatureSize)
            .Select(j => train.Select((e, i) => (e, i)).Where(p => p.e.Label == c).Average(p => trainFeatures[p.i]![j])).ToArray());
        var testFeatures = featurizer.Featurize(test.Select(e => e.ImagePath).ToList()).Features;
        var expected = testFeatures.Select(f => Classes.MinBy(c => means[c].Zip(f!, (m, x) => (m - x) * (m - x)).Sum())!).ToArray();

        var scored = model.Transform(ml.Data.LoadFromEnumerable(test));
        var predicted = scored.GetColumn<ReadOnlyMemory<char>>("PredictedLabel").Select(l => l.ToString()).ToArray();
        Assert.That(predicted, Is.EqualTo(expected), "the plugged-in head predicts the nearest class mean");
        var accuracy = predicted.Zip(test).Count(p => p.First == p.Second.Label) / (double)test.Count;
        TestContext.Out.WriteLine($"nearest class mean: accuracy {accuracy:F3} on {test.Count} held-out images");
        Assert.That(accuracy, Is.GreaterThan(0.4), $"chance is {1.0 / Classes.Length:F2} (measured: 0.525)");
    }

    /// <summary>A user-written technique: class-mean features as a linear head (nearest class mean by dot product).</summary>
    private sealed class NearestMeanTechnique : ITransferTechnique
    {
        public string Name => "nearest-mean";

        public IEstimator<ITransformer> CreateEstimator(MLContext mlContext) => new Estimator(mlContext);

        private sealed class Estimator(MLContext ml) : IEstimator<ITransformer>
        {
            public ITransformer Fit(IDataView input)
            {
                var examples = TransferData.ReadExamples(input);
                using var featurizer = new OnnxImageFeaturizer(MLTransfer.Backbones.Backbone.ResNet18(), new FeaturizerOptions { ImageSize = 96, CacheDirectory = Shared.CacheDir });
                var set = FeatureTrainingSet.Create(featurizer, examples, strict: true);
                var classes = examples.Select(e => e.Label).Distinct().Order(StringComparer.Ordinal).ToArray();
                var labels = set.LabelIndices(classes);
                var weights = classes.Select((_, c) =>
                {
                    var rows = set.Features.Where((_, i) => labels[i] == c).ToList();
                    return Enumerable.Range(0, featurizer.FeatureSize).Select(j => rows.Average(r => r[j]) / 10f).ToArray();
                }).ToArray();
                var bias = weights.Select(w => -w.Sum(v => v * v) * 5f).ToArray();
                var head = new LinearHead(weights, bias, classes).ToMLNet(ml, "Features");
                return TransferData.Compose(ml, 96, featurizer.GraphPath, head, examples[0].ImagePath);
            }

            public Microsoft.ML.SchemaShape GetOutputSchema(Microsoft.ML.SchemaShape inputSchema) => inputSchema;
        }
    }
}
