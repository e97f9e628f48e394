using System.Diagnostics;
using Microsoft.ML;
using MLTransfer.Data;
using MLTransfer.Evaluation;
using MLTransfer.Export;
using MLTransfer.Techniques.FeatureExtraction;
using MLTransfer.Torch.FineTuning;
using MLTransfer.Torch.Training;

namespace MLTransfer.Torch.Benchmarks;

/// <summary>One row of <see cref="FineTuningBenchmark"/>.</summary>
/// <param name="Name">What was trained.</param>
/// <param name="MicroAccuracy">Micro-accuracy on the test images, scored through the reloaded <c>.zip</c> (ML.NET only).</param>
/// <param name="MacroAccuracy">Macro-accuracy on the test images.</param>
/// <param name="LogLoss">Log-loss on the test images.</param>
/// <param name="TrainSeconds">Wall time of <c>Fit</c>.</param>
/// <param name="TrainCpuSeconds">CPU time of the process (all its threads) during <c>Fit</c>.</param>
/// <param name="TestSeconds">Wall time of scoring the test images.</param>
/// <param name="History">Fine-tuning's epochs; empty for the feature-extraction peer.</param>
public sealed record FineTuningBenchmarkResult(string Name, double MicroAccuracy, double MacroAccuracy, double LogLoss, double TrainSeconds, double TrainCpuSeconds, double TestSeconds,
    IReadOnlyList<TrainingEpochMetrics> History)
{
    /// <summary>Mean training images per second over the epochs that trained the backbone (head-only epochs excluded); NaN without any.</summary>
    public double BodyImagesPerSecond => History.Where(m => m.Phase != TrainingPhase.HeadOnly).Select(m => m.ImagesPerSecond).DefaultIfEmpty(double.NaN).Average();
}

/// <summary>
/// Fine-tuning against feature extraction on the same split, in one run: fine-tuning with the given options (a share of
/// the training images held out as its validation split), then MLTransfer's default feature extraction (frozen backbone
/// + ML.NET L-BFGS) trained on all the training images; both saved as <c>.zip</c>, reloaded with a bare ML.NET context and
/// scored on the same test images.
/// </summary>
public static class FineTuningBenchmark
{
    /// <summary>Runs the comparison.</summary>
    /// <param name="train">Training images.</param>
    /// <param name="test">Test images (classes among the training classes).</param>
    /// <param name="options">Fine-tuning's options.</param>
    /// <param name="featureExtraction">Whether to train and score the feature-extraction peer.</param>
    /// <param name="work">A folder for the models (deleted by the caller).</param>
    /// <param name="log">Receives progress lines; may be null.</param>
    public static IReadOnlyList<FineTuningBenchmarkResult> Run(IReadOnlyList<ImageExample> train, IReadOnlyList<ImageExample> test, FineTuningOptions options,
        bool featureExtraction, string work, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var results = new List<FineTuningBenchmarkResult>();
        var ml = new MLContext(seed: options.Seed);
        var view = ml.Data.LoadFromEnumerable(train);
        var mode = options.TrainTopBlocksOnly
            ? $"top {options.TopBlocks} blocks on cached lower blocks ({options.TopBlockViews} view{(options.TopBlockViews == 1 ? "" : "s")}{(options.TopBlockMirrors ? " and their mirrors" : "")}, {(options.HalfPrecisionBlockCache ? "fp16" : "fp32")})"
            : "whole network";
        var regularisation = string.Concat(
            options.MixupAlpha > 0 ? FormattableString.Invariant($", mixup {options.MixupAlpha}") : "",
            options.CutMixAlpha > 0 ? FormattableString.Invariant($", cutmix {options.CutMixAlpha}") : "",
            options.WeightDecay != new FineTuningOptions().WeightDecay ? FormattableString.Invariant($", weight decay {options.WeightDecay}") : "",
            options.WeightAverageDecay > 0 ? FormattableString.Invariant($", EMA {options.WeightAverageDecay}") : "",
            options.EnsembleSize > 1 ? $", ensemble of {options.EnsembleSize}{(options.EnsembleFolds ? " on folds" : "")}" : "",
            options.TestTimeFlip ? ", test-time flip" : "");
        var name = $"fine-tuning: {mode}, {options.ImageSize} px, {options.Epochs} epochs{regularisation}";
        log?.Invoke($"{name}: fitting on {train.Count} images");
        var history = new List<TrainingEpochMetrics>();
        var callback = options.MetricsCallback;
        options.MetricsCallback = m =>
        {
            history.Add(m);
            callback?.Invoke(m);
        };
        try
        {
            results.Add(Score(name, () => ml.Transfer().FineTuning(options).Fit(view), history, ml, test, work, "fine-tuned.zip", log));
        }
        finally
        {
            options.MetricsCallback = callback;
        }
        if (featureExtraction)
        {
            log?.Invoke($"feature extraction: fitting on {train.Count} images");
            results.Add(Score("feature extraction (frozen backbone features + L-BFGS)",
                () => ml.Transfer().FeatureExtraction(new FeatureExtractionOptions { ValidationFraction = 0, Seed = options.Seed, Backbone = options.Backbone }).Fit(view),
                [], ml, test, work, "feature-extraction.zip", log));
        }
        return results;
    }

    private static FineTuningBenchmarkResult Score(string name, Func<ITransformer> fit, IReadOnlyList<TrainingEpochMetrics> history, MLContext ml,
        IReadOnlyList<ImageExample> test, string work, string file, Action<string>? log)
    {
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        var model = fit();
        var trainSeconds = clock.Elapsed.TotalSeconds;
        var trainCpuSeconds = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds;
        var zip = Path.Combine(work, file);
        ModelFile.Save(ml, model, zip);
        (model as IDisposable)?.Dispose();
        var consumer = new MLContext();
        var loaded = ModelFile.Load(consumer, zip);
        clock.Restart();
        var metrics = ModelEvaluator.Evaluate(consumer, loaded, test);
        (loaded as IDisposable)?.Dispose();
        log?.Invoke($"{name}: test accuracy {metrics.MicroAccuracy:F4} ({test.Count} images), fit {trainSeconds:F0} s ({trainCpuSeconds / 60:F1} CPU min)");
        return new FineTuningBenchmarkResult(name, metrics.MicroAccuracy, metrics.MacroAccuracy, metrics.LogLoss, trainSeconds, trainCpuSeconds, clock.Elapsed.TotalSeconds, history.ToList());
    }
}
