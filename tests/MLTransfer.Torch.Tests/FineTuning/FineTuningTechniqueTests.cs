using MLTransfer.Tests.TestSupport;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLTransfer.Data;
using MLTransfer.Evaluation;
using MLTransfer.Export;
using MLTransfer.Techniques;
using MLTransfer.Torch.FineTuning;
using MLTransfer.Torch.Training;
using NUnit.Framework;

namespace MLTransfer.Torch.Tests.FineTuning;

public class FineTuningTechniqueTests
{
    internal static ImageExample[] Images(int classes, int perClass, int skip = 0) =>
        TestData.Images(classes, perClass, skip).Select(i => new ImageExample { ImagePath = i.Path, Label = i.Label.ToString(System.Globalization.CultureInfo.InvariantCulture) }).ToArray();

    [TestCase(false, 1)]
    [TestCase(true, 1)]
    [TestCase(false, 2)]
    public void Should_predict_the_same_with_the_reloaded_zip_as_with_torchsharp(bool testTimeFlip, int ensembleSize)
    {
        string dir = TestData.TempFolder();
        try
        {
            var train = Images(classes: 3, perClass: 3);
            var options = new FineTuningOptions { Epochs = 1, UnfreezeAfterEpochs = 0, BatchSize = 3, ImageSize = 64, ValidationFraction = 0, Seed = 3, TrainTopBlocksOnly = false, TestTimeFlip = testTimeFlip, EnsembleSize = ensembleSize };
            using var model = new FineTuningTrainer(options).Fit(train);
            Assert.That(model.EnsembleSize, Is.EqualTo(ensembleSize));

            var ml = new MLContext(seed: 0);
            var chain = model.ToMLNet(ml, train[0].ImagePath, dir);
            string zip = Path.Combine(dir, "model.zip");
            ml.Model.Save(chain, ImagePipeline.SampleInput(ml, train[0].ImagePath).Schema, zip);

            var consumer = new MLContext();
            var loaded = consumer.Model.Load(zip, out _);
            var unseen = Images(classes: 3, perClass: 2, skip: 10).Select(e => e.ImagePath).ToArray();
            var zipScores = ModelEvaluator.Predict(consumer, loaded, unseen);
            var zipClasses = ModelEvaluator.Classes(loaded);
            var torchScores = model.PredictProbabilities(unseen);

            double maxAbs = 0;
            for (int i = 0; i < unseen.Length; i++)
            {
                for (int k = 0; k < zipClasses.Count; k++)
                {
                    int torchIndex = model.ClassNames.ToList().IndexOf(zipClasses[k]);
                    maxAbs = Math.Max(maxAbs, Math.Abs(zipScores[i][k] - torchScores[i][torchIndex]));
                }
            }

            TestContext.Out.WriteLine($"reloaded .zip vs TorchSharp: max |Δp| = {maxAbs:E3}");
            Assert.That(zipClasses, Is.EquivalentTo(model.ClassNames));
            Assert.That(maxAbs, Is.LessThanOrEqualTo(1e-4));

            var labels = loaded.Transform(consumer.Data.LoadFromEnumerable(unseen.Select(p => new ImageExample { ImagePath = p })))
                .GetColumn<string>("PredictedLabel").ToArray();
            var torchLabels = torchScores.Select(p => model.ClassNames[Array.IndexOf(p, p.Max())]).ToArray();
            Assert.That(labels, Is.EqualTo(torchLabels));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void Should_fit_through_the_transfer_catalog_and_report_history_and_validation()
    {
        string dir = TestData.TempFolder();
        try
        {
            var ml = new MLContext(seed: 0);
            var data = TransferData.ToDataView(ml, Images(classes: 2, perClass: 4));
            var epochs = new List<TrainingEpochMetrics>();
            var options = new FineTuningOptions
            {
                Epochs = 2, BatchSize = 3, ImageSize = 64, ValidationFraction = 0.25, Seed = 1, GraphDirectory = dir, MetricsCallback = epochs.Add,
                TrainTopBlocksOnly = false,
            };

            var model = ml.Transfer().FineTuning(options).Fit(data);
            Assert.That(model.Report.Technique, Is.EqualTo("fine-tuning"));
            Assert.That(model.Report.Classes, Is.EqualTo(new[] { "0", "1" }));
            Assert.That(model.Report.TrainCount + model.Report.ValidationCount, Is.EqualTo(8));
            Assert.That(model.Report.ValidationCount, Is.EqualTo(2));
            Assert.That(model.Report.History, Has.Count.EqualTo(2));
            Assert.That(epochs.Select(e => e.Phase), Is.EqualTo(new[] { TrainingPhase.HeadOnly, TrainingPhase.WholeNetwork }));
            Assert.That(model.Report.Validation!.Count, Is.EqualTo(2));

            var predicted = model.Transform(data).GetColumn<string>("PredictedLabel").ToArray();
            Assert.That(predicted, Has.Length.EqualTo(8).And.All.AnyOf("0", "1"));
            Assert.That(Directory.GetFileSystemEntries(dir), Is.Empty, "the graph written while composing the chain is gone");

            var viaUse = ml.Transfer().Use(new Torch.FineTuning.FineTuning(options));
            Assert.That(viaUse, Is.InstanceOf<FineTuningEstimator>());
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void Should_report_out_of_fold_validation_for_a_folds_ensemble()
    {
        var ml = new MLContext(seed: 0);
        var images = Images(classes: 2, perClass: 4);
        var options = new FineTuningOptions
        {
            Epochs = 1, UnfreezeAfterEpochs = 0, BatchSize = 3, ImageSize = 64, ValidationFraction = 0.5, Seed = 2,
            TrainTopBlocksOnly = false, EnsembleSize = 2, EnsembleFolds = true,
        };
        var model = ml.Transfer().FineTuning(options).Fit(TransferData.ToDataView(ml, images));
        Assert.That((model.Report.OutOfFold, model.Report.TrainCount, model.Report.ValidationCount), Is.EqualTo((true, 8, 8)),
            "two halves: every image held out by exactly one member, every image trained on");
        Assert.That(model.Report.ValidationPredictions.Select(p => p.ImagePath), Is.EquivalentTo(images.Select(i => i.ImagePath)));
        Assert.That(model.Report.ValidationPredictions.Select(p => p.Label), Is.EqualTo(model.Report.ValidationPredictions.Select(p => images.Single(i => i.ImagePath == p.ImagePath).Label)));
        Assert.That(model.Report.Validation!.Count, Is.EqualTo(8));
    }

    [Test]
    public void Should_pass_the_estimator_checks()
    {
        var ml = new MLContext(seed: 0);
        var options = new FineTuningOptions { Epochs = 1, UnfreezeAfterEpochs = 0, BatchSize = 4, ImageSize = 32, ValidationFraction = 0, Seed = 2, TrainTopBlocksOnly = false };
        var probes = Images(classes: 2, perClass: 2, skip: 10).Select(e => e.ImagePath).ToArray();
        EstimatorChecks.Run(ml, ml.Transfer().FineTuning(options), Images(classes: 2, perClass: 3), probes);
    }

    [Test]
    [NonParallelizable]
    public void Should_leave_nothing_in_its_temporary_folder()
    {
        var temp = TestData.TempFolder();
        var previous = Environment.GetEnvironmentVariable("TMPDIR");
        Environment.SetEnvironmentVariable("TMPDIR", temp);
        try
        {
            Assert.That(Path.GetTempPath().TrimEnd('/'), Is.EqualTo(temp.TrimEnd('/')));
            var ml = new MLContext(seed: 0);
            var options = new FineTuningOptions { Epochs = 1, UnfreezeAfterEpochs = 0, BatchSize = 4, ImageSize = 32, ValidationFraction = 0.34, Seed = 2, TrainTopBlocksOnly = false };
            using (var model = ml.Transfer().FineTuning(options).Fit(TransferData.ToDataView(ml, Images(classes: 2, perClass: 3))))
                ModelFile.Save(ml, model, Path.Combine(TestData.TempFolder(), "model.zip"));
            Assert.That(Directory.GetFileSystemEntries(temp, "*", SearchOption.AllDirectories), Is.Empty);
        }
        finally
        {
            Environment.SetEnvironmentVariable("TMPDIR", previous);
        }
    }
}
