using System.Text.Json;
using Microsoft.ML;
using Microsoft.ML.OnnxRuntime;
using MLTransfer.Backbones;
using MLTransfer.Data;
using MLTransfer.Diagnostics;
using MLTransfer.Evaluation;
using MLTransfer.Export;
using MLTransfer.Featurization;
using MLTransfer.Quantization;
using MLTransfer.Techniques.FeatureExtraction;

namespace MLTransfer.Benchmarks;

/// <summary>Settings of <see cref="QuantizationBenchmark"/>.</summary>
public sealed class QuantizationBenchmarkSettings
{
    /// <summary>Images timed in the speed phases (the first ones in path order). The default value is 500.</summary>
    public int Limit { get; set; } = 500;

    /// <summary>Rounds the engines are interleaved in (chunks of the images, alternating which engine goes first). The default value is 4.</summary>
    public int Rounds { get; set; } = 4;

    /// <summary>Whether to time the plain float graph (no Winograd rewrite) too. The default value is false.</summary>
    public bool IncludePlainGraph { get; set; }

    /// <summary>Square image size. The default value is 224.</summary>
    public int ImageSize { get; set; } = 224;

    /// <summary>Calibration settings of the int8 engine and models (their image list is set by the benchmark). The default value is the defaults.</summary>
    public QuantizationOptions Quantization { get; set; } = new();

    /// <summary>
    /// Whether the accuracy phase also trains a head on the int8 engine's features and scores that model's int8 <c>.zip</c>
    /// (int8 throughout, as with <c>train --int8</c>). The default value is false.
    /// </summary>
    public bool TrainOnInt8Features { get; set; }

    /// <summary>Batches profiled per engine with ONNX Runtime's profiler (per-operator time); 0 skips profiling. The default value is 0.</summary>
    public int ProfileBatches { get; set; }
}

/// <summary>Images/s of one engine in the speed comparison.</summary>
/// <param name="Name">Which engine.</param>
/// <param name="Images">Images featurised.</param>
/// <param name="Seconds">Wall time of featurisation (sessions created and warmed up beforehand).</param>
/// <param name="CpuSeconds">Process CPU time spent.</param>
public sealed record EngineSpeed(string Name, int Images, double Seconds, double CpuSeconds)
{
    /// <summary>Images per second.</summary>
    public double ImagesPerSecond => Seconds > 0 ? Images / Seconds : 0;

    /// <summary>CPU milliseconds per image.</summary>
    public double CpuMillisecondsPerImage => Images > 0 ? 1000 * CpuSeconds / Images : 0;
}

/// <summary>Share of ONNX Runtime's node time spent in one operator type.</summary>
/// <param name="Engine">Which engine.</param>
/// <param name="Operator">Operator type as run (after ONNX Runtime's fusions, e.g. <c>QLinearConv</c>).</param>
/// <param name="Nodes">Nodes of that type.</param>
/// <param name="Milliseconds">Total time per batch.</param>
/// <param name="Share">Share of all node time.</param>
public sealed record OperatorTime(string Engine, string Operator, int Nodes, double Milliseconds, double Share);

/// <summary>Feature-extraction accuracy of a float model and its int8 copy on one dataset.</summary>
/// <param name="Dataset">The dataset folder.</param>
/// <param name="Train">Training images.</param>
/// <param name="Test">Test images.</param>
/// <param name="Float">Micro-accuracy of the float model's <c>.zip</c> on the test images.</param>
/// <param name="Int8">Micro-accuracy of the int8 <c>.zip</c> (same head, quantised backbone) on the test images.</param>
/// <param name="Agreement">Share of test images on which both predict the same class.</param>
/// <param name="FloatBytes">Size of the float <c>.zip</c>.</param>
/// <param name="Int8Bytes">Size of the int8 <c>.zip</c>.</param>
/// <param name="Int8Trained">
/// Micro-accuracy of int8 throughout: a head trained on the int8 engine's features
/// (<see cref="FeaturizerOptions.Quantization"/>), shipped as the int8 <c>.zip</c> of that model, on the test images;
/// null when not measured.
/// </param>
public sealed record QuantizedAccuracy(string Dataset, int Train, int Test, double Float, double Int8, double Agreement, long FloatBytes, long Int8Bytes,
    double? Int8Trained = null)
{
    /// <summary>Accuracy lost by quantising a float-trained model, in percentage points.</summary>
    public double LossPoints => 100 * (Float - Int8);

    /// <summary>Accuracy lost by training and predicting on int8 features, in percentage points; null when not measured.</summary>
    public double? Int8TrainedLossPoints => Int8Trained is { } trained ? 100 * (Float - trained) : null;
}

/// <summary>The outcome of <see cref="QuantizationBenchmark"/>.</summary>
public sealed class QuantizationBenchmarkReport
{
    /// <summary>Logical processors.</summary>
    public int Cores { get; init; } = Environment.ProcessorCount;

    /// <summary>The CPU's integer dot-product features as the kernel dispatch sees them (from <c>/proc/cpuinfo</c>).</summary>
    public string CpuFeatures { get; init; } = CpuInfo.Describe();

    /// <summary>Square image size.</summary>
    public int ImageSize { get; init; }

    /// <summary>The speed phases, in the order listed.</summary>
    public IReadOnlyList<EngineSpeed> Speed { get; init; } = [];

    /// <summary>Seconds spent quantising the engine's graph (calibration included).</summary>
    public double QuantizeSeconds { get; init; }

    /// <summary>Size of the float execution graph and of the int8 graph, in bytes.</summary>
    public (long Float, long Int8) GraphBytes { get; init; }

    /// <summary>Per-operator profile (empty unless profiling was asked for).</summary>
    public IReadOnlyList<OperatorTime> Profile { get; init; } = [];

    /// <summary>Accuracy per dataset.</summary>
    public IReadOnlyList<QuantizedAccuracy> Accuracy { get; init; } = [];

    /// <summary>One-minute load average at the start and end (Linux).</summary>
    public (double? Start, double? End) LoadAverage { get; init; }

    /// <summary>int8 images/s divided by the float engine's (its default, optimised graph); null without a speed run.</summary>
    public double? Speedup => Speed.FirstOrDefault(s => s.Name == QuantizationBenchmark.Int8Engine) is { } q
        && Speed.FirstOrDefault(s => s.Name == QuantizationBenchmark.FloatEngine) is { ImagesPerSecond: > 0 } f
        ? q.ImagesPerSecond / f.ImagesPerSecond : null;
}

/// <summary>
/// Measures int8 quantisation in one run: featurisation images/s of the float engine (its default optimised graph) and of
/// the int8 engine, interleaved; and, per dataset, the test accuracy of a feature-extraction model's <c>.zip</c> before and
/// after <see cref="ModelQuantizer"/> (same head), with both file sizes. Used by <c>mltransfer bench quantize</c>.
/// </summary>
public static class QuantizationBenchmark
{
    /// <summary>Name of the float engine (default settings: optimised graph).</summary>
    public const string FloatEngine = "fp32 engine (default: Winograd graph)";

    /// <summary>Name of the float engine on the plain graph.</summary>
    public const string PlainEngine = "fp32 engine, plain graph";

    /// <summary>Name of the int8 engine.</summary>
    public const string Int8Engine = "int8 engine (QDQ)";

    /// <summary>Times the engines on a folder's images.</summary>
    /// <param name="folder">Images to featurise (and calibrate on, unless the settings name calibration images).</param>
    /// <param name="settings">Settings; null means the defaults.</param>
    /// <param name="log">Receives progress lines; may be null.</param>
    public static QuantizationBenchmarkReport RunSpeed(string folder, QuantizationBenchmarkSettings? settings = null, Action<string>? log = null)
    {
        settings ??= new QuantizationBenchmarkSettings();
        var loadStart = ProcessMemory.LoadAverage();
        var paths = FeaturizationBenchmark.CollectImages(folder, settings.Limit);
        if (paths.Count == 0)
            throw new InvalidDataException($"Image folder '{folder}' has no images.");
        var graphFolder = Path.Combine(Path.GetTempPath(), "mltransfer", "bench-quantize-" + Guid.NewGuid().ToString("N")[..12]);
        try
        {
            var quantization = settings.Quantization.Clone();
            if (quantization.CalibrationFolder is null && quantization.CalibrationImages is null)
                quantization.CalibrationFolder = folder;
            FeaturizerOptions Options(bool optimize, QuantizationOptions? q) =>
                new() { ImageSize = settings.ImageSize, UseCache = false, GraphDirectory = graphFolder, OptimizeGraph = optimize, Quantization = q };
            var engines = new List<(string Name, OnnxImageFeaturizer Engine)>
            {
                (FloatEngine, new OnnxImageFeaturizer(Backbone.ResNet18(), Options(true, null))),
                (Int8Engine, new OnnxImageFeaturizer(Backbone.ResNet18(), Options(true, quantization))),
            };
            if (settings.IncludePlainGraph)
                engines.Add((PlainEngine, new OnnxImageFeaturizer(Backbone.ResNet18(), Options(false, null))));
            try
            {
                var warmUp = paths.Take(Math.Min(paths.Count, 16)).ToList();
                double quantizeSeconds = 0;
                foreach (var (name, engine) in engines)
                {
                    log?.Invoke($"{name}: building the session and warming up");
                    var clock = System.Diagnostics.Stopwatch.StartNew();
                    engine.Featurize(warmUp);
                    if (name == Int8Engine)
                        quantizeSeconds = clock.Elapsed.TotalSeconds;
                }
                var wall = new TimeSpan[engines.Count];
                var cpu = new TimeSpan[engines.Count];
                var rounds = Math.Clamp(settings.Rounds, 1, paths.Count);
                for (var round = 0; round < rounds; round++)
                {
                    var chunk = paths.Skip(round * paths.Count / rounds).Take((round + 1) * paths.Count / rounds - round * paths.Count / rounds).ToList();
                    for (var k = 0; k < engines.Count; k++)
                    {
                        var e = (k + round) % engines.Count;
                        var clock = new FeaturizationBenchmark.PhaseClock();
                        engines[e].Engine.Featurize(chunk);
                        clock.AddTo(ref wall[e], ref cpu[e]);
                    }
                    log?.Invoke($"round {round + 1}/{rounds}: {chunk.Count} images through every engine");
                }
                var profile = settings.ProfileBatches > 0
                    ? engines.SelectMany(e => Profile(e.Name, e.Engine.ExecutionGraphPath, settings.ImageSize, paths, settings.ProfileBatches)).ToList()
                    : [];
                return new QuantizationBenchmarkReport
                {
                    ImageSize = settings.ImageSize,
                    Speed = engines.Select((e, i) => new EngineSpeed(e.Name, paths.Count, wall[i].TotalSeconds, cpu[i].TotalSeconds)).ToList(),
                    QuantizeSeconds = quantizeSeconds,
                    GraphBytes = (new FileInfo(engines[0].Engine.ExecutionGraphPath).Length, new FileInfo(engines[1].Engine.ExecutionGraphPath).Length),
                    Profile = profile,
                    LoadAverage = (loadStart, ProcessMemory.LoadAverage()),
                };
            }
            finally
            {
                foreach (var (_, engine) in engines)
                    engine.Dispose();
            }
        }
        finally
        {
            if (Directory.Exists(graphFolder))
                Directory.Delete(graphFolder, recursive: true);
        }
    }

    /// <summary>
    /// Trains a feature-extraction model (float engine, default head, default bottleneck cache) on the training images, saves it, quantises the
    /// <c>.zip</c> with calibration on the training images, and scores both <c>.zip</c> files through ML.NET on the test images.
    /// </summary>
    /// <param name="dataset">Name of the dataset, for the report.</param>
    /// <param name="train">Training images.</param>
    /// <param name="test">Test images.</param>
    /// <param name="settings">Settings; null means the defaults.</param>
    /// <param name="log">Receives progress lines; may be null.</param>
    public static QuantizedAccuracy RunAccuracy(string dataset, IReadOnlyList<ImageExample> train, IReadOnlyList<ImageExample> test,
        QuantizationBenchmarkSettings? settings = null, Action<string>? log = null)
    {
        settings ??= new QuantizationBenchmarkSettings();
        var folder = Path.Combine(Path.GetTempPath(), "mltransfer", "bench-quantize-" + Guid.NewGuid().ToString("N")[..12]);
        try
        {
            var ml = new MLContext(seed: 1);
            var quantization = settings.Quantization.Clone();
            quantization.CalibrationFolder = null;
            quantization.CalibrationImages = train.Select(e => e.ImagePath).ToList();
            // The three quantisations of the same graph (both saved models, the int8 engine) calibrate once.
            quantization.GraphStoreDirectory = folder;
            // Trains feature extraction (on the float or the int8 engine's features), saves it and its int8 copy.
            Techniques.TransferModel TrainAndQuantize(QuantizationOptions? engineQuantization, string floatPath, string int8Path)
            {
                var options = new FeatureExtractionOptions
                {
                    ValidationFraction = 0,
                    Engine = new FeaturizerOptions { ImageSize = settings.ImageSize, GraphDirectory = folder, Quantization = engineQuantization },
                };
                var model = ml.Transfer().FeatureExtraction(options).Fit(ml.Data.LoadFromEnumerable(train));
                ModelFile.Save(ml, model, floatPath);
                ModelQuantizer.Quantize(floatPath, int8Path, quantization);
                return model;
            }

            log?.Invoke($"{dataset}: training feature extraction on {train.Count} images and quantising the model");
            var floatPath = Path.Combine(folder, "model.zip");
            var int8Path = Path.Combine(folder, "model-int8.zip");
            var model = TrainAndQuantize(null, floatPath, int8Path);
            log?.Invoke($"{dataset}: scoring both .zip files on {test.Count} test images through ML.NET");
            var classes = ModelEvaluator.Classes(model);
            var testPaths = test.Select(e => e.ImagePath).ToList();
            var floatScores = ModelEvaluator.Predict(ml, ModelFile.Load(ml, floatPath), testPaths);
            var int8Scores = ModelEvaluator.Predict(ml, ModelFile.Load(ml, int8Path), testPaths);
            int Best(float[] s) => Array.IndexOf(s, s.Max());
            double Accuracy(float[][] scores, IReadOnlyList<string> names) => test.Select((e, i) => names[Best(scores[i])] == e.Label ? 1.0 : 0.0).Average();
            var agreement = floatScores.Zip(int8Scores, (a, b) => Best(a) == Best(b) ? 1.0 : 0.0).Average();
            double? trained = null;
            if (settings.TrainOnInt8Features)
            {
                log?.Invoke($"{dataset}: training feature extraction on the int8 engine's features, quantising that model");
                var trainedPath = Path.Combine(folder, "model-int8-trained.zip");
                var int8Model = TrainAndQuantize(quantization.Clone(), Path.Combine(folder, "model-int8-trained-float.zip"), trainedPath);
                trained = Accuracy(ModelEvaluator.Predict(ml, ModelFile.Load(ml, trainedPath), testPaths), ModelEvaluator.Classes(int8Model));
            }
            return new QuantizedAccuracy(dataset, train.Count, test.Count, Accuracy(floatScores, classes), Accuracy(int8Scores, classes), agreement,
                new FileInfo(floatPath).Length, new FileInfo(int8Path).Length, trained);
        }
        finally
        {
            if (Directory.Exists(folder))
                Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>Runs a graph under ONNX Runtime's profiler and sums node time per operator type (as run, after fusions).</summary>
    private static IEnumerable<OperatorTime> Profile(string engine, string graphPath, int imageSize, IReadOnlyList<string> paths, int batches)
    {
        const int batchSize = 8;
        var plane = ImagePreprocessor.PixelCount(imageSize);
        var pixels = new float[batchSize * plane];
        for (var i = 0; i < batchSize; i++)
            ImagePreprocessor.TryLoadPixels(paths[i % paths.Count], imageSize, pixels.AsSpan(i * plane, plane));
        var prefix = Path.Combine(Path.GetTempPath(), "mltransfer", $"profile-{Guid.NewGuid():N}"[..20]);
        using var options = OnnxImageFeaturizer.CreateSessionOptions(1);
        options.EnableProfiling = true;
        options.ProfileOutputPathPrefix = prefix;
        string file;
        using (var session = new InferenceSession(graphPath, options))
        {
            for (var b = 0; b <= batches; b++)
            {
                using var input = OrtValue.CreateTensorValueFromMemory(pixels, [batchSize, 3, imageSize, imageSize]);
                using var run = new RunOptions();
                using var _ = session.Run(run, [FeaturizerGraph.InputName], [input], [FeaturizerGraph.OutputName]);
            }
            file = session.EndProfiling();
        }
        try
        {
            using var json = JsonDocument.Parse(File.ReadAllText(file));
            var nodes = json.RootElement.EnumerateArray()
                .Where(e => e.TryGetProperty("cat", out var cat) && cat.GetString() == "Node" && e.GetProperty("name").GetString()!.EndsWith("_kernel_time", StringComparison.Ordinal))
                .Select(e => (Op: e.GetProperty("args").GetProperty("op_name").GetString()!, Name: e.GetProperty("name").GetString()!, Microseconds: e.GetProperty("dur").GetDouble()))
                .ToList();
            var total = nodes.Sum(n => n.Microseconds);
            var runs = batches + 1;
            return nodes.GroupBy(n => n.Op)
                .Select(g => new OperatorTime(engine, g.Key, g.Select(n => n.Name).Distinct().Count(), g.Sum(n => n.Microseconds) / 1000 / runs, g.Sum(n => n.Microseconds) / total))
                .OrderByDescending(o => o.Share).ToList();
        }
        finally
        {
            File.Delete(file);
        }
    }
}

/// <summary>What the CPU offers for int8 and float kernels, read from <c>/proc/cpuinfo</c>.</summary>
public static class CpuInfo
{
    /// <summary>The model name and the relevant SIMD flags (AVX2, FMA, AVX-512, VNNI, AMX), or "unknown".</summary>
    public static string Describe()
    {
        try
        {
            var lines = File.ReadAllLines("/proc/cpuinfo");
            var model = lines.FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown CPU";
            var flags = (lines.FirstOrDefault(l => l.StartsWith("flags", StringComparison.Ordinal))?.Split(':', 2)[1] ?? "")
                .Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet();
            string[] relevant = ["avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_tile"];
            return $"{model}; {string.Join(" ", relevant.Where(flags.Contains))}";
        }
        catch (IOException)
        {
            return "unknown";
        }
    }
}
