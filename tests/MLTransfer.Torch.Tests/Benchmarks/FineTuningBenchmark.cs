using System.Diagnostics;
using System.Globalization;
using MLTransfer.Data;
using MLTransfer.Evaluation;
using MLTransfer.Torch.FineTuning;
using NUnit.Framework;

namespace MLTransfer.Torch.Tests.Benchmarks;

/// <summary>
/// Fine-tuning accuracy against wall time on a full shared dataset (not part of the normal run):
/// <c>MLTRANSFER_BENCH_DATA=../shared/data/sign-language-digits dotnet test tests/MLTransfer.Torch.Tests --filter Category=Benchmark</c>.
/// 20 % of each class (seed 0, <see cref="ImageFolder.StratifiedSplit"/>) is the held-out test set; fine-tuning
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
        string folder = Env("DATA", Path.Combine(TestData.SignLanguageDigits, "..", "..", "..", "shared", "data", "sign-language-digits"));
        string log = Env("LOG", Path.Combine(Path.GetTempPath(), "mltransfer-finetune-benchmark.log"));
        var dataset = ImageFolder.Load(folder, new ImageFolderOptions { DecodeCheck = false });
        var (pool, test) = ImageFolder.StratifiedSplit(dataset.Examples, 0.2, seed: 0);
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

        options.MetricsCallback = m => Write(
            $"epoch {m.Epoch}/{m.Epochs} {m.Phase}: loss {m.TrainLoss:F3} train acc {m.TrainAccuracy:F3} val acc {m.ValidationAccuracy:F3} " +
            $"lr {m.LearningRate:E2} {m.ImagesPerSecond:F1} img/s elapsed {m.Elapsed:mm\\:ss} eta {m.EstimatedRemaining:mm\\:ss}");
        Write($"{DateTime.UtcNow:u} {folder}: {pool.Count} train+val, {test.Count} test; size {options.ImageSize}, epochs {options.Epochs}, batch {options.BatchSize}, " +
            $"unfreeze after {options.UnfreezeAfterEpochs}, lr {options.LearningRate}, layer decay {options.LayerLearningRateDecay}, top-blocks-only {options.TrainTopBlocksOnly}, threads {Environment.ProcessorCount}");

        var clock = Stopwatch.StartNew();
        using var model = new FineTuningTrainer(options).Fit(pool);
        var trainTime = clock.Elapsed;
        var index = model.ClassNames.Select((c, i) => (c, i)).ToDictionary(p => p.c, p => p.i, StringComparer.Ordinal);
        var report = ClassificationReport.Compute(model.ClassNames, test.Select(e => index[e.Label]).ToArray(), model.PredictProbabilities(test.Select(e => e.ImagePath).ToArray()));
        Write($"held-out test accuracy {report.MicroAccuracy:F4} ({test.Count} images), macro {report.MacroAccuracy:F4}, log-loss {report.LogLoss:F4}; " +
            $"wall time {clock.Elapsed:mm\\:ss} (training incl. decoding {trainTime:mm\\:ss})");
        Assert.That(report.MicroAccuracy, Is.GreaterThan(1.0 / model.ClassNames.Count));
    }
}
