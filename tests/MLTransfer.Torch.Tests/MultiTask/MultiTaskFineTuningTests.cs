using MLTransfer.Tests.TestSupport;
using System.Globalization;
using Google.Protobuf;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLTransfer.Data;
using MLTransfer.Evaluation;
using MLTransfer.Export;
using MLTransfer.Techniques;
using MLTransfer.Torch.MultiTask;
using MLTransfer.Torch.Training;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace MLTransfer.Torch.Tests.MultiTask;

public class MultiTaskFineTuningTests
{
    private static readonly Dictionary<string, TaskKind> Kinds = new() { ["digit"] = TaskKind.Classification, ["parity"] = TaskKind.Classification, ["value"] = TaskKind.Regression };

    /// <summary>A manifest over the repository's sign-language digits: digit (class), parity (class), value (regression).</summary>
    private static ImageManifest Manifest(string dir, int classes, int perClass, int skip = 0, Func<int, string, bool>? blank = null)
    {
        var lines = new List<string> { "path,digit,parity,value" };
        var row = 0;
        foreach (var (path, label) in TestData.Images(classes, perClass, skip))
        {
            var target = Path.Combine(dir, "images", $"{label}-{Path.GetFileName(path)}");
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(path, target, overwrite: true);
            string Cell(string task, string value) => blank?.Invoke(row, task) == true ? "" : value;
            var digit = label.ToString(CultureInfo.InvariantCulture);
            lines.Add($"images/{Path.GetFileName(target)},{Cell("digit", digit)},{Cell("parity", label % 2 == 0 ? "even" : "odd")},{Cell("value", digit)}");
            row++;
        }
        var csv = Path.Combine(dir, $"labels-{skip}.csv");
        File.WriteAllLines(csv, lines);
        return ImageManifest.Load(csv, new ImageManifestOptions { Kinds = Kinds, DecodeCheck = false });
    }

    private static MultiTaskFineTuningOptions Options() => new()
    {
        Kinds = Kinds, Epochs = 2, UnfreezeAfterEpochs = 1, BatchSize = 4, ImageSize = 64, ValidationFraction = 0.25, Seed = 3, Threads = 2, LearningRate = 3e-3,
    };

    [Test]
    public void Should_fine_tune_with_per_task_metrics_and_export_one_zip_with_per_task_columns_that_reloads_with_mlnet_only()
    {
        var dir = TestData.TempFolder();
        try
        {
            var manifest = Manifest(dir, classes: 4, perClass: 4);
            var epochs = new List<TrainingEpochMetrics>();
            var options = Options();
            options.Balancing = GradientBalancing.PCGrad;
            options.GraphDirectory = dir;
            options.MetricsCallback = epochs.Add;
            var ml = new MLContext(seed: 0);
            var model = ml.Transfer().FineTunedMultiTask(options).Fit(manifest.ToDataView(ml));

            Assert.That(epochs, Has.Count.EqualTo(2), "per-task metrics every epoch");
            foreach (var e in epochs)
            {
                Assert.That(e.TaskValidation.Keys, Is.EquivalentTo(new[] { "digit", "parity", "value" }));
                Assert.That(e.TaskTrainLosses.Values, Has.All.Not.NaN);
                Assert.That(e.ValidationScore, Is.EqualTo(e.TaskValidation.Values.Average(r => r.Score)).Within(1e-9));
            }
            Assert.That(epochs[1].TaskWeights.Values, Has.Some.Not.EqualTo(1.0).And.Some.Not.EqualTo(0.5), "uncertainty weights are learnt");
            Assert.That(model.Report.Tasks.Keys, Is.EquivalentTo(new[] { "digit", "parity", "value" }));
            Assert.That(model.Report.ValidationCount, Is.EqualTo(4));

            var zip = Path.Combine(dir, "multi.zip");
            ModelFile.Save(ml, model, zip);
            var consumer = new MLContext();
            var loaded = consumer.Model.Load(zip, out var input);
            Assert.That(input.Select(c => c.Name), Is.EqualTo(new[] { "ImagePath" }));
            var unseen = TestData.Images(4, 1, skip: 12).Select(i => i.Path).ToArray();
            var output = loaded.Transform(consumer.Data.LoadFromEnumerable(unseen.Select(p => new ImageExample { ImagePath = p })));
            Assert.That(output.Schema["Score_value"].Type, Is.EqualTo(NumberDataViewType.Single));
            Assert.That(output.Schema["PredictedLabel_parity"].Type, Is.EqualTo(TextDataViewType.Instance));
            Assert.That(MLTransfer.Benchmarks.MultiTaskBenchmark.BackbonePasses(loaded), Is.EqualTo(1));
            var parity = output.GetColumn<VBuffer<float>>("Score_parity").Select(v => v.DenseValues().ToArray()).ToArray();
            Assert.That(parity.Select(p => p.Sum()), Has.All.EqualTo(1f).Within(1e-4f));

            // Per-task evaluation of the reloaded model on unseen images.
            var evaluation = MultiTaskEvaluator.Evaluate(consumer, loaded, Manifest(dir, classes: 4, perClass: 1, skip: 12));
            Assert.That(evaluation["value"].Regression!.Count, Is.EqualTo(4));
            Assert.That(evaluation["digit"].Classification!.Count, Is.EqualTo(4));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void Standalone_onnx_export_should_have_one_output_per_task_equal_to_the_mlnet_chain()
    {
        var dir = TestData.TempFolder();
        try
        {
            var manifest = Manifest(dir, classes: 3, perClass: 3);
            var options = Options();
            options.Epochs = 1;
            options.UnfreezeAfterEpochs = 0;
            options.ValidationFraction = 0;
            options.Weighting = LossWeighting.Fixed;
            options.TaskWeights = new Dictionary<string, double> { ["value"] = 0.5 };
            var (tasks, examples) = MLTransfer.Techniques.MultiTask.MultiTaskData.Read(manifest.ToDataView(new MLContext()), null, Kinds);
            var trained = new MultiTaskFineTuningTrainer(options).Fit(tasks, examples, []);
            var ml = new MLContext(seed: 0);
            var chain = trained.ToMLNet(ml, examples[0].ImagePath, dir);
            var image = TestData.Images(3, 1, skip: 11)[2].Path;
            var row = chain.Transform(ml.Data.LoadFromEnumerable(new[] { new ImageExample { ImagePath = image } }));
            var pixels = MLTransfer.Torch.FineTuning.ImagePixelReader.Read([image], 64)[0];
            var onnx = trained.ToOnnx().ToByteArray();
            foreach (var task in new[] { "digit", "parity" })
            {
                var fromOnnx = TestData.RunOnnxRuntime(onnx, "Pixels", pixels, [1, 3, 64, 64], "Score_" + task);
                var fromChain = row.GetColumn<VBuffer<float>>("Score_" + task).Single().DenseValues().ToArray();
                Assert.That(TestData.MaxAbsDifference(fromOnnx, fromChain), Is.LessThan(1e-4), task);
            }
            var value = TestData.RunOnnxRuntime(onnx, "Pixels", pixels, [1, 3, 64, 64], "Score_value").Single();
            Assert.That(value, Is.EqualTo(row.GetColumn<float>("Score_value").Single()).Within(1e-3 * Math.Max(1, Math.Abs(value))));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void Missing_labels_should_be_masked_out_of_their_task_loss()
    {
        var tasks = new List<ManifestTask> { new("colour", TaskKind.Classification, ["blue", "red"]), new("size", TaskKind.Regression, []) };
        var rows = new List<MultiLabelExample>
        {
            new("a", ["red", "1"]), new("b", ["", "3"]), new("c", ["blue", ""]), new("d", ["red", "5"]),
        };
        var targets = new TaskTargets(tasks, rows);
        torch.manual_seed(1);
        using var colourHead = nn.Linear(3, 2);
        using var sizeHead = nn.Linear(3, 1);
        var features = torch.randn(4, 3).requires_grad_(true);
        var losses = MultiTaskObjective.TaskLosses([colourHead, sizeHead], targets, features, [0, 1, 2, 3]);
        Assert.That(losses.Select(l => l.Task), Is.EqualTo(new[] { 0, 1 }));

        var expectedColour = F.cross_entropy(colourHead.forward(features.index_select(0, torch.tensor(new long[] { 0, 2, 3 }))), torch.tensor(new long[] { 1, 0, 1 }));
        Assert.That(losses[0].Loss.item<float>(), Is.EqualTo(expectedColour.item<float>()).Within(1e-6));
        var standardised = new[] { 1.0, 3.0, 5.0 }.Select(v => (float)((v - 3) / Math.Sqrt(8.0 / 3))).ToArray();
        var expectedSize = F.mse_loss(sizeHead.forward(features.index_select(0, torch.tensor(new long[] { 0, 1, 3 }))).squeeze(1), torch.tensor(standardised));
        Assert.That(losses[1].Loss.item<float>(), Is.EqualTo(expectedSize.item<float>()).Within(1e-5));

        // A masked row gets no gradient from its task.
        losses[0].Loss.backward();
        Assert.That(features.grad!.select(0, 1).abs().sum().item<float>(), Is.Zero, "row b has no colour label");
        Assert.That(features.grad!.select(0, 0).abs().sum().item<float>(), Is.GreaterThan(0));

        // A task without any label in the batch has no loss.
        var mixed = MultiTaskObjective.TaskLosses([colourHead, sizeHead], targets, features.detach()[1..3], [1, 2]);
        Assert.That(mixed.Select(l => l.Task), Is.EqualTo(new[] { 0, 1 }));
        var onlyB = MultiTaskObjective.TaskLosses([colourHead, sizeHead], targets, features.detach()[1..2], [1]);
        Assert.That(onlyB.Select(l => l.Task), Is.EqualTo(new[] { 1 }));
    }

    [Test]
    public void PCGrad_should_project_conflicting_gradients_and_keep_agreeing_ones()
    {
        using var g1 = torch.tensor(new float[] { 1, 0 });
        using var g2 = torch.tensor(new float[] { -1, 1 });
        using var combined = MultiTaskObjective.Combine([g1, g2], new Random(0));
        // g1·g2 = −1: g1' = g1 + ½g2 = (0.5, 0.5); g2' = g2 + g1 = (0, 1); sum (0.5, 1.5).
        Assert.That(combined.data<float>().ToArray(), Is.EqualTo(new[] { 0.5f, 1.5f }).Within(1e-6f));
        using var h1 = torch.tensor(new float[] { 1, 2 });
        using var h2 = torch.tensor(new float[] { 3, 1 });
        using var agreeing = MultiTaskObjective.Combine([h1, h2], new Random(0));
        Assert.That(agreeing.data<float>().ToArray(), Is.EqualTo(new[] { 4f, 3f }).Within(1e-6f));
    }

    [Test]
    public void Should_pass_the_estimator_checks()
    {
        var dir = TestData.TempFolder();
        var manifest = Manifest(dir, classes: 3, perClass: 3);
        var options = Options();
        options.Epochs = 1;
        options.UnfreezeAfterEpochs = 0;
        options.ImageSize = 32;
        options.ValidationFraction = 0;
        var ml = new MLContext(seed: 0);
        var probes = manifest.Examples.Take(2).Select(e => e.ImagePath).ToList();
        EstimatorChecks.Run(ml, ml.Transfer().FineTunedMultiTask(options), manifest.ToDataView(ml), probes,
            ["Score_digit", "Score_parity"], ["PredictedLabel_digit", "PredictedLabel_parity"]);
    }

    [Test]
    public void Should_resume_a_killed_run_and_end_like_an_uninterrupted_one()
    {
        var dir = TestData.TempFolder();
        var manifest = Manifest(dir, classes: 3, perClass: 3);
        var (tasks, examples) = MLTransfer.Techniques.MultiTask.MultiTaskData.Read(manifest.ToDataView(new MLContext()), null, Kinds);
        MultiTaskFineTuningOptions Tiny(Action<MultiTaskFineTuningOptions> change)
        {
            var options = Options();
            options.Epochs = 3;
            options.ImageSize = 32;
            options.Weighting = LossWeighting.GradNorm;
            change(options);
            return options;
        }
        var uninterrupted = new MultiTaskFineTuningTrainer(Tiny(_ => { })).Fit(tasks, examples.Take(7).ToList(), examples.Skip(7).ToList());
        var checkpoints = TestData.TempFolder();
        using var kill = new CancellationTokenSource();
        Assert.Throws<OperationCanceledException>(() => new MultiTaskFineTuningTrainer(Tiny(o => { o.CheckpointDirectory = checkpoints; o.MetricsCallback = m => { if (m.Epoch == 2) kill.Cancel(); }; }))
            .Fit(tasks, examples.Take(7).ToList(), examples.Skip(7).ToList(), kill.Token));
        var epochs = new List<int>();
        var resumed = new MultiTaskFineTuningTrainer(Tiny(o => { o.CheckpointDirectory = checkpoints; o.Resume = true; o.MetricsCallback = m => epochs.Add(m.Epoch); }))
            .Fit(tasks, examples.Take(7).ToList(), examples.Skip(7).ToList());
        Assert.That(epochs, Is.EqualTo(new[] { 3 }));
        Assert.That(resumed.History.Select(h => h.TrainLoss), Is.EqualTo(uninterrupted.History.Select(h => h.TrainLoss)));
        Assert.That(resumed.History.Select(h => h.TaskWeights["value"]), Is.EqualTo(uninterrupted.History.Select(h => h.TaskWeights["value"])));
        Assert.That(resumed.ToOnnx().ToByteArray(), Is.EqualTo(uninterrupted.ToOnnx().ToByteArray()));
    }

    [Test]
    public void GradNorm_should_push_the_weights_towards_equal_gradient_norms_on_the_last_shared_layer()
    {
        // Chen et al. 2018: task t's gradient norm on the last shared layer W is G_t = w_t·‖∇_W L_t‖; with equal loss
        // ratios every G_t should move to their mean, so the task with the smaller gradient gets a negative weight gradient
        // (descent raises its weight) and the other a positive one, each of magnitude ‖∇_W L_t‖.
        torch.manual_seed(3);
        var shared = new TorchSharp.Modules.Parameter(torch.randn(4, 3));
        var x = torch.randn(8, 3);
        var features = x.matmul(shared.t());
        var strong = (features * features).sum();
        var weak = (features * features).sum().Times(0.05);
        var weights = new TorchSharp.Modules.Parameter(torch.ones(2));
        var initial = torch.tensor(new[] { float.NaN, float.NaN });
        MultiTaskObjective.GradNormWeightGradient([(0, strong), (1, weak)], weights, shared, initial, alpha: 1.5);
        var gradient = weights.grad!.data<float>().ToArray();
        var norm = torch.autograd.grad([strong], [shared], retain_graph: true)[0].norm().item<float>();
        Assert.That(gradient[0], Is.EqualTo(norm).Within(1e-3 * norm), "the strong task's weight goes down");
        Assert.That(gradient[1], Is.EqualTo(-0.05 * norm).Within(1e-3 * norm), "the weak task's weight goes up");
        Assert.That(initial.data<float>().ToArray(), Is.EqualTo(new[] { strong.item<float>(), weak.item<float>() }), "L_t(0) is recorded at the first step");
    }

    [Test]
    public void GradNorm_training_should_learn_task_weights_that_keep_summing_to_the_number_of_tasks()
    {
        var dir = TestData.TempFolder();
        var manifest = Manifest(dir, classes: 3, perClass: 4);
        var (tasks, examples) = MLTransfer.Techniques.MultiTask.MultiTaskData.Read(manifest.ToDataView(new MLContext()), null, Kinds);
        var options = Options();
        options.Epochs = 2;
        options.UnfreezeAfterEpochs = 1;
        options.ImageSize = 32;
        options.ValidationFraction = 0;
        options.Weighting = LossWeighting.GradNorm;
        var model = new MultiTaskFineTuningTrainer(options).Fit(tasks, examples, []);
        TestContext.Out.WriteLine(string.Join(" | ", model.History.Select(h => string.Join(" ", h.TaskWeights.Select(p => $"{p.Key}={p.Value:F3}")))));
        Assert.That(model.History[0].TaskWeights.Values, Is.All.EqualTo(1.0), "weights stay 1 while only the heads train");
        var weights = model.History[^1].TaskWeights.Values.ToList();
        Assert.That(weights.Sum(), Is.EqualTo(3).Within(1e-4));
        Assert.That(weights, Has.Some.Not.EqualTo(1.0).Within(1e-6), "the weights moved");
    }
}
