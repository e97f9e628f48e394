using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLTransfer.Backbones;
using MLTransfer.Data;
using MLTransfer.Diagnostics;

namespace MLTransfer.Featurization;

/// <summary>Settings of <see cref="FeaturizationBenchmark.Run"/>.</summary>
public sealed class FeaturizationBenchmarkSettings
{
    /// <summary>Use at most this many images (the first ones in ordinal path order); null means all. The default value is null.</summary>
    public int? Limit { get; set; }

    /// <summary>Whether to run ML.NET's <c>DnnFeaturizeImage(ResNet18)</c> pipeline as the reference. The default value is true.</summary>
    public bool RunMlNet { get; set; } = true;

    /// <summary>
    /// Rounds the ML.NET and uncached engine phases are interleaved in: the images are split into this many chunks and
    /// each chunk runs through both (alternating which goes first), so that load from other processes hits both alike.
    /// Model loading is timed once. The default value is 4.
    /// </summary>
    public int Rounds { get; set; } = 4;

    /// <summary>Engine options for the uncached and cached phases (their cache settings are overridden). Null means the defaults. The default value is null.</summary>
    public FeaturizerOptions? Engine { get; set; }

    /// <summary>
    /// Sustained arithmetic throughput of one core in GFLOP/s, for the CPU limit; null measures it on this machine with
    /// <see cref="ConvolutionPeak"/>. The default value is null.
    /// </summary>
    public double? GflopsPerCore { get; set; }

    /// <summary>Work of one ResNet18 image at 224 px in GFLOP (multiply and add counted apart). The default value is 4.1.</summary>
    public double GflopPerImage { get; set; } = 4.1;
}

/// <summary>One timed phase of the benchmark.</summary>
/// <param name="Name">What ran.</param>
/// <param name="Images">Images requested.</param>
/// <param name="Failed">Images that could not be featurised.</param>
/// <param name="FromCache">Images served from the bottleneck cache.</param>
/// <param name="Seconds">Wall-clock time, including model loading.</param>
/// <param name="StartRssBytes">Resident memory when the phase started.</param>
/// <param name="PeakRssBytes">Peak resident memory during the phase (of the whole process where it cannot be reset).</param>
public sealed record BenchmarkPhase(string Name, int Images, int Failed, int FromCache, double Seconds, long StartRssBytes, long PeakRssBytes)
{
    /// <summary>Resident memory sampled as the phase progressed (about every tenth of the images); empty when not traced.</summary>
    public IReadOnlyList<RssSample> RssTrace { get; init; } = [];

    /// <summary>Images per second.</summary>
    public double ImagesPerSecond => Seconds > 0 ? Images / Seconds : 0;

    /// <summary>CPU time (all threads, user + system) the process spent in the phase, in seconds.</summary>
    public double CpuSeconds { get; init; }

    /// <summary>CPU milliseconds per image: unlike wall-clock rates, barely affected by other processes on a shared machine.</summary>
    public double CpuMillisecondsPerImage => Images > 0 ? 1000 * CpuSeconds / Images : 0;
}

/// <summary>Resident memory after some images of a phase were done.</summary>
/// <param name="Done">Images finished.</param>
/// <param name="RssBytes">Resident set size at that point.</param>
public readonly record struct RssSample(int Done, long RssBytes);

/// <summary>The outcome of <see cref="FeaturizationBenchmark.Run"/>.</summary>
public sealed class FeaturizationBenchmarkReport
{
    /// <summary>The image folder.</summary>
    public required string Folder { get; init; }

    /// <summary>Images featurised in each phase.</summary>
    public required int Images { get; init; }

    /// <summary>Square image size in pixels.</summary>
    public required int ImageSize { get; init; }

    /// <summary>Logical processors.</summary>
    public required int Cores { get; init; }

    /// <summary>Images per inference batch of the engine.</summary>
    public required int BatchSize { get; init; }

    /// <summary>Decode threads of the engine.</summary>
    public required int DecodeThreads { get; init; }

    /// <summary>Inference threads of the engine.</summary>
    public required int InferenceThreads { get; init; }

    /// <summary>Rounds the ML.NET and uncached engine phases were interleaved in.</summary>
    public required int Rounds { get; init; }

    /// <summary>Whether the engine ran the optimised graph (<see cref="FeaturizerOptions.OptimizeGraph"/>).</summary>
    public bool OptimizedGraph { get; init; }

    /// <summary>Whether this machine's SkiaSharp matched the engine's C# Mitchell resize, so the engine used it.</summary>
    public bool FastResize { get; init; }

    /// <summary>GFLOP/s of one core the CPU limit assumes: measured on this machine (<see cref="ConvolutionPeak"/>) unless the settings gave it.</summary>
    public required double GflopsPerCore { get; init; }

    /// <summary>Whether <see cref="GflopsPerCore"/> was measured on this machine rather than given.</summary>
    public required bool GflopsMeasured { get; init; }

    /// <summary>Arithmetic limit of the CPU in images/s: cores × GFLOP/s per core ÷ GFLOP per image at this size.</summary>
    public required double CpuLimitImagesPerSecond { get; init; }

    /// <summary>One-minute load average when the benchmark started (Linux); above <see cref="Cores"/> means other processes competed for the CPU.</summary>
    public double? LoadAverageAtStart { get; init; }

    /// <summary>One-minute load average when the benchmark ended (Linux).</summary>
    public double? LoadAverageAtEnd { get; init; }

    /// <summary>Whether each phase's peak memory is its own (Linux) rather than the process's.</summary>
    public required bool PeakPerPhase { get; init; }

    /// <summary>The phases, in the order they ran.</summary>
    public required IReadOnlyList<BenchmarkPhase> Phases { get; init; }

    /// <summary>ML.NET's <c>DnnFeaturizeImage</c> phase, when it ran.</summary>
    public BenchmarkPhase? MlNet => Phases.FirstOrDefault(p => p.Name == FeaturizationBenchmark.MlNetPhase);

    /// <summary>The engine without cache.</summary>
    public BenchmarkPhase Engine => Phases.First(p => p.Name == FeaturizationBenchmark.EnginePhase);

    /// <summary>The engine filling an empty cache.</summary>
    public BenchmarkPhase ColdCache => Phases.First(p => p.Name == FeaturizationBenchmark.ColdPhase);

    /// <summary>The engine re-run on the filled cache.</summary>
    public BenchmarkPhase WarmCache => Phases.First(p => p.Name == FeaturizationBenchmark.WarmPhase);

    /// <summary>Engine images/s divided by ML.NET images/s; null without the ML.NET phase.</summary>
    public double? Ratio => MlNet is { } m && m.ImagesPerSecond > 0 ? Engine.ImagesPerSecond / m.ImagesPerSecond : null;

    /// <summary>Engine images/s on <see cref="Cores"/> dedicated cores, estimated from its CPU time per image (not from wall-clock time).</summary>
    public double CpuBoundImagesPerSecond => Engine.CpuMillisecondsPerImage > 0 ? Cores * 1000 / Engine.CpuMillisecondsPerImage : 0;

    /// <summary>ML.NET CPU time per image divided by the engine's; null without the ML.NET phase.</summary>
    public double? CpuRatio => MlNet is { } m && Engine.CpuMillisecondsPerImage > 0 ? m.CpuMillisecondsPerImage / Engine.CpuMillisecondsPerImage : null;

    /// <summary>Engine images/s as a share of <see cref="CpuLimitImagesPerSecond"/>.</summary>
    public double ShareOfCpuLimit => Engine.ImagesPerSecond / CpuLimitImagesPerSecond;

    /// <summary>Time of the cold-cache run divided by that of the warm-cache run.</summary>
    public double CachedSpeedup => WarmCache.Seconds > 0 ? ColdCache.Seconds / WarmCache.Seconds : double.PositiveInfinity;

    /// <summary>Largest absolute difference between ML.NET's and the engine's features over all images; null without the ML.NET phase.</summary>
    public double? MaxAbsDifference { get; init; }
}

/// <summary>
/// Featurises the same images with ML.NET's own <c>DnnFeaturizeImage(ResNet18)</c> pipeline and with
/// <see cref="OnnxImageFeaturizer"/> (no cache, then an empty cache, then the filled cache), timing each phase end to
/// end (model loading and decoding included) and recording peak resident memory. Used by <c>mltransfer bench featurize</c>.
/// </summary>
public static class FeaturizationBenchmark
{
    /// <summary>Name of the ML.NET phase.</summary>
    public const string MlNetPhase = "ML.NET DnnFeaturizeImage";

    /// <summary>Name of the uncached engine phase.</summary>
    public const string EnginePhase = "engine (no cache)";

    /// <summary>Name of the engine phase that fills an empty cache.</summary>
    public const string ColdPhase = "engine (cold cache)";

    /// <summary>Name of the engine phase that re-runs on the filled cache.</summary>
    public const string WarmPhase = "engine (warm cache)";

    /// <summary>The image files of a folder (all sub-folders, image extensions only), in ordinal order, at most <paramref name="limit"/>.</summary>
    /// <param name="folder">The folder.</param>
    /// <param name="limit">Most images to return; null means all.</param>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    public static IReadOnlyList<string> CollectImages(string folder, int? limit = null)
    {
        if (!Directory.Exists(folder))
            throw new DirectoryNotFoundException($"Image folder '{folder}' does not exist.");
        var files = Directory.EnumerateFiles(Path.GetFullPath(folder), "*", SearchOption.AllDirectories)
            .Where(ImageFileCheck.HasImageExtension)
            .OrderBy(f => f, StringComparer.Ordinal);
        return (limit is { } n ? files.Take(n) : files).ToList();
    }

    /// <summary>Runs every phase on the images of a folder.</summary>
    /// <param name="folder">The image folder.</param>
    /// <param name="settings">Settings; null means the defaults.</param>
    /// <param name="log">Receives a line as each phase starts and ends; may be null.</param>
    /// <exception cref="InvalidDataException">The folder has no images.</exception>
    public static FeaturizationBenchmarkReport Run(string folder, FeaturizationBenchmarkSettings? settings = null, Action<string>? log = null)
    {
        settings ??= new FeaturizationBenchmarkSettings();
        var loadAtStart = ProcessMemory.LoadAverage();
        var paths = CollectImages(folder, settings.Limit);
        if (paths.Count == 0)
            throw new InvalidDataException($"Image folder '{folder}' has no images ({string.Join(", ", ImageFileCheck.Extensions)}).");
        var backbone = Backbone.ResNet18();
        var engineOptions = settings.Engine ?? new FeaturizerOptions();
        var size = engineOptions.ImageSize ?? backbone.InputSize;
        var phases = new List<BenchmarkPhase>();
        var perPhase = true;
        if (settings.RunMlNet && size != backbone.InputSize)
            throw new ArgumentException($"ML.NET's ResNet18 featurizer only runs at {backbone.InputSize} px; the engine was asked for {size} px.", nameof(settings));
        var rounds = Math.Clamp(settings.Rounds, 1, paths.Count);
        var (reference, engineFeatures) = RunInterleaved(backbone, paths, engineOptions, settings.RunMlNet, rounds, log, phases, ref perPhase);

        using var scratch = IO.ScratchFolder.Create();
        var cacheDirectory = scratch.Path;
        engineOptions = engineOptions.Clone();
        engineOptions.GraphDirectory = engineOptions.EffectiveGraphDirectory;
        foreach (var name in new[] { ColdPhase, WarmPhase })
        {
            var trace = new RssTrace(paths.Count);
            var phase = Measure(name, paths.Count, log, ref perPhase, () =>
            {
                using var engine = new OnnxImageFeaturizer(backbone, Clone(engineOptions, useCache: true, cacheDirectory));
                var result = engine.Featurize(paths, trace);
                return (result.Failed.Count, result.FromCache);
            });
            phases.Add(phase with { RssTrace = trace.Samples });
        }

        double? maxDiff = null;
        if (reference is not null)
        {
            var diff = 0.0;
            for (var i = 0; i < paths.Count; i++)
                if (reference[i] is { } a && engineFeatures[i] is { } b)
                    for (var j = 0; j < a.Length; j++)
                        diff = Math.Max(diff, Math.Abs(a[j] - b[j]));
            maxDiff = diff;
        }

        var gflopsPerCore = settings.GflopsPerCore ?? ConvolutionPeak.MeasureGflopsPerCore();
        return new FeaturizationBenchmarkReport
        {
            Folder = Path.GetFullPath(folder),
            Images = paths.Count,
            ImageSize = size,
            Cores = Environment.ProcessorCount,
            BatchSize = engineOptions.BatchSize,
            Rounds = rounds,
            OptimizedGraph = engineOptions.OptimizeGraph,
            FastResize = CubicResampler.IsExact,
            DecodeThreads = engineOptions.EffectiveDecodeThreads,
            InferenceThreads = engineOptions.EffectiveInferenceThreads,
            GflopsPerCore = gflopsPerCore,
            GflopsMeasured = settings.GflopsPerCore is null,
            CpuLimitImagesPerSecond = Environment.ProcessorCount * gflopsPerCore
                / (settings.GflopPerImage * Math.Pow(size / (double)backbone.InputSize, 2)),
            PeakPerPhase = perPhase,
            Phases = phases,
            MaxAbsDifference = maxDiff,
            LoadAverageAtStart = loadAtStart,
            LoadAverageAtEnd = ProcessMemory.LoadAverage(),
        };
    }

    private static (float[]?[]? Reference, float[]?[] Engine) RunInterleaved(Backbone backbone, IReadOnlyList<string> paths,
        FeaturizerOptions engineOptions, bool runMlNet, int rounds, Action<string>? log, List<BenchmarkPhase> phases, ref bool perPhase)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        perPhase &= ProcessMemory.TryResetPeak();
        var startRss = ProcessMemory.CurrentRssBytes();
        var reference = runMlNet ? new float[]?[paths.Count] : null;
        var engineFeatures = new float[]?[paths.Count];
        var (mlNetTime, engineTime) = (TimeSpan.Zero, TimeSpan.Zero);
        var (mlNetCpu, engineCpu) = (TimeSpan.Zero, TimeSpan.Zero);
        var (mlNetFailed, engineFailed) = (0, 0);
        var engineTrace = new List<RssSample>();
        log?.Invoke(runMlNet
            ? $"{MlNetPhase} and {EnginePhase}: {paths.Count} images in {rounds} interleaved round(s)…"
            : $"{EnginePhase}: {paths.Count} images…");

        var clock = new PhaseClock();
        using var mlNet = runMlNet ? new MlNetReference() : null;
        clock.AddTo(ref mlNetTime, ref mlNetCpu);
        using var engine = new OnnxImageFeaturizer(backbone, Clone(engineOptions, useCache: false, cacheDirectory: null));
        clock.AddTo(ref engineTime, ref engineCpu);

        for (var round = 0; round < rounds; round++)
        {
            var start = (int)((long)paths.Count * round / rounds);
            var end = (int)((long)paths.Count * (round + 1) / rounds);
            var chunk = paths.Skip(start).Take(end - start).ToList();
            void RunMlNetChunk()
            {
                if (mlNet is null)
                    return;
                clock.Restart();
                var features = mlNet.Featurize(chunk);
                clock.AddTo(ref mlNetTime, ref mlNetCpu);
                features.CopyTo(reference!, start);
                mlNetFailed += features.Count(f => f is null);
            }
            void RunEngineChunk()
            {
                clock.Restart();
                var result = engine.Featurize(chunk);
                clock.AddTo(ref engineTime, ref engineCpu);
                result.Features.CopyTo(engineFeatures, start);
                engineFailed += result.Failed.Count;
                engineTrace.Add(new RssSample(end, ProcessMemory.CurrentRssBytes()));
            }
            if (round % 2 == 0)
            {
                RunMlNetChunk();
                RunEngineChunk();
            }
            else
            {
                RunEngineChunk();
                RunMlNetChunk();
            }
        }
        var peak = ProcessMemory.PeakRssBytes();
        if (runMlNet)
            phases.Add(new BenchmarkPhase(MlNetPhase, paths.Count, mlNetFailed, 0, mlNetTime.TotalSeconds, startRss, peak) { CpuSeconds = mlNetCpu.TotalSeconds });
        phases.Add(new BenchmarkPhase(EnginePhase, paths.Count, engineFailed, 0, engineTime.TotalSeconds, startRss, peak)
        {
            RssTrace = engineTrace,
            CpuSeconds = engineCpu.TotalSeconds,
        });
        foreach (var phase in phases)
            log?.Invoke($"{phase.Name}: {phase.ImagesPerSecond:0.0} images/s ({phase.Seconds:0.00} s)");
        return (reference, engineFeatures);
    }

    /// <summary>
    /// Featurises images with ML.NET's reference pipeline: <c>LoadImages</c> → <c>ResizeImages(224)</c> →
    /// <c>ExtractPixels</c> → <c>DnnFeaturizeImage(ResNet18)</c>, streaming through one cursor.
    /// </summary>
    /// <param name="paths">The images.</param>
    /// <returns>One 512-value vector per path.</returns>
    public static float[]?[] FeaturizeWithMlNet(IReadOnlyList<string> paths)
    {
        ArgumentNullException.ThrowIfNull(paths);
        using var reference = new MlNetReference();
        return reference.Featurize(paths);
    }

    /// <summary>ML.NET's reference pipeline, fitted once and applied to any number of image lists.</summary>
    private sealed class MlNetReference : IDisposable
    {
        private readonly MLContext _ml = new(seed: 0);
        private readonly ITransformer _model;

        public MlNetReference()
        {
            var empty = _ml.Data.LoadFromEnumerable(Array.Empty<ImageExample>());
            var pipeline = _ml.Transforms.LoadImages("Image", imageFolder: null, inputColumnName: nameof(ImageExample.ImagePath))
                .Append(_ml.Transforms.ResizeImages("Image", 224, 224, "Image"))
                .Append(_ml.Transforms.ExtractPixels("Pixels", "Image"))
                .Append(_ml.Transforms.DnnFeaturizeImage("Features", m => m.ModelSelector.ResNet18(_ml, m.OutputColumn, m.InputColumn), "Pixels"));
            _model = pipeline.Fit(empty);
        }

        public float[]?[] Featurize(IReadOnlyList<string> paths)
        {
            var data = _ml.Data.LoadFromEnumerable(paths.Select(p => new ImageExample { ImagePath = p }));
            var transformed = _model.Transform(data);
            var column = transformed.Schema["Features"];
            var features = new float[]?[paths.Count];
            using var cursor = transformed.GetRowCursor([column]);
            var getter = cursor.GetGetter<VBuffer<float>>(column);
            var buffer = default(VBuffer<float>);
            var row = 0;
            while (cursor.MoveNext())
            {
                getter(ref buffer);
                features[row++] = buffer.DenseValues().ToArray();
            }
            return features;
        }

        public void Dispose() => (_model as IDisposable)?.Dispose();
    }

    /// <summary>Wall-clock and process CPU time since the last restart.</summary>
    private sealed class PhaseClock
    {
        private readonly Stopwatch _wall = Stopwatch.StartNew();
        private TimeSpan _cpuStart = Cpu();

        public void Restart()
        {
            _cpuStart = Cpu();
            _wall.Restart();
        }

        /// <summary>Adds the time since the last restart to the totals, then restarts.</summary>
        public void AddTo(ref TimeSpan wall, ref TimeSpan cpu)
        {
            wall += _wall.Elapsed;
            cpu += Cpu() - _cpuStart;
            Restart();
        }

        private static TimeSpan Cpu()
        {
            using var process = Process.GetCurrentProcess();
            return process.TotalProcessorTime;
        }
    }

    /// <summary>Samples resident memory each time another tenth of the images is done.</summary>
    private sealed class RssTrace(int total) : IProgress<FeaturizationProgress>
    {
        private readonly int _step = Math.Max(1, total / 10);
        private int _next = Math.Max(1, total / 10);

        public List<RssSample> Samples { get; } = [];

        public void Report(FeaturizationProgress value)
        {
            if (value.Done < _next && value.Done < value.Total)
                return;
            Samples.Add(new RssSample(value.Done, ProcessMemory.CurrentRssBytes()));
            while (_next <= value.Done)
                _next += _step;
        }
    }

    private static BenchmarkPhase Measure(string name, int images, Action<string>? log, ref bool perPhase, Func<(int Failed, int FromCache)> run)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        perPhase &= ProcessMemory.TryResetPeak();
        var startRss = ProcessMemory.CurrentRssBytes();
        log?.Invoke($"{name}: {images} images…");
        var clock = new PhaseClock();
        var (failed, fromCache) = run();
        var (wall, cpu) = (TimeSpan.Zero, TimeSpan.Zero);
        clock.AddTo(ref wall, ref cpu);
        var phase = new BenchmarkPhase(name, images, failed, fromCache, wall.TotalSeconds, startRss, ProcessMemory.PeakRssBytes())
        {
            CpuSeconds = cpu.TotalSeconds,
        };
        log?.Invoke($"{name}: {phase.ImagesPerSecond:0.0} images/s ({phase.Seconds:0.00} s)");
        return phase;
    }

    private static FeaturizerOptions Clone(FeaturizerOptions options, bool useCache, string? cacheDirectory)
    {
        var copy = options.Clone();
        copy.UseCache = useCache;
        copy.CacheDirectory = cacheDirectory;
        return copy;
    }
}
