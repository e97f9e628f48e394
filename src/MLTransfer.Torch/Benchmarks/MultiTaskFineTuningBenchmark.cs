using System.Diagnostics;
using Microsoft.ML;
using MLTransfer.Benchmarks;
using MLTransfer.Data;
using MLTransfer.Evaluation;
using MLTransfer.Export;
using MLTransfer.Techniques.MultiTask;
using MLTransfer.Torch.MultiTask;

namespace MLTransfer.Torch.Benchmarks;

/// <summary>
/// A fine-tuned multi-task model against fine-tuned single-task models, one per task: the same trainer, backbone, image
/// size, budget and split (the same seeded held-out share as <see cref="MultiTaskBenchmark"/>); single-task models use equal
/// weighting (one task has nothing to weigh). Every model is saved, reloaded with a bare ML.NET context and scored on the
/// held-out images.
/// </summary>
public static class MultiTaskFineTuningBenchmark
{
    /// <summary>Runs the comparison.</summary>
    /// <param name="manifest">The labelled images.</param>
    /// <param name="options">The multi-task model's options (tasks, weighting, budget); single-task models copy them with one task.</param>
    /// <param name="testFraction">Share of the images held out for testing.</param>
    /// <param name="trainLimit">Train on at most this many images (a seeded random subset); null uses them all.</param>
    /// <param name="workFolder">Where the models are written.</param>
    /// <param name="log">Receives progress lines; may be null.</param>
    public static MultiTaskBenchmarkResult Run(ImageManifest manifest, MultiTaskFineTuningOptions options, double testFraction, int? trainLimit, string workFolder,
        Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        ArgumentNullException.ThrowIfNull(options);
        Directory.CreateDirectory(workFolder);
        var (pool, testExamples) = MultiTaskData.Split(manifest.Examples, testFraction, options.Seed);
        if (trainLimit is { } limit && limit < pool.Count)
        {
            // A seeded random subset: a manifest is often sorted (e.g. by gender), so its first rows are not a sample.
            var shuffled = pool.ToArray();
            new Random(options.Seed + 1).Shuffle(shuffled);
            pool = shuffled.Take(limit).ToList();
        }
        var test = manifest.Subset(testExamples);
        (ITransformer Model, double Seconds, long Bytes) Train(string label, MultiTaskFineTuningOptions o, IReadOnlyList<MultiLabelExample> rows)
        {
            log?.Invoke($"{label}: fine-tuning on {rows.Count} images");
            var ml = new MLContext(seed: o.Seed);
            var clock = Stopwatch.StartNew();
            using var model = ml.Transfer().FineTunedMultiTask(o).Fit(manifest.Subset(rows).ToDataView(ml));
            var seconds = clock.Elapsed.TotalSeconds;
            var zip = Path.Combine(workFolder, label + ".zip");
            ModelFile.Save(ml, model, zip);
            return (ModelFile.Load(new MLContext(), zip), seconds, new FileInfo(zip).Length);
        }

        var tasks = manifest.Tasks.Select(t => t.Name).ToList();
        var kinds = manifest.Tasks.ToDictionary(t => t.Name, t => t.Kind);
        var (multi, multiSeconds, multiBytes) = Train("multi-task", Copy(options, tasks, kinds, options.Weighting), pool);
        var clock = Stopwatch.StartNew();
        var multiReports = MultiTaskEvaluator.Evaluate(new MLContext(), multi, test);
        var multiTest = clock.Elapsed.TotalSeconds;
        var rows = new List<MultiTaskBenchmarkRow>();
        double singleSeconds = 0, singleTest = 0;
        long singleBytes = 0;
        var singlePasses = 0;
        for (var t = 0; t < manifest.Tasks.Count; t++)
        {
            var task = manifest.Tasks[t];
            var labelled = pool.Where(e => e.Labels[t].Length > 0).ToList();
            var (single, seconds, bytes) = Train("single-" + task.Name, Copy(options, [task.Name], kinds, LossWeighting.Equal), labelled);
            singleSeconds += seconds;
            singleBytes += bytes;
            singlePasses += MultiTaskBenchmark.BackbonePasses(single);
            clock.Restart();
            var report = MultiTaskEvaluator.Evaluate(new MLContext(), single, test)[task.Name];
            singleTest += clock.Elapsed.TotalSeconds;
            var multiReport = multiReports[task.Name];
            rows.Add(task.Kind == TaskKind.Classification
                ? new MultiTaskBenchmarkRow(task.Name, task.Kind, "accuracy", multiReport.Classification!.MicroAccuracy, report.Classification!.MicroAccuracy, report.Classification.Count)
                : new MultiTaskBenchmarkRow(task.Name, task.Kind, "MAE", multiReport.Regression!.MeanAbsoluteError, report.Regression!.MeanAbsoluteError, report.Regression.Count));
            log?.Invoke($"{task.Name}: multi-task {rows[^1].MultiTask:F4}, single-task {rows[^1].SingleTask:F4}");
        }
        return new MultiTaskBenchmarkResult
        {
            TrainCount = pool.Count, TestCount = test.Examples.Count, Rows = rows,
            MultiTaskPasses = MultiTaskBenchmark.BackbonePasses(multi), SingleTaskPasses = singlePasses,
            MultiTaskFitSeconds = multiSeconds, SingleTaskFitSeconds = singleSeconds, MultiTaskTestSeconds = multiTest, SingleTaskTestSeconds = singleTest,
            MultiTaskBytes = multiBytes, SingleTaskBytes = singleBytes,
        };
    }

    private static MultiTaskFineTuningOptions Copy(MultiTaskFineTuningOptions o, IReadOnlyList<string> tasks, IReadOnlyDictionary<string, TaskKind> kinds, LossWeighting weighting) => new()
    {
        Tasks = tasks, Kinds = kinds, Backbone = o.Backbone, ImageSize = o.ImageSize, Epochs = o.Epochs, UnfreezeAfterEpochs = o.UnfreezeAfterEpochs,
        BatchSize = o.BatchSize, LearningRate = o.LearningRate, BackboneLearningRateFactor = o.BackboneLearningRateFactor, WeightDecay = o.WeightDecay,
        Weighting = weighting, TaskWeights = o.TaskWeights, Balancing = tasks.Count > 1 ? o.Balancing : GradientBalancing.None, GradNormAlpha = o.GradNormAlpha,
        BatchNorm = o.BatchNorm, HorizontalFlip = o.HorizontalFlip, RandomResizedCropMinScale = o.RandomResizedCropMinScale, ValidationFraction = o.ValidationFraction,
        EarlyStoppingPatience = o.EarlyStoppingPatience, Seed = o.Seed, Threads = o.Threads, DataThreads = o.DataThreads, MetricsCallback = o.MetricsCallback,
    };
}
