using System.Diagnostics;
using Microsoft.ML;
using MLTransfer.Data;
using MLTransfer.Evaluation;
using MLTransfer.Featurization;
using MLTransfer.Techniques.FeatureExtraction;

namespace MLTransfer.Benchmarks;

/// <summary>One row of an accuracy benchmark.</summary>
/// <param name="Name">What was run.</param>
/// <param name="MicroAccuracy">Micro-accuracy on the test images.</param>
/// <param name="MacroAccuracy">Macro-accuracy on the test images.</param>
/// <param name="LogLoss">Log-loss on the test images.</param>
/// <param name="TrainSeconds">Wall time of Fit (featurisation included).</param>
/// <param name="TestSeconds">Wall time of scoring the test images through the model's ML.NET chain.</param>
public sealed record AccuracyResult(string Name, double MicroAccuracy, double MacroAccuracy, double LogLoss, double TrainSeconds, double TestSeconds);

/// <summary>
/// Trains plain ML.NET (<see cref="MLNetBaseline"/>) and MLTransfer feature extraction on the same training images
/// and scores both on the same test images through their ML.NET transformer chains, in one run.
/// </summary>
public static class AccuracyBenchmark
{
    /// <summary>Runs the comparison.</summary>
    /// <param name="train">Training images.</param>
    /// <param name="test">Test images (classes must be among the training classes).</param>
    /// <param name="options">MLTransfer's options; null means the defaults with no validation split and no cache.</param>
    /// <param name="log">Receives progress lines; may be null.</param>
    public static IReadOnlyList<AccuracyResult> Run(IReadOnlyList<ImageExample> train, IReadOnlyList<ImageExample> test,
        FeatureExtractionOptions? options = null, Action<string>? log = null)
    {
        var results = new List<AccuracyResult>();
        var ml = new MLContext(seed: 1);
        var trainView = ml.Data.LoadFromEnumerable(train);

        log?.Invoke($"ML.NET baseline: fitting on {train.Count} images");
        var clock = Stopwatch.StartNew();
        var baseline = MLNetBaseline.Classifier(ml).Fit(trainView);
        var fitSeconds = clock.Elapsed.TotalSeconds;
        clock.Restart();
        var baselineReport = ModelEvaluator.Evaluate(ml, baseline, test);
        results.Add(new AccuracyResult("ML.NET DnnFeaturizeImage + LbfgsMaximumEntropy", baselineReport.MicroAccuracy,
            baselineReport.MacroAccuracy, baselineReport.LogLoss, fitSeconds, clock.Elapsed.TotalSeconds));

        options ??= new FeatureExtractionOptions { ValidationFraction = 0, Engine = new FeaturizerOptions { UseCache = false } };
        log?.Invoke($"MLTransfer feature extraction ({options.Head}): fitting on {train.Count} images");
        clock.Restart();
        var model = ml.Transfer().FeatureExtraction(options).Fit(trainView);
        fitSeconds = clock.Elapsed.TotalSeconds;
        clock.Restart();
        var report = ModelEvaluator.Evaluate(ml, model, test);
        results.Add(new AccuracyResult($"MLTransfer feature extraction ({options.Head})", report.MicroAccuracy,
            report.MacroAccuracy, report.LogLoss, fitSeconds, clock.Elapsed.TotalSeconds));
        return results;
    }

    /// <summary>Takes the first <paramref name="perClass"/> images (file-name order) of the chosen classes.</summary>
    /// <param name="folder">A loaded folder.</param>
    /// <param name="classes">Classes to keep; null keeps all.</param>
    /// <param name="perClass">Images per class; null keeps all.</param>
    public static IReadOnlyList<ImageExample> Subset(ImageFolder folder, IReadOnlyCollection<string>? classes, int? perClass) =>
        Subset(folder.Examples, classes, perClass);

    /// <summary>
    /// The training and test images of a benchmark: a training folder and a test folder, or, without a test folder, a
    /// seeded stratified 20 % of the training folder held out; each optionally limited to some classes and to the first
    /// images of each class.
    /// </summary>
    /// <param name="trainFolder">Labelled training images.</param>
    /// <param name="testFolder">Labelled test images; null holds out 20 % of the training folder.</param>
    /// <param name="classes">Classes to keep; null keeps all.</param>
    /// <param name="perClass">Training images per class; null keeps all.</param>
    /// <param name="testPerClass">Test images per class; null keeps all.</param>
    /// <param name="seed">Seed of the split.</param>
    public static (IReadOnlyList<ImageExample> Train, IReadOnlyList<ImageExample> Test) TrainAndTest(string trainFolder, string? testFolder,
        IReadOnlyCollection<string>? classes, int? perClass, int? testPerClass, int seed)
    {
        var all = Subset(ImageFolder.Load(trainFolder, new ImageFolderOptions { DecodeCheck = false }), classes, perClass);
        if (testFolder is null)
        {
            var (train, test) = ImageFolder.StratifiedSplit(all, 0.2, seed);
            return (train, Subset(test, null, testPerClass));
        }
        return (all, Subset(ImageFolder.Load(testFolder, new ImageFolderOptions { DecodeCheck = false, MinimumClasses = 1 }), classes, testPerClass));
    }

    private static IReadOnlyList<ImageExample> Subset(IReadOnlyList<ImageExample> examples, IReadOnlyCollection<string>? classes, int? perClass) =>
        examples.Where(e => classes is null || classes.Contains(e.Label))
            .GroupBy(e => e.Label).SelectMany(g => perClass is { } n ? g.Take(n) : g).ToList();
}
