using System.ComponentModel;
using System.Text.Json;
using System.Text.Json.Serialization;
using MLTransfer.Featurization;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MLTransfer.Cli.Commands;

/// <summary>
/// <c>mltransfer bench featurize &lt;folder&gt; [--limit N] [--json]</c>: featurises the same images with ML.NET's
/// <c>DnnFeaturizeImage(ResNet18)</c> pipeline and with the engine (no cache, cold cache, warm cache) and prints
/// images/s, the engine/ML.NET ratio, the share of the CPU limit, the cached re-run speedup and peak memory.
/// </summary>
public sealed class BenchFeaturizeCommand : Command<BenchFeaturizeCommand.Settings>
{
    /// <summary>Arguments of <see cref="BenchFeaturizeCommand"/>.</summary>
    public sealed class Settings : EngineTuningSettings
    {
        /// <summary>The image folder.</summary>
        [CommandArgument(0, "<folder>")]
        [Description("Folder of images (searched recursively).")]
        public string Folder { get; set; } = "";

        /// <summary>Most images to use.</summary>
        [CommandOption("--limit <N>")]
        [Description("Use only the first N images (ordinal path order). Default: all.")]
        public int? Limit { get; set; }

        /// <summary>Print JSON instead of a table.</summary>
        [CommandOption("--json")]
        [Description("Print the report as JSON.")]
        public bool Json { get; set; }

        /// <summary>Skip the ML.NET reference.</summary>
        [CommandOption("--no-mlnet")]
        [Description("Skip ML.NET's DnnFeaturizeImage reference (no ratio).")]
        public bool NoMlNet { get; set; }

        /// <summary>Interleaving rounds of the ML.NET and engine phases.</summary>
        [CommandOption("--rounds <N>")]
        [Description("Split the images into N chunks and run ML.NET and the engine on each in turn, so other load hits both alike. Default: 4.")]
        public int Rounds { get; set; } = 4;

        /// <summary>GFLOP/s of one core.</summary>
        [CommandOption("--gflops-per-core <X>")]
        [Description("Sustained GFLOP/s of one core, for the CPU limit. Default: measured on this machine (a 3×3, 256-channel ONNX Runtime convolution on one thread).")]
        public double? GflopsPerCore { get; set; }

        /// <inheritdoc />
        public override ValidationResult Validate()
        {
            if (Limit is < 1)
                return ValidationResult.Error("--limit must be at least 1.");
            if (ImageSize is { } size && size != 224 && !NoMlNet)
                return ValidationResult.Error("ML.NET's ResNet18 featurizer runs at 224 px only: add --no-mlnet to bench another size.");
            if (GflopsPerCore is { } gflops && !(gflops > 0 && double.IsFinite(gflops)))
                return ValidationResult.Error("--gflops-per-core must be positive.");
            if (Rounds < 1)
                return ValidationResult.Error("--rounds must be at least 1.");
            return base.Validate();
        }
    }

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <inheritdoc />
    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        if (!Directory.Exists(settings.Folder))
            throw new DirectoryNotFoundException($"Image folder '{settings.Folder}' does not exist.");
        var benchmark = new FeaturizationBenchmarkSettings
        {
            Limit = settings.Limit,
            RunMlNet = !settings.NoMlNet,
            Rounds = settings.Rounds,
            Engine = settings.ToOptions(),
            GflopsPerCore = settings.GflopsPerCore,
        };
        Action<string>? log = settings.Json ? null : line => AnsiConsole.MarkupLine($"[grey]{Markup.Escape(line)}[/]");
        var report = FeaturizationBenchmark.Run(settings.Folder, benchmark, log);
        if (settings.Json)
        {
            Console.Out.WriteLine(JsonSerializer.Serialize(report, Json));
            return 0;
        }
        AnsiConsole.Write(Render(report));
        return 0;
    }

    /// <summary>The report as a console table plus summary lines.</summary>
    /// <param name="report">A benchmark report.</param>
    public static Rows Render(FeaturizationBenchmarkReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var table = new Table().Border(TableBorder.Rounded)
            .AddColumn("phase").AddColumn(new TableColumn("images/s").RightAligned()).AddColumn(new TableColumn("seconds").RightAligned())
            .AddColumn(new TableColumn("CPU ms/image").RightAligned())
            .AddColumn(new TableColumn("cached").RightAligned()).AddColumn(new TableColumn("failed").RightAligned())
            .AddColumn(new TableColumn("RSS at start").RightAligned()).AddColumn(new TableColumn(report.PeakPerPhase ? "peak RSS" : "peak RSS (process)").RightAligned());
        foreach (var p in report.Phases)
            table.AddRow(Markup.Escape(p.Name), $"{p.ImagesPerSecond:0.0}", $"{p.Seconds:0.00}", $"{p.CpuMillisecondsPerImage:0.0}", $"{p.FromCache:N0}", $"{p.Failed:N0}",
                Mib(p.StartRssBytes), Mib(p.PeakRssBytes));
        var lines = new List<Spectre.Console.Rendering.IRenderable>
        {
            new Markup($"[bold]{report.Images:N0}[/] images from {Markup.Escape(report.Folder)} at {report.ImageSize} px; " +
                $"{report.Cores} cores, batch {report.BatchSize}, {report.DecodeThreads} decode and {report.InferenceThreads} inference thread(s); " +
                $"ML.NET and uncached engine interleaved in {report.Rounds} round(s) (their memory columns are shared); " +
                $"engine graph: {(report.OptimizedGraph ? "optimised" : "plain")}, resize: {(report.FastResize ? "C#, bit-identical to SkiaSharp" : "SkiaSharp")}"),
            table,
        };
        if (report.Ratio is { } ratio)
            lines.Add(new Markup($"engine / ML.NET: [bold]{ratio:0.00}×[/]   (max |Δ feature| {report.MaxAbsDifference:0.###e+0})"));
        lines.Add(new Markup($"engine at [bold]{report.ShareOfCpuLimit:P0}[/] of the plain network's CPU limit ({report.CpuLimitImagesPerSecond:0.0} images/s at {report.GflopsPerCore:0.0} GFLOP/s per core, {(report.GflopsMeasured ? "measured here" : "given")}; the optimised graph needs fewer multiplications, so it can pass 100 %); " +
            $"from CPU time, {report.Cores} dedicated cores would give {report.CpuBoundImagesPerSecond:0.0} images/s ({report.CpuBoundImagesPerSecond / report.CpuLimitImagesPerSecond:P0})"));
        if (report.CpuRatio is { } cpuRatio)
            lines.Add(new Markup($"CPU time per image, ML.NET / engine: [bold]{cpuRatio:0.00}×[/]"));
        if (report.ColdCache.RssTrace.Count > 0)
            lines.Add(new Markup("RSS during the cold-cache run (images done: RSS): " +
                string.Join(" · ", report.ColdCache.RssTrace.Select(r => $"{r.Done:N0}: {Mib(r.RssBytes)}"))));
        if (report.LoadAverageAtStart is { } before && report.LoadAverageAtEnd is { } after)
            lines.Add(new Markup($"load average {before:0.0} → {after:0.0} on {report.Cores} cores" +
                (Math.Max(before, after) > report.Cores ? " [yellow](other processes competed for the CPU: compare the ratio, not absolute rates)[/]" : "")));
        lines.Add(new Markup($"cached re-run: [bold]{report.CachedSpeedup:0.0}×[/] faster than the first run"));
        return new Rows(lines);
    }

    private static string Mib(long bytes) => $"{bytes / (1024.0 * 1024.0):0} MiB";
}
