using Microsoft.ML;
using Microsoft.ML.Data;
using MLTransfer.Data;
using MLTransfer.Evaluation;
using MLTransfer.Featurization;
using MLTransfer.Techniques;
using MLTransfer.Techniques.MultiTask;
using MLTransfer.Tests.TestSupport;
using NUnit.Framework;

namespace MLTransfer.Tests.Techniques.MultiTask;

public class MultiTaskTests
{
    private static readonly Dictionary<string, TaskKind> ValueIsRegression = new() { ["value"] = TaskKind.Regression };

    private static MultiTaskOptions Options(double validation = 0) => new()
    {
        Kinds = ValueIsRegression,
        Engine = new FeaturizerOptions { ImageSize = 64, CacheDirectory = Shared.CacheDir },
        ValidationFraction = validation,
        Seed = 5,
    };

    private static ImageManifest Manifest(int perClass, string[]? digits = null, Func<int, string, bool>? blank = null) =>
        ImageManifest.Load(SampleManifest.Write(perClass, digits, blank), new ImageManifestOptions { Kinds = ValueIsRegression, DecodeCheck = false });

    [TestCase(MultiTaskClassifier.LbfgsMaximumEntropy)]
    [TestCase(MultiTaskClassifier.Softmax)]
    public void Should_fit_save_and_reload_with_per_task_columns(MultiTaskClassifier classifier)
    {
        var ml = new MLContext(seed: 1);
        var manifest = Manifest(4, ["0", "3", "5", "8"]);
        var probes = manifest.Examples.Take(3).Select(e => e.ImagePath).Append(TestData.SampleImage("5", 12)).ToList();
        var options = Options();
        options.Classifier = classifier;
        options.Softmax = new MLTransfer.Heads.ImageClassificationHeadOptions { Epoch = 20, EarlyStoppingCriteria = null };
        var model = (TransferModel)EstimatorChecks.Run(ml, ml.Transfer().MultiTask(options), manifest.ToDataView(ml), probes,
            ["Score_digit", "Score_parity"], ["PredictedLabel_digit", "PredictedLabel_parity"]);

        var output = model.Transform(ml.Data.LoadFromEnumerable(probes.Select(p => new ImageExample { ImagePath = p })));
        Assert.That(output.Schema["Score_value"].Type, Is.EqualTo(NumberDataViewType.Single), "regression scores are one float");
        Assert.That(output.Schema.GetColumnOrNull("Score"), Is.Null);
        Assert.That(output.Schema.GetColumnOrNull("PredictedLabel"), Is.Null);
        Assert.That(output.Schema.GetColumnOrNull("PredictedLabel_value"), Is.Null);
        Assert.That(ModelEvaluator.Classes(model, "Score_parity"), Is.EqualTo(new[] { "even", "odd" }));
        Assert.That(MultiTaskEvaluator.Tasks(model), Is.EquivalentTo(new Dictionary<string, TaskKind>
        {
            ["digit"] = TaskKind.Classification, ["parity"] = TaskKind.Classification, ["value"] = TaskKind.Regression,
        }));
        var saved = Path.Combine(TestData.TempFolder(), "multi.zip");
        ml.Model.Save(model, output.Schema, saved);
        var reloaded = new MLContext().Model.Load(saved, out _);
        var before = output.GetColumn<float>("Score_value").ToArray();
        var after = reloaded.Transform(ml.Data.LoadFromEnumerable(probes.Select(p => new ImageExample { ImagePath = p }))).GetColumn<float>("Score_value").ToArray();
        Assert.That(after, Is.EqualTo(before).Within(1e-4f));
    }

    [Test]
    public void Regression_output_should_equal_the_heads_own_prediction()
    {
        var ml = new MLContext(seed: 1);
        var manifest = Manifest(3);
        var options = Options();
        options.Tasks = ["value"];
        var model = ml.Transfer().MultiTask(options).Fit(manifest.ToDataView(ml));
        var probes = new[] { TestData.SampleImage("2", 10), TestData.SampleImage("7", 10) };
        using var featurizer = new OnnxImageFeaturizer(MLTransfer.Backbones.Backbone.ResNet18(), options.Engine);
        var features = featurizer.Featurize(probes).Features;

        // Rebuild the head from the exported ML.NET chain's own numbers: features -> Score_value.
        var scores = model.Transform(ml.Data.LoadFromEnumerable(probes.Select(p => new ImageExample { ImagePath = p }))).GetColumn<float>("Score_value").ToArray();
        var ridge = MLTransfer.Heads.RidgeRegressionTrainer.Train(
            TrainFeatures(featurizer, manifest), manifest.Examples.Select(e => double.Parse(e.Labels[2], System.Globalization.CultureInfo.InvariantCulture)).ToArray(), seed: 5);
        for (var i = 0; i < probes.Length; i++)
            Assert.That(scores[i], Is.EqualTo(ridge.Predict(features[i])).Within(1e-3f * Math.Max(1, Math.Abs(scores[i]))));
        Assert.That(model.Report.Tasks["value"].Kind, Is.EqualTo(TaskKind.Regression));
        Assert.That(model.Report.Tasks.Keys, Is.EqualTo(new[] { "value" }));
    }

    [Test]
    public void Standalone_onnx_should_have_one_output_per_task_equal_to_the_zip()
    {
        var ml = new MLContext(seed: 1);
        var manifest = Manifest(3, ["2", "5", "7"]);
        var options = Options();
        options.OnnxPath = Path.Combine(TestData.TempFolder(), "multi.onnx");
        var model = ml.Transfer().MultiTask(options).Fit(manifest.ToDataView(ml));
        var probe = TestData.SampleImage("5", 13);
        var row = model.Transform(ml.Data.LoadFromEnumerable(new[] { new ImageExample { ImagePath = probe } }));
        var pixels = row.GetColumn<VBuffer<float>>("Pixels").Single().DenseValues().ToArray();
        using var session = new Microsoft.ML.OnnxRuntime.InferenceSession(options.OnnxPath);
        Assert.That(session.OutputMetadata.Keys, Is.SupersetOf(new[] { "Score_digit", "Score_parity", "Score_value" }));
        var input = new Microsoft.ML.OnnxRuntime.Tensors.DenseTensor<float>(pixels, [1, 3, 64, 64]);
        using var results = session.Run([Microsoft.ML.OnnxRuntime.NamedOnnxValue.CreateFromTensor("Pixels", input)]);
        float[] Output(string name) => results.Single(r => r.Name == name).AsEnumerable<float>().ToArray();
        foreach (var task in new[] { "digit", "parity" })
            Assert.That(Output("Score_" + task), Is.EqualTo(row.GetColumn<VBuffer<float>>("Score_" + task).Single().DenseValues().ToArray()).Within(1e-4f), task);
        var value = row.GetColumn<float>("Score_value").Single();
        Assert.That(Output("Score_value").Single(), Is.EqualTo(value).Within(1e-3f * Math.Max(1, Math.Abs(value))));
    }

    private static float[][] TrainFeatures(IImageFeaturizer featurizer, ImageManifest manifest) =>
        featurizer.Featurize(manifest.Examples.Select(e => e.ImagePath).ToList()).Features.Select(f => f!).ToArray();

    [Test]
    public void Missing_labels_should_be_masked_out_of_their_task_only()
    {
        var ml = new MLContext(seed: 1);
        // parity is blank on every other row; digit and value are complete.
        var sparse = Manifest(3, ["1", "2", "3", "4"], blank: (row, task) => task == "parity" && row % 2 == 1);
        var model = ml.Transfer().MultiTask(Options()).Fit(sparse.ToDataView(ml));
        Assert.That(model.Report.TrainCount, Is.EqualTo(12));
        Assert.That(model.Report.Tasks["parity"].TrainCount, Is.EqualTo(6));
        Assert.That(model.Report.Tasks["digit"].TrainCount, Is.EqualTo(12));

        // The parity head is exactly the head trained on the labelled rows alone.
        var labelledOnly = ml.Data.LoadFromEnumerable(sparse.Examples.Where(e => e.Labels[1].Length > 0)
            .Select(e => new ParityRow { ImagePath = e.ImagePath, parity = e.Labels[1] }));
        var alone = ml.Transfer().MultiTask(Options()).Fit(labelledOnly);
        var probes = ml.Data.LoadFromEnumerable(sparse.Examples.Select(e => new ImageExample { ImagePath = e.ImagePath }));
        var a = model.Transform(probes).GetColumn<VBuffer<float>>("Score_parity").Select(v => v.DenseValues().ToArray()).ToArray();
        var b = alone.Transform(probes).GetColumn<VBuffer<float>>("Score_parity").Select(v => v.DenseValues().ToArray()).ToArray();
        for (var i = 0; i < a.Length; i++)
            Assert.That(a[i], Is.EqualTo(b[i]).Within(1e-5f));
    }

    private sealed class ParityRow
    {
        public string ImagePath { get; set; } = "";
        public string parity { get; set; } = "";
    }

    [Test]
    public void Should_report_and_evaluate_per_task_metrics_well_above_chance()
    {
        var ml = new MLContext(seed: 1);
        var all = Manifest(12);
        var (train, test) = MultiTaskData.Split(all.Examples, 0.25, seed: 11);
        var options = Options(validation: 0.2);
        var model = ml.Transfer().MultiTask(options).Fit(ToView(ml, all, train));
        Assert.That(model.Report.Tasks.Keys, Is.EquivalentTo(new[] { "digit", "parity", "value" }));
        Assert.That(model.Report.ValidationCount, Is.EqualTo(18));
        Assert.That(model.Report.Tasks["digit"].Classification!.Count, Is.EqualTo(18));
        Assert.That(model.Report.Tasks["value"].Regression!.Count, Is.EqualTo(18));

        var testManifest = ImageManifest.Load(WriteSubset(all, test), new ImageManifestOptions { DecodeCheck = false });
        var reports = MultiTaskEvaluator.Evaluate(ml, model, testManifest);
        foreach (var (task, report) in reports)
            TestContext.Out.WriteLine($"{task}: acc {report.Classification?.MicroAccuracy:F3} mae {report.Regression?.MeanAbsoluteError:F3} r2 {report.Regression?.RSquared:F3}");
        Assert.That(reports["digit"].Classification!.Count, Is.EqualTo(30));
        Assert.That(reports["digit"].Classification!.MicroAccuracy, Is.GreaterThan(0.4), "chance is 0.1");
        Assert.That(reports["parity"].Classification!.MicroAccuracy, Is.GreaterThan(0.6), "chance is 0.5");
        Assert.That(reports["value"].Regression!.MeanAbsoluteError, Is.LessThan(2.5), "predicting the mean gives 2.5");
        Assert.That(reports["value"].Kind, Is.EqualTo(TaskKind.Regression), "the kind comes from the model even though 30 test digits look like classes");
        var json = System.Text.Json.JsonSerializer.Serialize(reports.ToDictionary(p => p.Key, p => p.Value.ToJson()));
        Assert.That(json, Does.Contain("\"mae\"").And.Contain("\"micro_accuracy\""));
    }

    [Test]
    public void Should_be_deterministic_for_a_seed()
    {
        var ml = new MLContext(seed: 1);
        var manifest = Manifest(3, ["0", "1", "6"]);
        var options = Options(validation: 0.3);
        var probe = ml.Data.LoadFromEnumerable(new[] { new ImageExample { ImagePath = TestData.SampleImage("6", 14) } });
        float Value(TransferModel m) => m.Transform(probe).GetColumn<float>("Score_value").Single();
        var a = ml.Transfer().MultiTask(options).Fit(manifest.ToDataView(ml));
        var b = ml.Transfer().MultiTask(options).Fit(manifest.ToDataView(ml));
        Assert.That(Value(b), Is.EqualTo(Value(a)));
        Assert.That(b.Report.Tasks["digit"].Classification!.LogLoss, Is.EqualTo(a.Report.Tasks["digit"].Classification!.LogLoss));
    }

    [Test]
    public void Should_fail_clearly_on_untrainable_tasks_and_missing_columns()
    {
        var ml = new MLContext(seed: 1);
        var one = Manifest(2, ["4"]);
        var options = Options();
        options.Tasks = ["digit"];
        Assert.That(() => ml.Transfer().MultiTask(options).Fit(one.ToDataView(ml)),
            Throws.InstanceOf<InvalidDataException>().With.Message.Contains("'digit' needs at least 2 classes"));
        options.Tasks = ["age"];
        Assert.That(() => ml.Transfer().MultiTask(options).Fit(one.ToDataView(ml)),
            Throws.InstanceOf<ArgumentException>().With.Message.Contains("no task column 'age'"));
    }

    private static IDataView ToView(MLContext ml, ImageManifest all, IReadOnlyList<MultiLabelExample> rows) =>
        ImageManifest.Load(WriteSubset(all, rows), new ImageManifestOptions { Kinds = ValueIsRegression, DecodeCheck = false }).ToDataView(ml);

    private static string WriteSubset(ImageManifest all, IReadOnlyList<MultiLabelExample> rows)
    {
        var path = Path.Combine(all.Root, $"subset-{Guid.NewGuid():N}.csv");
        File.WriteAllLines(path, ["path," + string.Join(",", all.Tasks.Select(t => t.Name)),
            .. rows.Select(r => Path.GetRelativePath(all.Root, r.ImagePath) + "," + string.Join(",", r.Labels))]);
        return path;
    }
}
