using MLTransfer.Tests.TestSupport;
using System.Diagnostics;
using System.Globalization;
using MLTransfer.Data;
using MLTransfer.Evaluation;
using Microsoft.ML;
using MLTransfer.Torch.FineTuning;
using NUnit.Framework;

namespace MLTransfer.Torch.Tests.Benchmarks;

/// <summary>
/// Fine-tuning accuracy against wall time on a full shared dataset (not part of the normal run):
/// <c>MLTRANSFER_BENCH_DATA=../shared/data/sign-language-digits dotnet test tests/MLTransfer.Torch.Tests -c Release --filter FullyQualifiedName~Benchmarks.FineTuningBenchmark</c>
/// (<c>Category=Benchmark</c> also runs the multi-task benchmark).
/// 20 % of each class (seed 0, <see cref="ImageFolder.StratifiedSplit"/>) is the held-out test set, unless
/// <c>MLTRANSFER_BENCH_TEST</c> names a separate labelled test folder (e.g. <c>cifar10-subset/test</c>); fine-tuning
/// holds out 10 % of the rest for validation. Options come from MLTRANSFER_BENCH_* variables (see below).
/// </summary>
[Explicit("Benchmark: minutes of CPU")]
[Category("Benchmark")]
public class FineTuningBenchmark
{
    private static string Env(string name, string fallback) => Environment.GetEnvironmentVariable("MLTRANSFER_BENCH_" + name) ?? fallback;

    private static int Int(string name, int fallback) => int.Parse(Env(name, fallback.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);

    private static double Double(string name, double fallback) => double.Parse(Env(name, fallback.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);

    [Test]
    public void Fine_tune_and_score_the_held_out_split()
    {
        string folder = Env("DATA", Path.Combine(TestData.RepoRoot, "..", "shared", "data", "sign-language-digits"));
        string log = Env("LOG", Path.Combine(Path.GetTempPath(), "mltransfer-finetune-benchmark.log"));
        var dataset = ImageFolder.Load(folder, new ImageFolderOptions { DecodeCheck = false });
        var testFolder = Environment.GetEnvironmentVariable("MLTRANSFER_BENCH_TEST");
        var (pool, test) = testFolder is null
            ? ImageFolder.StratifiedSplit(dataset.Examples, 0.2, seed: 0)
            : (dataset.Examples, ImageFolder.Load(testFolder, new ImageFolderOptions { DecodeCheck = false }).Examples);
        var options = new FineTuningOptions
        {
            ImageSize = Int("IMAGE_SIZE", 128),
            Epochs = Int("EPOCHS", 6),
            BatchSize = Int("BATCH_SIZE", 32),
            UnfreezeAfterEpochs = Int("UNFREEZE_AFTER", 1),
            LearningRate = Double("LR", 1e-3),
            LayerLearningRateDecay = Double("LAYER_DECAY", 0.7),
            TrainTopBlocksOnly = Env("TOP_BLOCKS_ONLY", "false") == "true",
            TopBlocks = Int("TOP_BLOCKS", 2),
            ValidationFraction = Double("VALIDATION", 0.1),
            EarlyStoppingPatience = Int("PATIENCE", 3),
            Seed = Int("SEED", 0),
        };
        void Write(string line)
        {
            TestContext.Progress.WriteLine(line);
            File.AppendAllText(log, line + Environment.NewLine);
        }

        var epochs = new List<FineTuningEpochMetrics>();
        options.MetricsCallback = m =>
        {
            epochs.Add(m);
            Write(
                $"epoch {m.Epoch}/{m.Epochs} {m.Phase}: loss {m.TrainLoss:F3} train acc {m.TrainAccuracy:F3} val acc {m.ValidationAccuracy:F3} " +
                $"lr {m.LearningRate:E2} {m.ImagesPerSecond:F1} img/s elapsed {m.Elapsed:mm\\:ss} eta {m.EstimatedRemaining:mm\\:ss}");
        };
        Write($"{DateTime.UtcNow:u} {folder}: {pool.Count} train+val, {test.Count} test; size {options.ImageSize}, epochs {options.Epochs}, batch {options.BatchSize}, " +
            $"unfreeze after {options.UnfreezeAfterEpochs}, lr {options.LearningRate}, layer decay {options.LayerLearningRateDecay}, top-blocks-only {options.TrainTopBlocksOnly}, threads {Environment.ProcessorCount}");

        var clock = Stopwatch.StartNew();
        using var model = new FineTuningTrainer(options).Fit(pool);
        var trainTime = clock.Elapsed;
        var index = model.ClassNames.Select((c, i) => (c, i)).ToDictionary(p => p.c, p => p.i, StringComparer.Ordinal);
        var report = ClassificationReport.Compute(model.ClassNames, test.Select(e => index[e.Label]).ToArray(), model.PredictProbabilities(test.Select(e => e.ImagePath).ToArray()));
        Write($"held-out test accuracy {report.MicroAccuracy:F4} ({test.Count} images), macro {report.MacroAccuracy:F4}, log-loss {report.LogLoss:F4}; " +
            $"wall time {clock.Elapsed:mm\\:ss} (training incl. decoding {trainTime:mm\\:ss})");
        var trained = epochs.Where(m => m.Phase != FineTuningPhase.HeadOnly).ToList();
        if (trained.Count > 0)
        {
            var throughput = trained.Average(m => m.ImagesPerSecond);
            var limit = 20.0 * (224.0 / options.ImageSize) * (224.0 / options.ImageSize);
            Write(options.TrainTopBlocksOnly
                ? $"training throughput {throughput:F1} img/s on the top {options.TopBlocks} blocks (lower blocks cached)"
                : $"training throughput {throughput:F1} img/s for the whole network, against a CPU limit of ~{limit:F0} img/s at {options.ImageSize} px " +
                  $"(~20 img/s for forward+backward at 224 px, scaled by pixel count): {throughput / limit:P0}");
        }
        Assert.That(report.MicroAccuracy, Is.GreaterThan(1.0 / model.ClassNames.Count));

        if (Env("FEATURE_EXTRACTION", "true") != "true")
            return;
        // The peer on the same split and backbone: frozen 224 px features + L-BFGS maximum entropy, scored through ML.NET.
        var ml = new MLContext(seed: 0);
        clock.Restart();
        var peer = ml.Transfer().FeatureExtraction().Fit(ml.Data.LoadFromEnumerable(pool));
        var peerReport = ModelEvaluator.Evaluate(ml, peer, test);
        Write($"feature extraction (224 px, L-BFGS head) on the same split: held-out accuracy {peerReport.MicroAccuracy:F4}, log-loss {peerReport.LogLoss:F4}; " +
            $"wall time {clock.Elapsed:mm\\:ss} (bottleneck cache in use); fine-tuning gain {100 * (report.MicroAccuracy - peerReport.MicroAccuracy):+0.0;-0.0} points");
    }
}
