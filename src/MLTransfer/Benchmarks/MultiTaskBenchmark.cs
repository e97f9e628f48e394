using System.Diagnostics;
using System.Globalization;
using System.Text;
using Microsoft.ML;
using Microsoft.ML.Transforms.Onnx;
using MLTransfer.Data;
using MLTransfer.Evaluation;
using MLTransfer.Export;
using MLTransfer.Techniques.FeatureExtraction;
using MLTransfer.Techniques.MultiTask;

namespace MLTransfer.Benchmarks;

/// <summary>One task of the multi-task benchmark: the metric of the multi-task model and of the single-task model.</summary>
/// <param name="Task">Task name.</param>
/// <param name="Kind">Classification or regression.</param>
/// <param name="Metric">What is compared: <c>accuracy</c> (higher is better) or <c>MAE</c> (lower is better).</param>
/// <param name="MultiTask">The multi-task model's value.</param>
/// <param name="SingleTask">The single-task model's value.</param>
/// <param name="Count">Test images labelled for the task.</param>
/// <param name="PlainMlNet">
/// Accuracy of plain ML.NET on the task (its own <c>DnnFeaturizeImage</c> ResNet18 at 224 px + <c>LbfgsMaximumEntropy</c>,
/// no MLTransfer code), for classification tasks at 224 px with ResNet18; null otherwise.
/// </param>
public sealed record MultiTaskBenchmarkRow(string Task, TaskKind Kind, string Metric, double MultiTask, double SingleTask, int Count, double? PlainMlNet = null)
{
    /// <summary>Multi-task minus plain ML.NET, in accuracy points; null without the ML.NET baseline.</summary>
    public double? DeltaVsMlNet => PlainMlNet is { } m ? 100 * (MultiTask - m) : null;

    /// <summary>Multi-task minus single-task, in points (accuracy × 100) or in the target's unit (MAE).</summary>
    public double Delta => Kind == TaskKind.Classification ? 100 * (MultiTask - SingleTask) : MultiTask - SingleTask;

    /// <summary>Whether the multi-task model is within 1 accuracy point, or 0.5 (years) of MAE, of the single-task model, or better.</summary>
    public bool WithinTarget => Kind == TaskKind.Classification ? Delta >= -1 && DeltaVsMlNet is null or >= -1 : Delta <= 0.5;
}

/// <summary>Everything the multi-task benchmark measured.</summary>
public sealed class MultiTaskBenchmarkResult
{
    /// <summary>Training images.</summary>
    public int TrainCount { get; init; }

    /// <summary>Test images.</summary>
    public int TestCount { get; init; }

    /// <summary>Per-task comparison.</summary>
    public required IReadOnlyList<MultiTaskBenchmarkRow> Rows { get; init; }

    /// <summary>Backbone (ONNX) passes per image of the multi-task model, counted in the reloaded <c>.zip</c>.</summary>
    public int MultiTaskPasses { get; init; }

    /// <summary>Backbone passes per image of all single-task models together.</summary>
    public int SingleTaskPasses { get; init; }

    /// <summary>Wall time of fitting the multi-task model (featurisation included).</summary>
    public double MultiTaskFitSeconds { get; init; }

    /// <summary>Wall time of fitting all single-task models.</summary>
    public double SingleTaskFitSeconds { get; init; }

    /// <summary>Wall time of predicting the test images with the reloaded multi-task model.</summary>
    public double MultiTaskTestSeconds { get; init; }

    /// <summary>Wall time of predicting the test images with all reloaded single-task models.</summary>
    public double SingleTaskTestSeconds { get; init; }

    /// <summary>Size of the multi-task <c>.zip</c>.</summary>
    public long MultiTaskBytes { get; init; }

    /// <summary>Total size of the single-task <c>.zip</c> files.</summary>
    public long SingleTaskBytes { get; init; }
}

/// <summary>
/// Compares one multi-task model against one single-task model per task, with the same backbone, image size, split
/// and heads: classification tasks against MLTransfer feature extraction (ML.NET L-BFGS maximum entropy, the same
/// head the multi-task model trains) and, at 224 px with ResNet18, plain ML.NET (<see cref="MLNetBaseline.Classifier"/>);
/// regression tasks against a multi-task model with that task alone (ridge).
/// Every model is saved, reloaded with a bare <see cref="MLContext"/> and scored on the same held-out images.
/// </summary>
public static class MultiTaskBenchmark
{
    /// <summary>Runs the comparison.</summary>
    /// <param name="manifest">The labelled images.</param>
    /// <param name="options">Multi-task options (tasks, backbone, engine); the split below replaces its validation settings.</param>
    /// <param name="testFraction">Share of the images held out for testing (seeded random split).</param>
    /// <param name="seed">Seed of the split and the heads.</param>
    /// <param name="workFolder">Where the models are written.</param>
    /// <param name="log">Receives progress lines; may be null.</param>
    public static MultiTaskBenchmarkResult Run(ImageManifest manifest, MultiTaskOptions options, double testFraction, int seed, string workFolder,
        Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        ArgumentNullException.ThrowIfNull(options);
        Directory.CreateDirectory(workFolder);
        var (trainExamples, testExamples) = MultiTaskData.Split(manifest.Examples, testFraction, seed);
        var train = manifest.Subset(trainExamples);
        var test = manifest.Subset(testExamples);
        var ml = new MLContext(seed: seed);
        options.Tasks = manifest.Tasks.Select(t => t.Name).ToList();
        options.Kinds = manifest.Tasks.ToDictionary(t => t.Name, t => t.Kind);
        options.ValidationFraction = 0;
        options.Validation = null;
        options.Seed = seed;

        log?.Invoke($"multi-task: fitting {string.Join(", ", options.Tasks)} on {train.Examples.Count} images");
        var clock = Stopwatch.StartNew();
        var multi = ml.Transfer().MultiTask(options).Fit(train.ToDataView(ml));
        var multiFit = clock.Elapsed.TotalSeconds;
        var (multiModel, multiBytes) = SaveAndReload(ml, multi, Path.Combine(workFolder, "multi-task.zip"));
        log?.Invoke("multi-task: scoring the test images");
        clock.Restart();
        var multiReports = MultiTaskEvaluator.Evaluate(new MLContext(seed: seed), multiModel, test);
        var multiTest = clock.Elapsed.TotalSeconds;

        var backbone = options.Backbone ?? Backbones.Backbone.ResNet18();
        var runMlNet = backbone.Name == Backbones.Backbone.ResNet18().Name && (options.Engine.ImageSize ?? backbone.InputSize) == 224;
        var rows = new List<MultiTaskBenchmarkRow>();
        double singleFit = 0, singleTest = 0;
        long singleBytes = 0;
        var singlePasses = 0;
        for (var t = 0; t < manifest.Tasks.Count; t++)
        {
            var task = manifest.Tasks[t];
            var labelled = train.Examples.Where(e => e.Labels[t].Length > 0).ToList();
            var testLabelled = test.Examples.Where(e => e.Labels[t].Length > 0).ToList();
            log?.Invoke($"single-task '{task.Name}': fitting on {labelled.Count} images");
            clock.Restart();
            Microsoft.ML.ITransformer single = task.Kind == TaskKind.Classification
                ? ml.Transfer().FeatureExtraction(new FeatureExtractionOptions
                {
                    Backbone = options.Backbone, Head = HeadKind.LbfgsMaximumEntropy, Engine = options.Engine, ValidationFraction = 0, Seed = seed,
                }).Fit(ml.Data.LoadFromEnumerable(labelled.Select(e => new ImageExample { ImagePath = e.ImagePath, Label = e.Labels[t] })))
                : ml.Transfer().MultiTask(new MultiTaskOptions
                {
                    Tasks = [task.Name], Kinds = new Dictionary<string, TaskKind> { [task.Name] = task.Kind }, Backbone = options.Backbone,
                    Engine = options.Engine, RidgeLambda = options.RidgeLambda, ValidationFraction = 0, Seed = seed,
                }).Fit(train.Subset(labelled).ToDataView(ml));
            singleFit += clock.Elapsed.TotalSeconds;
            var (reloaded, bytes) = SaveAndReload(ml, single, Path.Combine(workFolder, $"single-{t}-{Safe(task.Name)}.zip"));
            singleBytes += bytes;
            singlePasses += BackbonePasses(reloaded);
            log?.Invoke($"single-task '{task.Name}': scoring the test images");
            clock.Restart();
            var evaluation = new MLContext(seed: seed);
            var multiReport = multiReports[task.Name];
            if (task.Kind == TaskKind.Classification)
            {
                // Every test image goes through the model (one backbone pass each), as a deployment would.
                var scores = ModelEvaluator.Predict(evaluation, reloaded, test.Examples.Select(e => e.ImagePath).ToList());
                var classes = ModelEvaluator.Classes(reloaded);
                var index = classes.Select((c, i) => (c, i)).ToDictionary(p => p.c, p => p.i, StringComparer.Ordinal);
                var known = Enumerable.Range(0, test.Examples.Count).Where(i => index.ContainsKey(test.Examples[i].Labels[t])).ToList();
                var report = ClassificationReport.Compute(classes, known.Select(i => index[test.Examples[i].Labels[t]]).ToArray(), known.Select(i => scores[i]).ToArray());
                singleTest += clock.Elapsed.TotalSeconds;
                double? plain = null;
                if (runMlNet)
                {
                    log?.Invoke($"plain ML.NET '{task.Name}': fitting on {labelled.Count} images and scoring the test images");
                    var baseline = MLNetBaseline.Classifier(evaluation).Fit(evaluation.Data.LoadFromEnumerable(
                        labelled.Select(e => new ImageExample { ImagePath = e.ImagePath, Label = e.Labels[t] })));
                    plain = ModelEvaluator.Evaluate(evaluation, baseline,
                        known.Select(i => new ImageExample { ImagePath = test.Examples[i].ImagePath, Label = test.Examples[i].Labels[t] }).ToList()).MicroAccuracy;
                }
                rows.Add(new MultiTaskBenchmarkRow(task.Name, task.Kind, "accuracy", multiReport.Classification!.MicroAccuracy, report.MicroAccuracy, report.Count, plain));
            }
            else
            {
                var report = MultiTaskEvaluator.Evaluate(evaluation, reloaded, test)[task.Name];
                singleTest += clock.Elapsed.TotalSeconds;
                rows.Add(new MultiTaskBenchmarkRow(task.Name, task.Kind, "MAE", multiReport.Regression!.MeanAbsoluteError, report.Regression!.MeanAbsoluteError, testLabelled.Count));
            }
        }
        return new MultiTaskBenchmarkResult
        {
            TrainCount = train.Examples.Count, TestCount = test.Examples.Count, Rows = rows,
            MultiTaskPasses = BackbonePasses(multiModel), SingleTaskPasses = singlePasses,
            MultiTaskFitSeconds = multiFit, SingleTaskFitSeconds = singleFit, MultiTaskTestSeconds = multiTest, SingleTaskTestSeconds = singleTest,
            MultiTaskBytes = multiBytes, SingleTaskBytes = singleBytes,
        };
    }

    /// <summary>Counts the ONNX Runtime transforms (backbone passes per image) in a model's transformer chain.</summary>
    /// <param name="model">A trained or loaded model.</param>
    public static int BackbonePasses(ITransformer model) => model switch
    {
        OnnxTransformer => 1,
        Techniques.TransferModel transfer => BackbonePasses(transfer.Chain),
        IEnumerable<ITransformer> chain => chain.Sum(BackbonePasses),
        _ => 0,
    };

    /// <summary>The result as a Markdown report.</summary>
    /// <param name="result">The result.</param>
    /// <param name="heading">Describes the run (data set, backbone, image size, machine).</param>
    /// <param name="command">The command that reproduces it.</param>
    public static string Markdown(MultiTaskBenchmarkResult result, string heading, string command)
    {
        ArgumentNullException.ThrowIfNull(result);
        var c = CultureInfo.InvariantCulture;
        var md = new StringBuilder();
        md.AppendLine(heading).AppendLine();
        md.AppendLine(c, $"Train {result.TrainCount} images, test {result.TestCount} held-out images (seeded random split).").AppendLine();
        md.AppendLine("| Task | Metric | Test images | Multi-task | Single-task | Δ (multi − single) | Plain ML.NET L-BFGS | Δ (multi − ML.NET) | Within target |");
        md.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---|");
        foreach (var r in result.Rows)
        {
            var (m, s, d) = r.Kind == TaskKind.Classification
                ? ((100 * r.MultiTask).ToString("F2", c) + " %", (100 * r.SingleTask).ToString("F2", c) + " %", r.Delta.ToString("+0.00;-0.00;0.00", c) + " pt")
                : (r.MultiTask.ToString("F3", c), r.SingleTask.ToString("F3", c), r.Delta.ToString("+0.000;-0.000;0.000", c));
            var plain = r.PlainMlNet is { } p ? (100 * p).ToString("F2", c) + " %" : "–";
            var vsPlain = r.DeltaVsMlNet is { } dp ? dp.ToString("+0.00;-0.00;0.00", c) + " pt" : "–";
            md.AppendLine(c, $"| {r.Task} | {r.Metric} | {r.Count} | {m} | {s} | {d} | {plain} | {vsPlain} | {(r.WithinTarget ? "yes" : "**no**")} |");
        }
        md.AppendLine().AppendLine("| Inference cost | Multi-task (1 model) | Single-task (" + result.Rows.Count + " models) |");
        md.AppendLine("|---|---:|---:|");
        md.AppendLine(c, $"| Backbone passes per image (ONNX transforms in the reloaded .zip files) | {result.MultiTaskPasses} | {result.SingleTaskPasses} |");
        md.AppendLine(c, $"| Wall time to score the {result.TestCount} test images | {result.MultiTaskTestSeconds:F1} s | {result.SingleTaskTestSeconds:F1} s |");
        md.AppendLine(c, $"| Wall time to fit (featurisation included) | {result.MultiTaskFitSeconds:F1} s | {result.SingleTaskFitSeconds:F1} s |");
        md.AppendLine(c, $"| Model size | {result.MultiTaskBytes / 1e6:F1} MB | {result.SingleTaskBytes / 1e6:F1} MB |");
        md.AppendLine().AppendLine("Reproduce with:").AppendLine().AppendLine("```").AppendLine(command).AppendLine("```");
        return md.ToString();
    }

    private static (ITransformer Model, long Bytes) SaveAndReload(MLContext ml, ITransformer model, string path)
    {
        ModelFile.Save(ml, model, path);
        return (ModelFile.Load(new MLContext(), path), new FileInfo(path).Length);
    }

    private static string Safe(string name) => string.Concat(name.Select(ch => char.IsLetterOrDigit(ch) ? ch : '_'));
}
