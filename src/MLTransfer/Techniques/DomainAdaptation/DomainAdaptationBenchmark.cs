using System.Diagnostics;
using System.Globalization;
using System.Text;
using Microsoft.ML;
using MLTransfer.Backbones;
using MLTransfer.Data;
using MLTransfer.Evaluation;
using MLTransfer.Featurization;

namespace MLTransfer.Techniques.DomainAdaptation;

/// <summary>Everything a benchmark method factory needs to build its estimator for one run.</summary>
/// <param name="TargetFolder">The unlabelled target training folder (its class sub-folders are not read as labels).</param>
/// <param name="Backbone">The backbone.</param>
/// <param name="Featurizer">A shared (memoising) featuriser over the backbone.</param>
/// <param name="Engine">Engine options (image size).</param>
/// <param name="Seed">The run's seed.</param>
public sealed record BenchmarkSetup(string TargetFolder, Backbone Backbone, IImageFeaturizer Featurizer, FeaturizerOptions Engine, int Seed)
{
    /// <summary>Copies the setup into a method's options.</summary>
    /// <param name="options">The options to fill.</param>
    public T Fill<T>(T options) where T : DomainAdaptationOptions
    {
        ArgumentNullException.ThrowIfNull(options);
        options.TargetFolder = TargetFolder;
        options.Backbone = Backbone;
        options.Featurizer = Featurizer;
        options.Engine = Engine;
        options.Seed = Seed;
        return options;
    }
}

/// <summary>A method in the benchmark.</summary>
/// <param name="Name">Name in the table.</param>
/// <param name="Stochastic">Whether results vary with the seed (then every seed is run; otherwise only the first).</param>
/// <param name="Baseline">Name of the method this one is compared with (its source-only peer).</param>
/// <param name="Create">Builds the estimator.</param>
public sealed record BenchmarkMethod(string Name, bool Stochastic, string Baseline, Func<MLContext, BenchmarkSetup, DomainAdaptationEstimator> Create);

/// <summary>One benchmark result.</summary>
/// <param name="Direction">E.g. <c>mnist→usps</c>.</param>
/// <param name="Method">Method name.</param>
/// <param name="Baseline">Name of the source-only peer.</param>
/// <param name="Seed">Seed.</param>
/// <param name="TargetAccuracy">Accuracy of the exported model on the labelled target test folder.</param>
/// <param name="SourceValidationAccuracy">Accuracy on the source validation split (the only selection signal).</param>
/// <param name="Seconds">Wall time of training (featurisation shared between methods is counted once, in the first method).</param>
/// <param name="CpuSeconds">CPU time of this process over the same span (all threads), which other load on the machine does not inflate.</param>
public sealed record BenchmarkRow(string Direction, string Method, string Baseline, int Seed, double TargetAccuracy, double SourceValidationAccuracy, double Seconds, double CpuSeconds = double.NaN);

/// <summary>
/// The reproducible domain-adaptation benchmark: for each direction of a two-domain dataset
/// (<c>root/&lt;domain&gt;/{train,test}/&lt;class&gt;/*.png</c>), trains every method on the labelled source
/// <c>train</c> folder with the target <c>train</c> folder as unlabelled data, and scores the exported ML.NET
/// model on the labelled target <c>test</c> folder (never used for training or selection).
/// </summary>
public static class DomainAdaptationBenchmark
{
    /// <summary>The closed-form methods of this assembly: source-only, CORAL (both directions), AdaBN, and self-training on top of source-only and CORAL.</summary>
    public static IReadOnlyList<BenchmarkMethod> ClosedFormMethods { get; } =
    [
        new("source-only", false, "source-only", (ml, s) => ml.Transfer().DomainAdaptation(s.Fill(new SourceOnlyOptions()))),
        new("coral", false, "source-only", (ml, s) => ml.Transfer().DomainAdaptation(s.Fill(new CoralOptions()))),
        new("coral-target-to-source", false, "source-only", (ml, s) => ml.Transfer().DomainAdaptation(s.Fill(new CoralOptions { Direction = CoralDirection.TargetToSource }))),
        new("adabn", false, "source-only", (ml, s) => ml.Transfer().DomainAdaptation(s.Fill(new AdaBNOptions()))),
        new("source-only+self-training", false, "source-only", (ml, s) => ml.Transfer().DomainAdaptation(s.Fill(new SourceOnlyOptions { SelfTrainingRounds = 3 }))),
        new("coral+self-training", false, "source-only", (ml, s) => ml.Transfer().DomainAdaptation(s.Fill(new CoralOptions { SelfTrainingRounds = 3 }))),
    ];

    /// <summary>Runs the benchmark.</summary>
    /// <param name="dataRoot">The dataset root holding one folder per domain.</param>
    /// <param name="directions">Pairs (source domain, target domain).</param>
    /// <param name="methods">Methods to run.</param>
    /// <param name="seeds">Seeds; deterministic methods use only the first.</param>
    /// <param name="imageSize">Square image size.</param>
    /// <param name="backbone">Backbone; null means ResNet18.</param>
    /// <param name="log">Receives one line per finished run; may be null.</param>
    /// <param name="vectorCache">Folder keeping backbone vectors between runs; null keeps them in memory only.</param>
    /// <param name="exportedModel">
    /// Score the saved ML.NET chain on every test image (slow) instead of the equivalent head on the test images'
    /// features as the exported graph maps them (<see cref="DomainAdaptationResult.ToHeadFeatures"/>; the tests
    /// check that both agree).
    /// </param>
    public static IReadOnlyList<BenchmarkRow> Run(string dataRoot, IReadOnlyList<(string Source, string Target)> directions, IReadOnlyList<BenchmarkMethod> methods,
        IReadOnlyList<int> seeds, int imageSize, Backbone? backbone = null, Action<string>? log = null, string? vectorCache = null, bool exportedModel = false)
    {
        ArgumentNullException.ThrowIfNull(directions);
        ArgumentNullException.ThrowIfNull(methods);
        if (seeds is null || seeds.Count == 0)
            throw new ArgumentException("Give at least one seed.", nameof(seeds));
        backbone ??= Backbone.ResNet18();
        var rows = new List<BenchmarkRow>();
        var engine = new FeaturizerOptions { ImageSize = imageSize };
        using var featurizer = new MemoizingFeaturizer(new OnnxImageFeaturizer(backbone, engine), vectorCache);
        foreach (var (sourceName, targetName) in directions)
        {
            var direction = $"{sourceName}→{targetName}";
            var source = ImageFolder.Load(Path.Combine(dataRoot, sourceName, "train")).Examples;
            var targetTrain = Path.Combine(dataRoot, targetName, "train");
            var targetTest = ImageFolder.Load(Path.Combine(dataRoot, targetName, "test")).Examples;
            foreach (var method in methods)
                foreach (var seed in method.Stochastic ? seeds : seeds.Take(1))
                {
                    var ml = new MLContext(seed);
                    var clock = Stopwatch.StartNew();
                    var cpu = Process.GetCurrentProcess().TotalProcessorTime;
                    var estimator = method.Create(ml, new BenchmarkSetup(targetTrain, backbone, featurizer, engine, seed));
                    var result = estimator.FitDetailed(ml.Data.LoadFromEnumerable(source));
                    var model = result.Model;
                    var seconds = clock.Elapsed.TotalSeconds;
                    var cpuSeconds = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds;
                    var accuracy = exportedModel ? ModelEvaluator.Evaluate(ml, model, targetTest).MicroAccuracy : HeadAccuracy(result, featurizer, targetTest);
                    var row = new BenchmarkRow(direction, method.Name, method.Baseline, seed, accuracy, model.Report.Validation?.MicroAccuracy ?? double.NaN, seconds, cpuSeconds);
                    rows.Add(row);
                    log?.Invoke(string.Create(CultureInfo.InvariantCulture,
                        $"{direction} {method.Name} seed {seed}: target accuracy {accuracy:F4}, source validation {row.SourceValidationAccuracy:F4}, {seconds:F0} s, CPU {cpuSeconds:F0} s"));
                }
        }
        return rows;
    }

    /// <summary>Accuracy of a result's head on labelled images, through the same feature map as the exported graph.</summary>
    /// <param name="result">The trained result.</param>
    /// <param name="featurizer">Featuriser of the raw backbone.</param>
    /// <param name="test">Labelled images.</param>
    public static double HeadAccuracy(DomainAdaptationResult result, IImageFeaturizer featurizer, IReadOnlyList<ImageExample> test)
    {
        ArgumentNullException.ThrowIfNull(result);
        ArgumentNullException.ThrowIfNull(featurizer);
        var set = FeatureTrainingSet.Create(featurizer, test, strict: true);
        var features = result.ToHeadFeatures(set.Features, set.Examples);
        return result.Head.Accuracy(features, set.LabelIndices(result.Head.Classes));
    }

    /// <summary>Formats rows as a markdown table: mean ± std over seeds, gain over the source-only peer.</summary>
    /// <param name="rows">Benchmark rows.</param>
    public static string ToMarkdown(IReadOnlyList<BenchmarkRow> rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        var text = new StringBuilder();
        text.AppendLine("| direction | method | target test accuracy | vs source-only peer | source validation accuracy | seeds | train time (s) | CPU time (s) |");
        text.AppendLine("|---|---|---|---|---|---|---|---|");
        foreach (var group in rows.GroupBy(r => (r.Direction, r.Method)))
        {
            var (mean, std) = MeanStd(group.Select(r => r.TargetAccuracy).ToList());
            var peer = rows.Where(r => r.Direction == group.Key.Direction && r.Method == group.First().Baseline).Select(r => r.TargetAccuracy).ToList();
            var gain = peer.Count == 0 || group.Key.Method == group.First().Baseline ? "—"
                : string.Create(CultureInfo.InvariantCulture, $"{(mean - MeanStd(peer).Mean) * 100:+0.0;-0.0} pts");
            var (validation, _) = MeanStd(group.Select(r => r.SourceValidationAccuracy).ToList());
            var accuracy = group.Count() > 1 ? string.Create(CultureInfo.InvariantCulture, $"{mean:F3} ± {std:F3}") : mean.ToString("F3", CultureInfo.InvariantCulture);
            text.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {group.Key.Direction} | {group.Key.Method} | {accuracy} | {gain} | {validation:F3} | {string.Join(",", group.Select(r => r.Seed))} | {group.Average(r => r.Seconds):F0} | {group.Average(r => r.CpuSeconds):F0} |"));
        }
        return text.ToString();
    }

    private static (double Mean, double Std) MeanStd(IReadOnlyList<double> values)
    {
        var mean = values.Average();
        var std = values.Count < 2 ? 0 : Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (values.Count - 1));
        return (mean, std);
    }
}
