using System.Diagnostics;
using System.Globalization;
using System.Text;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLTransfer.Data;
using MLTransfer.Featurization;
using MLTransfer.Heads;
using MLTransfer.Selection;
using MLTransfer.Techniques;
using MLTransfer.Techniques.FeatureExtraction;

namespace MLTransfer.Benchmarks;

/// <summary>One candidate of the advise benchmark: what advise predicted and what training it actually gave.</summary>
/// <param name="Candidate">The candidate as advise scored it.</param>
/// <param name="HeldOutAccuracy">Micro-accuracy on the test images of feature extraction trained on this candidate.</param>
/// <param name="TrainSeconds">Wall time of that training (featurisation of the training images included, cache off).</param>
public sealed record AdviseBenchmarkRow(AdviceCandidate Candidate, double HeldOutAccuracy, double TrainSeconds)
{
    /// <summary>
    /// Accuracy of the same head under stratified K-fold cross-validation over the training and test images together (each image
    /// predicted once, by a head trained on the other folds, its L2 chosen within them as feature extraction chooses it);
    /// NaN when the benchmark ran without folds.
    /// </summary>
    public double CrossValidatedAccuracy { get; init; } = double.NaN;

    /// <summary>
    /// The cross-validated accuracy of the head trained with each fixed L2 regularisation of the benchmark's grid; empty
    /// without folds or grid.
    /// </summary>
    public IReadOnlyDictionary<float, double> CrossValidatedAccuracyByL2 { get; init; } = new Dictionary<float, double>();

    /// <summary>The best of <see cref="CrossValidatedAccuracyByL2"/> (an oracle choice of L2 on the folds themselves); NaN without a grid.</summary>
    public double BestL2Accuracy => CrossValidatedAccuracyByL2.Count == 0 ? double.NaN : CrossValidatedAccuracyByL2.Values.Max();
}

/// <summary>Everything the advise benchmark measured on one dataset.</summary>
public sealed class AdviseBenchmarkResult
{
    /// <summary>Training images.</summary>
    public int TrainCount { get; init; }

    /// <summary>Test images.</summary>
    public int TestCount { get; init; }

    /// <summary>What advise found (on the training images).</summary>
    public required Advice Advice { get; init; }

    /// <summary>Per candidate, in advise's order.</summary>
    public required IReadOnlyList<AdviseBenchmarkRow> Rows { get; init; }

    /// <summary>Kendall τ-b between LogME scores and held-out accuracies.</summary>
    public double KendallLogMe { get; init; }

    /// <summary>Kendall τ-b between k-NN leave-one-out accuracies and held-out accuracies.</summary>
    public double KendallKnn { get; init; }

    /// <summary>Wall time of advise (cache off).</summary>
    public double AdviseSeconds => Advice.Seconds;

    /// <summary>Wall time of training every candidate.</summary>
    public double TrainAllSeconds => Rows.Sum(r => r.TrainSeconds);

    /// <summary>How many times faster advise was than training every candidate.</summary>
    public double SpeedUp => TrainAllSeconds / AdviseSeconds;

    /// <summary>
    /// Whether every candidate was trained cold and timed; when false the fits read features from a shared scratch cache, so
    /// <see cref="TrainAllSeconds"/> counts the heads only and <see cref="SpeedUp"/> is not a measurement.
    /// </summary>
    public bool TrainingTimed { get; init; } = true;

    /// <summary>The candidate advise ranked first.</summary>
    public AdviseBenchmarkRow Advised => Rows[0];

    /// <summary>The default configuration (the backbone's own output at its native size), when it is among the candidates.</summary>
    public AdviseBenchmarkRow? Default { get; init; }

    /// <summary>The candidate with the best held-out accuracy.</summary>
    public AdviseBenchmarkRow Oracle => Rows.OrderByDescending(r => r.HeldOutAccuracy).First();

    /// <summary>advise run again with other sample sizes, against the same held-out accuracies.</summary>
    public IReadOnlyList<AdviseSampleRun> OtherSamples { get; init; } = [];

    /// <summary>Folds of the cross-validated accuracies; 0 when not run.</summary>
    public int Folds { get; init; }

    /// <summary>Kendall τ-b between the LogME scores and <see cref="AdviseBenchmarkRow.CrossValidatedAccuracy"/>; NaN without folds.</summary>
    public double KendallLogMeCrossValidated { get; init; } = double.NaN;

    /// <summary>Kendall τ-b between the k-NN accuracies and <see cref="AdviseBenchmarkRow.CrossValidatedAccuracy"/>; NaN without folds.</summary>
    public double KendallKnnCrossValidated { get; init; } = double.NaN;

    /// <summary>Kendall τ-b between the LogME scores and the cross-validated accuracies of the head with each fixed L2 of the grid.</summary>
    public IReadOnlyDictionary<float, double> KendallLogMeByL2 { get; init; } = new Dictionary<float, double>();

    /// <summary>Kendall τ-b between the LogME scores and <see cref="AdviseBenchmarkRow.BestL2Accuracy"/>; NaN without a grid.</summary>
    public double KendallLogMeBestL2 { get; init; } = double.NaN;
}

/// <summary>advise with another sample size, measured against the same trained candidates.</summary>
/// <param name="MaxImages">The sample size (<see cref="AdviseOptions.MaxImages"/>).</param>
/// <param name="Advice">What advise found.</param>
/// <param name="KendallLogMe">Kendall τ-b between its LogME scores and the held-out accuracies.</param>
/// <param name="KendallKnn">Kendall τ-b between its k-NN accuracies and the held-out accuracies.</param>
/// <param name="SpeedUp">Training every candidate's time over this advise run's.</param>
/// <param name="AdvisedAccuracy">Held-out accuracy of the candidate it ranked first.</param>
public sealed record AdviseSampleRun(int MaxImages, Advice Advice, double KendallLogMe, double KendallKnn, double SpeedUp, double AdvisedAccuracy)
{
    /// <summary>Kendall τ-b between its LogME scores and the cross-validated accuracies; NaN without folds.</summary>
    public double KendallLogMeCrossValidated { get; init; } = double.NaN;
}

/// <summary>
/// Measures <see cref="Advisor"/> against what it predicts: advise runs on the training images, then feature extraction
/// (ML.NET L-BFGS maximum entropy, the default head) is trained on every candidate and scored on held-out test images.
/// Reports Kendall's τ between the LogME ranking (and the k-NN one) and the held-out accuracies, the time of advise
/// against training every candidate, and the held-out accuracy of the advised candidate against the default. The
/// bottleneck cache is off throughout, so each fit pays for its own featurisation as a first run would.
/// </summary>
public static class AdviseBenchmark
{
    /// <summary>Runs the benchmark.</summary>
    /// <param name="train">Labelled training images.</param>
    /// <param name="test">Labelled test images (classes among the training ones).</param>
    /// <param name="options">Advise options (candidates, sample size); its engine's cache is turned off.</param>
    /// <param name="seed">Seed of the heads.</param>
    /// <param name="log">Receives progress lines; may be null.</param>
    /// <param name="otherSampleSizes">Further values of <see cref="AdviseOptions.MaxImages"/> to run advise with, measured against the same training runs.</param>
    /// <param name="timeTraining">
    /// Whether each candidate's training runs cold and timed, as a user's first run would (the default). When false the training
    /// and test images are featurised once per size for all layers into a scratch bottleneck cache that every fit then reads:
    /// the same features and held-out accuracies in about a third of the time, but <see cref="AdviseBenchmarkRow.TrainSeconds"/>
    /// is then the head's training alone and <see cref="AdviseBenchmarkResult.SpeedUp"/> is not a measurement. advise then writes
    /// that cache too (its time is still measured, but is not a cold run's when the cache already holds the images).
    /// </param>
    /// <param name="cacheDirectory">The cache folder of the untimed mode; null means a fresh scratch folder, deleted at the end.</param>
    /// <param name="folds">
    /// When 2 or more, also measures every candidate by stratified K-fold cross-validation over the training and test images
    /// together (the same head, each image predicted once by a head trained without its fold): an estimate of the accuracy a
    /// candidate reaches on this data with less test-set noise than one split. Needs <paramref name="timeTraining"/> false.
    /// </param>
    /// <param name="headL2">
    /// With <paramref name="folds"/>: fixed L2 regularisations of the head to cross-validate besides feature extraction's own
    /// (chosen per fold), to see how much the ranking depends on the head's regularisation; null or empty: none.
    /// </param>
    public static AdviseBenchmarkResult Run(IReadOnlyList<ImageExample> train, IReadOnlyList<ImageExample> test, AdviseOptions options, int seed,
        Action<string>? log = null, IReadOnlyList<int>? otherSampleSizes = null, bool timeTraining = true, string? cacheDirectory = null, int folds = 0,
        IReadOnlyList<float>? headL2 = null)
    {
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(test);
        ArgumentNullException.ThrowIfNull(options);
        if (folds == 1 || folds < 0)
            throw new ArgumentOutOfRangeException(nameof(folds), folds, "Cross-validation needs at least 2 folds (0 turns it off).");
        if (folds > 1 && timeTraining)
            throw new ArgumentException("Cross-validation reads cached features: run it with timeTraining false.", nameof(folds));
        if (headL2 is { Count: > 0 } && folds < 2)
            throw new ArgumentException("An L2 grid is measured by cross-validation: give folds too.", nameof(headL2));
        var grid = (headL2 ?? []).Distinct().Order().ToList();
        var scratch = timeTraining ? null : Path.Combine(Path.GetTempPath(), "mltransfer", $"bench-advise-{Guid.NewGuid():N}");
        options.Engine = options.Engine.Clone();
        options.Engine.UseCache = !timeTraining;
        options.Engine.CacheDirectory = cacheDirectory ?? scratch;
        options.Log ??= log;
        AdviseBenchmarkResult result;
        try
        {
            log?.Invoke($"advise on {train.Count} training images");
            var advice = Advisor.Advise(train, options);
            log?.Invoke(string.Create(CultureInfo.InvariantCulture, $"advise took {advice.Seconds:F1} s; best {advice.Best.Layer} at {advice.Best.ImageSize} px"));
            var ml = new MLContext(seed: seed);
            var heads = new Dictionary<AdviceCandidate, (ITransformer Head, double Seconds)>();
            var trainEngine = options.Engine;
            if (!timeTraining)
            {
                foreach (var pass in advice.Candidates.GroupBy(c => (c.Backbone, c.ImageSize)))
                {
                    log?.Invoke($"featurising {train.Count} training images into the scratch cache with {pass.Key.Backbone.Name} at {pass.Key.ImageSize} px");
                    using var featurizer = AllLayers(pass.Key.Backbone, pass.Key.ImageSize, pass.ToList(), trainEngine);
                    featurizer.Featurize(train.Select(e => e.ImagePath).ToList());
                }
            }
            foreach (var candidate in advice.Candidates)
            {
                log?.Invoke($"training feature extraction on {candidate.Backbone.Name} {candidate.Layer} at {candidate.ImageSize} px");
                var engine = trainEngine.Clone();
                engine.ImageSize = candidate.ImageSize;
                engine.Layers = candidate.IsStage ? [candidate.Layer] : null;
                var clock = Stopwatch.StartNew();
                var model = ml.Transfer().FeatureExtraction(new FeatureExtractionOptions
                {
                    Backbone = candidate.Backbone, Engine = engine, ValidationFraction = 0, Seed = seed,
                }).Fit(ml.Data.LoadFromEnumerable(train));
                heads[candidate] = (((TransformerChain<ITransformer>)model.Chain).Last(), clock.Elapsed.TotalSeconds);
            }

            var accuracy = new Dictionary<AdviceCandidate, double>();
            foreach (var pass in advice.Candidates.GroupBy(c => (c.Backbone, c.ImageSize)))
            {
                log?.Invoke($"featurising {test.Count} test images with {pass.Key.Backbone.Name} at {pass.Key.ImageSize} px");
                using var featurizer = AllLayers(pass.Key.Backbone, pass.Key.ImageSize, pass.ToList(), options.Engine);
                var featurized = featurizer.Featurize(test.Select(e => e.ImagePath).ToList());
                var read = Enumerable.Range(0, test.Count).Where(i => featurized.Features[i] is not null).ToList();
                foreach (var candidate in pass)
                {
                    var layer = featurizer.Layers.Single(l => l.Name == candidate.Layer);
                    var features = read.Select(i => layer.Slice(featurized.Features[i]!)).ToList();
                    var predicted = heads[candidate].Head.Transform(FeatureRows.ToDataView(ml, features, null, null))
                        .GetColumn<ReadOnlyMemory<char>>("PredictedLabel").Select(p => p.ToString()).ToList();
                    accuracy[candidate] = (double)read.Where((i, k) => predicted[k] == test[i].Label).Count() / test.Count;
                }
            }

            var byL2 = folds > 1 ? CrossValidate(train.Concat(test).ToList(), advice.Candidates, options.Engine, folds, seed, grid, log) : null;
            var crossValidated = byL2?.ToDictionary(p => p.Key, p => p.Value[FeatureExtractionHead]);
            var rows = advice.Candidates.Select(c => new AdviseBenchmarkRow(c, accuracy[c], heads[c].Seconds)
            {
                CrossValidatedAccuracy = crossValidated?[c] ?? double.NaN,
                CrossValidatedAccuracyByL2 = byL2 is null ? new Dictionary<float, double>()
                    : byL2[c].Where(p => p.Key != FeatureExtractionHead).ToDictionary(p => p.Key, p => p.Value),
            }).ToList();
            var trainAll = rows.Sum(r => r.TrainSeconds);
            var others = new List<AdviseSampleRun>();
            foreach (var size in otherSampleSizes ?? [])
            {
                options.MaxImages = size;
                log?.Invoke($"advise with a sample of {size}");
                var other = Advisor.Advise(train, options);
                var held = other.Candidates.Select(c => Of(accuracy, c)).ToList();
                others.Add(new AdviseSampleRun(size, other, KendallTau(other.Candidates.Select(c => c.LogMe).ToList(), held),
                    KendallTau(other.Candidates.Select(c => c.KnnAccuracy).ToList(), held), trainAll / other.Seconds, held[0])
                {
                    KendallLogMeCrossValidated = crossValidated is null ? double.NaN
                        : KendallTau(other.Candidates.Select(c => c.LogMe).ToList(), other.Candidates.Select(c => Of(crossValidated, c)).ToList()),
                });
            }
            var first = advice.Candidates[0].Backbone;
            var defaultLayer = Backbones.BackboneStages.Of(first).FirstOrDefault(s => s.IsOutput)?.Name ?? FeatureLayer.OutputName;
            result = new AdviseBenchmarkResult
            {
                TrainCount = train.Count,
                TestCount = test.Count,
                Advice = advice,
                Rows = rows,
                KendallLogMe = KendallTau(rows.Select(r => r.Candidate.LogMe).ToList(), rows.Select(r => r.HeldOutAccuracy).ToList()),
                KendallKnn = KendallTau(rows.Select(r => r.Candidate.KnnAccuracy).ToList(), rows.Select(r => r.HeldOutAccuracy).ToList()),
                Default = rows.FirstOrDefault(r => ReferenceEquals(r.Candidate.Backbone, first) && r.Candidate.Layer == defaultLayer
                    && r.Candidate.ImageSize == first.InputSize),
                OtherSamples = others,
                TrainingTimed = timeTraining,
                Folds = folds > 1 ? folds : 0,
                KendallLogMeCrossValidated = folds > 1
                    ? KendallTau(rows.Select(r => r.Candidate.LogMe).ToList(), rows.Select(r => r.CrossValidatedAccuracy).ToList()) : double.NaN,
                KendallKnnCrossValidated = folds > 1
                    ? KendallTau(rows.Select(r => r.Candidate.KnnAccuracy).ToList(), rows.Select(r => r.CrossValidatedAccuracy).ToList()) : double.NaN,
                KendallLogMeByL2 = grid.Count > 0 && byL2 is not null
                    ? grid.ToDictionary(l2 => l2, l2 => KendallTau(rows.Select(r => r.Candidate.LogMe).ToList(), rows.Select(r => r.CrossValidatedAccuracyByL2[l2]).ToList()))
                    : new Dictionary<float, double>(),
                KendallLogMeBestL2 = grid.Count > 0 && byL2 is not null
                    ? KendallTau(rows.Select(r => r.Candidate.LogMe).ToList(), rows.Select(r => r.BestL2Accuracy).ToList()) : double.NaN,
            };
        }
        finally
        {
            if (scratch is not null && Directory.Exists(scratch))
                Directory.Delete(scratch, recursive: true);
        }
        return result;
    }

    // The value measured for the same feature source (backbone, layer, size) as a candidate of another advise run.
    private static double Of(Dictionary<AdviceCandidate, double> values, AdviceCandidate c) =>
        values.First(a => a.Key.Backbone == c.Backbone && a.Key.Layer == c.Layer && a.Key.ImageSize == c.ImageSize).Value;

    // The key of CrossValidate's result for feature extraction's own head (L2 chosen within each fold's training images).
    private const float FeatureExtractionHead = -1;

    // Stratified K-fold accuracy, on each candidate's features, of feature extraction's head (L-BFGS maximum entropy with
    // its L2 chosen by LbfgsHeadTrainer.TrainTuned within the training folds), and of the head with each fixed L2 of the grid.
    private static Dictionary<AdviceCandidate, Dictionary<float, double>> CrossValidate(IReadOnlyList<ImageExample> pool, IReadOnlyList<AdviceCandidate> candidates,
        FeaturizerOptions engine, int folds, int seed, IReadOnlyList<float> grid, Action<string>? log)
    {
        var fold = StratifiedFolds.Assign(pool.Select(e => e.Label).ToList(), folds, seed);
        var classes = pool.Select(e => e.Label).Distinct().Order(StringComparer.Ordinal).ToList();
        var result = new Dictionary<AdviceCandidate, Dictionary<float, double>>();
        foreach (var pass in candidates.GroupBy(c => (c.Backbone, c.ImageSize)))
        {
            log?.Invoke($"cross-validation ({folds} folds): featurising {pool.Count} images with {pass.Key.Backbone.Name} at {pass.Key.ImageSize} px");
            using var featurizer = AllLayers(pass.Key.Backbone, pass.Key.ImageSize, pass.ToList(), engine);
            var featurized = featurizer.Featurize(pool.Select(e => e.ImagePath).ToList());
            var read = Enumerable.Range(0, pool.Count).Where(i => featurized.Features[i] is not null).ToList();
            foreach (var candidate in pass)
            {
                var layer = featurizer.Layers.Single(l => l.Name == candidate.Layer);
                var heads = grid.Prepend(FeatureExtractionHead).ToList();
                var correct = new int[heads.Count, folds];
                // Each fold's head trains on one thread (LbfgsHeadTrainer), so running the folds side by side changes no number.
                Parallel.For(0, heads.Count * folds, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, job =>
                {
                    var (g, k) = Math.DivRem(job, folds);
                    var fit = read.Where(i => fold[i] != k).ToList();
                    var fitFeatures = fit.Select(i => layer.Slice(featurized.Features[i]!)).ToList();
                    var fitLabels = fit.Select(i => pool[i].Label).ToList();
                    var head = heads[g] == FeatureExtractionHead
                        ? LbfgsHeadTrainer.TrainTuned(new MLContext(seed: seed), classes, fitFeatures, fitLabels, seed).Head
                        : LbfgsHeadTrainer.Train(new MLContext(seed: seed), classes, fitFeatures, fitLabels, heads[g]);
                    var held = read.Where(i => fold[i] == k).ToList();
                    correct[g, k] = held.Count == 0 ? 0 : (int)Math.Round(held.Count * head.Accuracy(held.Select(i => layer.Slice(featurized.Features[i]!)).ToList(),
                        held.Select(i => classes.IndexOf(pool[i].Label)).ToList()));
                });
                result[candidate] = heads.Select((l2, g) => (l2, g)).ToDictionary(x => x.l2, x => (double)Enumerable.Range(0, folds).Sum(k => correct[x.g, k]) / pool.Count);
                log?.Invoke(string.Create(CultureInfo.InvariantCulture,
                    $"{candidate.Layer} {candidate.ImageSize} px: cross-validated accuracy {string.Join(", ", result[candidate].Select(p => p.Key == FeatureExtractionHead ? $"{p.Value:F4} (L2 chosen)" : $"{p.Value:F4} (L2 {p.Key})"))}"));
            }
        }
        return result;
    }

    // One featuriser for all the candidates' layers at one backbone and size, in the backbone's stage order (one graph file whatever the ranking).
    private static OnnxImageFeaturizer AllLayers(Backbones.Backbone backbone, int imageSize, IReadOnlyList<AdviceCandidate> candidates, FeaturizerOptions engine)
    {
        var options = engine.Clone();
        options.ImageSize = imageSize;
        var stages = Backbones.BackboneStages.Of(backbone).Select(s => s.Name).ToList();
        options.Layers = candidates.All(c => c.IsStage) ? candidates.Select(c => c.Layer).OrderBy(stages.IndexOf).ToList() : null;
        return new OnnxImageFeaturizer(backbone, options);
    }

    /// <summary>
    /// Kendall's τ-b rank correlation (Kendall 1945): (concordant − discordant pairs) / √((pairs − ties in x)(pairs − ties in y));
    /// 1 when both orders agree, −1 when reversed. NaN when either list is constant.
    /// </summary>
    /// <param name="x">First values.</param>
    /// <param name="y">Second values, as many.</param>
    public static double KendallTau(IReadOnlyList<double> x, IReadOnlyList<double> y)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(y);
        if (x.Count != y.Count)
            throw new ArgumentException("Both lists need as many values.", nameof(y));
        long concordant = 0, discordant = 0, tiesX = 0, tiesY = 0, pairs = 0;
        for (var i = 0; i < x.Count; i++)
            for (var j = i + 1; j < x.Count; j++)
            {
                pairs++;
                var dx = Math.Sign(x[i] - x[j]);
                var dy = Math.Sign(y[i] - y[j]);
                if (dx == 0)
                    tiesX++;
                if (dy == 0)
                    tiesY++;
                if (dx * dy > 0)
                    concordant++;
                else if (dx * dy < 0)
                    discordant++;
            }
        var denominator = Math.Sqrt((double)(pairs - tiesX) * (pairs - tiesY));
        return denominator == 0 ? double.NaN : (concordant - discordant) / denominator;
    }

    /// <summary>The result as a Markdown section.</summary>
    /// <param name="result">The result.</param>
    /// <param name="heading">Names the dataset and the run.</param>
    /// <param name="command">The command that reproduces it.</param>
    public static string Markdown(AdviseBenchmarkResult result, string heading, string command)
    {
        ArgumentNullException.ThrowIfNull(result);
        var c = CultureInfo.InvariantCulture;
        var md = new StringBuilder();
        md.AppendLine(heading).AppendLine();
        md.AppendLine(c, $"{result.TrainCount} training and {result.TestCount} test images; advise scored {result.Advice.Images} of the training images.").AppendLine();
        var cv = result.Folds > 1;
        md.AppendLine("| Advise rank | Candidate | Size | LogME | k-NN LOO acc | Held-out acc (feature extraction) |" + (cv ? $" {result.Folds}-fold CV acc |" : "") + " Train s |");
        md.AppendLine("|---:|---|---:|---:|---:|---:|" + (cv ? "---:|" : "") + "---:|");
        foreach (var r in result.Rows)
        {
            var mark = ReferenceEquals(r, result.Default) ? " (default)" : "";
            var best = ReferenceEquals(r, result.Oracle) ? "**" : "";
            var cvCell = cv ? string.Create(c, $" {r.CrossValidatedAccuracy:F4} |") : "";
            md.AppendLine(c, $"| {r.Candidate.Rank} | {r.Candidate.Backbone.Name} {r.Candidate.Layer}{mark} | {r.Candidate.ImageSize} | {r.Candidate.LogMe:F4} | {r.Candidate.KnnAccuracy:F3} | {best}{r.HeldOutAccuracy:F3}{best} |{cvCell} {r.TrainSeconds:F1} |");
        }
        md.AppendLine();
        md.AppendLine(c, $"- Kendall τ (LogME vs held-out accuracy): **{result.KendallLogMe:F3}**; k-NN vs held-out accuracy: {result.KendallKnn:F3}.");
        if (cv)
            md.AppendLine(c, $"- Kendall τ against the {result.Folds}-fold cross-validated accuracy: LogME **{result.KendallLogMeCrossValidated:F3}**, k-NN {result.KendallKnnCrossValidated:F3}.");
        if (result.KendallLogMeByL2.Count > 0)
        {
            md.AppendLine(c, $"- Kendall τ (LogME) against the cross-validated accuracy of the head trained with L2 = {string.Join(", ", result.KendallLogMeByL2.Select(p => string.Create(c, $"{p.Key}: {p.Value:F3}")))}; against the best L2 per candidate (an oracle choice on the folds): {result.KendallLogMeBestL2:F3}.");
            md.AppendLine(c, $"- Cross-validated accuracy by L2 (rows in advise's order): {string.Join("; ", result.Rows.Select(r => string.Create(c, $"{r.Candidate.Layer} {r.Candidate.ImageSize}: {string.Join("/", r.CrossValidatedAccuracyByL2.Values.Select(v => v.ToString("F3", c)))}")))}.");
        }
        if (result.TrainingTimed)
            md.AppendLine(c, $"- advise {result.AdviseSeconds:F1} s against {result.TrainAllSeconds:F1} s to train all {result.Rows.Count} candidates: **{result.SpeedUp:F1}×** faster.");
        else
            md.AppendLine(c, $"- advise {result.AdviseSeconds:F1} s (training not timed: the fits read shared cached features; \"Train s\" is the head alone).");
        if (result.Default is { } d)
            md.AppendLine(c, $"- advised ({result.Advised.Candidate.Layer}, {result.Advised.Candidate.ImageSize} px) {result.Advised.HeldOutAccuracy:F3} against the default ({d.Candidate.Layer}, {d.Candidate.ImageSize} px) {d.HeldOutAccuracy:F3} held-out: {(result.Advised.HeldOutAccuracy - d.HeldOutAccuracy) * 100:+0.0;-0.0;0.0} points; best candidate {result.Oracle.Candidate.Layer} at {result.Oracle.Candidate.ImageSize} px, {result.Oracle.HeldOutAccuracy:F3}.");
        foreach (var o in result.OtherSamples)
            md.AppendLine(c, $"- advise on {o.Advice.Images} images: τ LogME {o.KendallLogMe:F3}{(cv ? string.Create(c, $" ({o.KendallLogMeCrossValidated:F3} against CV)") : "")}, τ k-NN {o.KendallKnn:F3}, {o.Advice.Seconds:F1} s{(result.TrainingTimed ? $" ({o.SpeedUp:F1}× faster)" : "")}, advised {o.Advice.Best.Layer} at {o.Advice.Best.ImageSize} px: {o.AdvisedAccuracy:F3} held-out.");
        md.AppendLine().AppendLine("```").AppendLine(command).AppendLine("```");
        return md.ToString();
    }
}
