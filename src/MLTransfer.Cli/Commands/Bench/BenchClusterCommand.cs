using System.ComponentModel;
using System.Globalization;
using System.Text.Json;
using MLTransfer.Cluster.Benchmarks;
using MLTransfer.Cluster.Hosting;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MLTransfer.Cli.Commands.Bench;

/// <summary>
/// <c>mltransfer bench cluster &lt;folder&gt;</c>: the same images on the plain engine (1 and 2 cores) and on a cluster on
/// this box (1 silo × 1 core, 2 silos × 1 core, 2 silos with one killed at 50 %), or with <c>--simulate N</c> many
/// in-process silos with a fake worker, to see what the coordinator does at scale.
/// </summary>
public sealed class BenchClusterCommand : Command<BenchClusterCommand.Settings>
{
    /// <summary>Arguments of <see cref="BenchClusterCommand"/>.</summary>
    public sealed class Settings : CommonSettings
    {
        /// <summary>The image folder.</summary>
        [CommandArgument(0, "[folder]")]
        [Description("Image folder (one sub-folder per class, or images directly inside).")]
        public string? Folder { get; set; }

        /// <summary>Images to use.</summary>
        [CommandOption("--images <N>")]
        [Description("Use the first N images. Default 2000.")]
        [DefaultValue(2000)]
        public int Images { get; set; } = 2000;

        /// <summary>Image size.</summary>
        [CommandOption("--image-size <PIXELS>")]
        [Description("Square image size. Default 224.")]
        [DefaultValue(224)]
        public int ImageSize { get; set; } = 224;

        /// <summary>Shard size.</summary>
        [CommandOption("--shard-size <N>")]
        [Description("Images per shard. Default 50 (with --simulate: 20).")]
        public int? ShardSize { get; set; }

        /// <summary>Redis port.</summary>
        [CommandOption("--redis-port <PORT>")]
        [Description("Loopback port for the benchmark's own redis-server. Default 6391.")]
        [DefaultValue(6391)]
        public int RedisPort { get; set; } = 6391;

        /// <summary>Simulated silos.</summary>
        [CommandOption("--simulate <SILOS>")]
        [Description("Instead: run this many silos in this process with a fake worker (sleeps per image) against a real redis-server.")]
        public int? Simulate { get; set; }

        /// <summary>Fake images per simulated silo.</summary>
        [CommandOption("--images-per-silo <N>")]
        [Description("With --simulate: fake images per silo. Default 400.")]
        [DefaultValue(400)]
        public int ImagesPerSilo { get; set; } = 400;

        /// <summary>JSON output.</summary>
        [CommandOption("--json")]
        [Description("Print the result as JSON.")]
        public bool Json { get; set; }

        /// <inheritdoc />
        public override ValidationResult Validate()
        {
            if (Simulate is null && (Folder is null || !Directory.Exists(Folder)))
                return ValidationResult.Error($"Image folder '{Folder}' does not exist.");
            if (Simulate is < 1 or > 100)
                return ValidationResult.Error("--simulate takes 1 to 100 silos (ports 11100-11199).");
            if (Images < 2 || ImagesPerSilo < 1 || ShardSize is < 1)
                return ValidationResult.Error("--images, --images-per-silo and --shard-size must be positive.");
            return ValidationResult.Success();
        }
    }

    /// <inheritdoc />
    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        var console = CliApp.Ui(settings.Json);
        var scratch = Path.Combine(Path.GetTempPath(), "mltransfer-bench-cluster-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(scratch);
        try
        {
            if (settings.Simulate is { } silos)
            {
                var simulation = ClusterSimulation.RunAsync(silos, settings.ImagesPerSilo, settings.ShardSize ?? 20, settings.RedisPort, scratch,
                    line => console.MarkupLineInterpolated($"[grey]{line}[/]")).GetAwaiter().GetResult();
                if (settings.Json)
                    Console.Out.WriteLine(JsonSerializer.Serialize(simulation));
                else
                    console.MarkupLine(Markup.Escape(simulation.ToString()));
                return 0;
            }
            var images = FeaturizeCommand.ListImages(settings.Folder!, AnsiConsole.Console).Take(settings.Images).ToList();
            var result = ClusterBenchmark.RunAsync(images, new ClusterBenchmarkOptions
            {
                Cli = LocalProcesses.CliIn(AppContext.BaseDirectory),
                ImageSize = settings.ImageSize,
                ShardSize = settings.ShardSize ?? 50,
                RedisPort = settings.RedisPort,
                Scratch = scratch,
                Log = line => console.MarkupLineInterpolated($"[grey]{line}[/]"),
            }).GetAwaiter().GetResult();
            if (settings.Json)
            {
                Console.Out.WriteLine(JsonSerializer.Serialize(result));
                return 0;
            }
            var table = new Table().AddColumns("run", "cores", "s", "images/s", "note");
            foreach (var run in result.Runs)
                table.AddRow(Markup.Escape(run.Name), run.Cores.ToString(CultureInfo.InvariantCulture), run.Seconds.ToString("0.0", CultureInfo.InvariantCulture),
                    run.ImagesPerSecond.ToString("0.0", CultureInfo.InvariantCulture), Markup.Escape(run.Note));
            console.Write(table);
            console.MarkupLineInterpolated($"scaling 1 → 2 silos: [bold]{result.Scaling:0.00}×[/] (target ≥ 1.8)");
            console.MarkupLineInterpolated($"overhead vs the plain engine: [bold]{result.OverheadTwoCores:+0.0%;-0.0%}[/] on 2 cores (target ≤ 10 %), {result.OverheadOneCore:+0.0%;-0.0%} on 1 core");
            console.MarkupLineInterpolated($"one of two silos killed at 50 %: [bold]{result.KillRatio:0.00}×[/] the undisturbed time (target ≤ 1.7), output {(result.KillComplete ? "complete" : "INCOMPLETE")}");
            return result.KillComplete ? 0 : 1;
        }
        finally
        {
            try { Directory.Delete(scratch, recursive: true); } catch (IOException) { }
        }
    }
}
