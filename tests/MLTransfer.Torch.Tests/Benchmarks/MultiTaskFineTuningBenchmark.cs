using MLTransfer.Tests.TestSupport;
using System.Diagnostics;
using System.Globalization;
using Microsoft.ML;
using MLTransfer.Benchmarks;
using MLTransfer.Data;
using MLTransfer.Evaluation;
using MLTransfer.Export;
using MLTransfer.Techniques.MultiTask;
using MLTransfer.Torch.MultiTask;
using NUnit.Framework;

namespace MLTransfer.Torch.Tests.Benchmarks;

/// <summary>
/// Fine-tuned multi-task model vs fine-tuned single-task models (same trainer, backbone, image size, epochs, split),
/// not part of the normal run:
/// <c>MLTRANSFER_BENCH_MANIFEST=../shared/data/utkface-multitask-subset/labels.csv dotnet test tests/MLTransfer.Torch.Tests -c Release --filter FullyQualifiedName~MultiTaskFineTuningBenchmark</c>.
/// The test set is the same seeded 20 % as <c>mltransfer bench multi-task</c>; the rest (optionally limited to
/// <c>TRAIN_LIMIT</c> images, a seeded random subset) trains, with 10 % of it for validation and early stopping. Every model is saved, reloaded with a
/// bare MLContext and scored through its .zip. Appends a Markdown section to <c>MLTRANSFER_BENCH_OUTPUT</c> when set.
/// </summary>
[Explicit("Benchmark: many minutes of CPU")]
[Category("Benchmark")]
public class MultiTaskFineTuningBenchmark
{
    private static string Env(string name, string fallback) => Environment.GetEnvironmentVariable("MLTRANSFER_BENCH_" + name) ?? fallback;

    private static double Double(string name, double fallback) => double.Parse(Env(name, fallback.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);

    private static int Int(string name, int fallback) => int.Parse(Env(name, fallback.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);

    [Test]
    public void Fine_tuned_multi_task_vs_single_task_on_the_held_out_split()
    {
        var manifestPath = Env("MANIFEST", Path.Combine(TestData.RepoRoot, "..", "shared", "data", "utkface-multitask-subset", "labels.csv"));
        var tasksSpec = Env("TASKS", "gender,race,age_group,age:regression").Split(',');
        var names = tasksSpec.Select(t => t.Split(':')[0]).ToArray();
        var kinds = tasksSpec.Where(t => t.Contains(':')).ToDictionary(t => t.Split(':')[0], t => t.EndsWith("regression", StringComparison.Ordinal) ? TaskKind.Regression : TaskKind.Classification);
        var manifest = ImageManifest.Load(manifestPath, new ImageManifestOptions { Tasks = names, Kinds = kinds, DecodeCheck = false });
        var seed = Int("SEED", 1);
        var (pool, testExamples) = MultiTaskData.Split(manifest.Examples, 0.2, seed);
        var limit = Int("TRAIN_LIMIT", pool.Count);
        if (limit < pool.Count)
        {
            // A seeded random subset: the manifest is sorted (e.g. by gender), so its first rows are not a sample.
            var shuffled = pool.ToArray();
            new Random(seed + 1).Shuffle(shuffled);
            pool = shuffled.Take(limit).ToList();
        }
        var test = manifest.Subset(testExamples);
        var work = Env("WORK", Path.Combine(Path.GetTempPath(), "mltransfer", "bench-multi-task-fine-tuned"));
        Directory.CreateDirectory(work);
        var log = Path.Combine(work, "log.txt");
        void Write(string line)
        {
            TestContext.Progress.WriteLine(line);
            File.AppendAllText(log, $"{DateTime.UtcNow:HH:mm:ss} {line}{Environment.NewLine}");
        }

        MultiTaskFineTuningOptions Options(IReadOnlyList<string> tasks, LossWeighting weighting) => new()
        {
            Tasks = tasks, Kinds = manifest.Tasks.ToDictionary(t => t.Name, t => t.Kind), ImageSize = Int("IMAGE_SIZE", 96), Epochs = Int("EPOCHS", 3),
            UnfreezeAfterEpochs = Int("UNFREEZE_AFTER", 1), BatchSize = Int("BATCH_SIZE", 32),
            LearningRate = Double("LR", 1e-3), BackboneLearningRateFactor = Double("BACKBONE_LR_FACTOR", 0.1), ValidationFraction = 0.1, Seed = seed, Weighting = weighting,
            Balancing = Env("BALANCING", "none") == "pcgrad" ? GradientBalancing.PCGrad : GradientBalancing.None, EarlyStoppingPatience = 2,
            GraphDirectory = work, FreezeBatchNormStatistics = Env("FREEZE_BN", "true") == "true",
            MetricsCallback = m => Write($"  epoch {m.Epoch}/{m.Epochs} {m.Phase}: loss {m.TrainLoss:F3} mean val score {m.MeanValidationScore:F4} " +
                string.Join(" ", m.Validation.Select(p => $"{p.Key}={(p.Value.Classification is { } c ? c.MicroAccuracy.ToString("F3", CultureInfo.InvariantCulture) : "MAE " + p.Value.Regression!.MeanAbsoluteError.ToString("F2", CultureInfo.InvariantCulture))}")) +
                " weights " + string.Join(" ", m.TaskWeights.Select(p => $"{p.Key}={p.Value:F2}")) + $" elapsed {m.Elapsed:mm\\:ss}"),
        };

        (ITransformer Model, double Seconds) Train(string label, MultiTaskFineTuningOptions options, IReadOnlyList<MultiLabelExample> rows)
        {
            Write($"{label}: fine-tuning on {rows.Count} images");
            var ml = new MLContext(seed: seed);
            var clock = Stopwatch.StartNew();
            var model = ml.Transfer().FineTunedMultiTask(options).Fit(manifest.Subset(rows).ToDataView(ml));
            var seconds = clock.Elapsed.TotalSeconds;
            var zip = Path.Combine(work, label + ".zip");
            ModelFile.Save(ml, model, zip);
            return (ModelFile.Load(new MLContext(), zip), seconds);
        }

        var weighting = Env("WEIGHTING", "uncertainty") switch { "equal" => LossWeighting.Equal, _ => LossWeighting.Uncertainty };
        var (multi, multiSeconds) = Train("multi-task", Options(names, weighting), pool);
        var clock = Stopwatch.StartNew();
        var multiReports = MultiTaskEvaluator.Evaluate(new MLContext(), multi, test);
        var multiTest = clock.Elapsed.TotalSeconds;
        var rows = new List<MultiTaskBenchmarkRow>();
        double singleSeconds = 0, singleTest = 0;
        var singlePasses = 0;
        for (var t = 0; t < manifest.Tasks.Count; t++)
        {
            var task = manifest.Tasks[t];
            var labelled = pool.Where(e => e.Labels[t].Length > 0).ToList();
            var (single, seconds) = Train("single-" + task.Name, Options([task.Name], LossWeighting.Equal), labelled);
            singleSeconds += seconds;
            singlePasses += MultiTaskBenchmark.BackbonePasses(single);
            clock.Restart();
            var report = MultiTaskEvaluator.Evaluate(new MLContext(), single, test)[task.Name];
            singleTest += clock.Elapsed.TotalSeconds;
            var multiReport = multiReports[task.Name];
            rows.Add(task.Kind == TaskKind.Classification
                ? new MultiTaskBenchmarkRow(task.Name, task.Kind, "accuracy", multiReport.Classification!.MicroAccuracy, report.Classification!.MicroAccuracy, report.Classification.Count)
                : new MultiTaskBenchmarkRow(task.Name, task.Kind, "MAE", multiReport.Regression!.MeanAbsoluteError, report.Regression!.MeanAbsoluteError, report.Regression.Count));
            Write($"{task.Name}: multi {rows[^1].MultiTask:F4} single {rows[^1].SingleTask:F4}");
        }
        var result = new MultiTaskBenchmarkResult
        {
            TrainCount = pool.Count, TestCount = test.Examples.Count, Rows = rows,
            MultiTaskPasses = MultiTaskBenchmark.BackbonePasses(multi), SingleTaskPasses = singlePasses,
            MultiTaskFitSeconds = multiSeconds, SingleTaskFitSeconds = singleSeconds, MultiTaskTestSeconds = multiTest, SingleTaskTestSeconds = singleTest,
            MultiTaskBytes = new FileInfo(Path.Combine(work, "multi-task.zip")).Length,
            SingleTaskBytes = manifest.Tasks.Sum(t => new FileInfo(Path.Combine(work, "single-" + t.Name + ".zip")).Length),
        };
        var o = Options(names, weighting);
        var heading = $"## Fine-tuned: multi-task vs single-task fine-tuning\n\nResNet18 fine-tuned with TorchSharp at {o.ImageSize} px, {o.Epochs} epochs " +
            $"({o.UnfreezeAfterEpochs} heads-only), batch {o.BatchSize}, AdamW with one-cycle, peak LR {o.LearningRate} (backbone ×{o.BackboneLearningRateFactor}), 10 % validation with early stopping " +
            $"on the mean task score (patience {o.EarlyStoppingPatience}), BatchNorm statistics {(o.FreezeBatchNormStatistics ? "frozen" : "updated")}. Multi-task loss weighting: {weighting}; gradient balancing: {o.Balancing}. " +
            $"Single-task models: the same trainer with one task. Machine: {Environment.ProcessorCount} CPU cores (shared with other jobs), no GPU.";
        var command = $"MLTRANSFER_BENCH_MANIFEST={manifestPath} MLTRANSFER_BENCH_TRAIN_LIMIT={limit} MLTRANSFER_BENCH_IMAGE_SIZE={o.ImageSize} MLTRANSFER_BENCH_EPOCHS={o.Epochs} " +
            $"MLTRANSFER_BENCH_UNFREEZE_AFTER={o.UnfreezeAfterEpochs} MLTRANSFER_BENCH_LR={o.LearningRate} MLTRANSFER_BENCH_WEIGHTING={Env("WEIGHTING", "uncertainty")} " +
            "dotnet test tests/MLTransfer.Torch.Tests -c Release --filter FullyQualifiedName~MultiTaskFineTuningBenchmark";
        var markdown = MultiTaskBenchmark.Markdown(result, heading, command);
        Write(markdown);
        if (Environment.GetEnvironmentVariable("MLTRANSFER_BENCH_OUTPUT") is { } output)
            File.AppendAllText(output, Environment.NewLine + markdown);
        Assert.That(result.MultiTaskPasses, Is.EqualTo(1));
    }
}
