using System.ComponentModel;
using System.Text.Json;
using MLTransfer.Benchmarks;
using MLTransfer.Data;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MLTransfer.Cli.Commands.Bench;

/// <summary>Arguments of <c>mltransfer bench quantize</c>.</summary>
public sealed class BenchQuantizeSettings : CalibrationSettings
{
    /// <summary>Images for the speed comparison.</summary>
    [CommandArgument(0, "[folder]")]
    [Description("Images to time the float and int8 engines on (and calibrate on). Omit with --no-speed.")]
    public string? Folder { get; set; }

    /// <summary>Images timed.</summary>
    [CommandOption("--limit <N>")]
    [Description("Images timed (the first in path order). Default: 500.")]
    public int Limit { get; set; } = 500;

    /// <summary>Interleaving rounds.</summary>
    [CommandOption("--rounds <N>")]
    [Description("Chunks the engines run on in turn, alternating which goes first. Default: 4.")]
    public int Rounds { get; set; } = 4;

    /// <summary>Also time the plain float graph.</summary>
    [CommandOption("--plain")]
    [Description("Also time the float engine on the plain graph (no Winograd rewrite).")]
    public bool Plain { get; set; }

    /// <summary>Profile batches.</summary>
    [CommandOption("--profile <BATCHES>")]
    [Description("Profile each engine's graph with ONNX Runtime's profiler over this many batches of 8 and print time per operator.")]
    public int Profile { get; set; }

    /// <summary>Skip the speed phases.</summary>
    [CommandOption("--no-speed")]
    [Description("Skip the speed comparison.")]
    public bool NoSpeed { get; set; }

    /// <summary>Accuracy datasets.</summary>
    [CommandOption("--accuracy <FOLDER>")]
    [Description("Dataset for the accuracy comparison (repeatable): a folder with train/ and test/ class folders, or class folders split 80/20 (stratified, seed 1).")]
    public string[] Accuracy { get; set; } = [];

    /// <summary>Also train on int8 features.</summary>
    [CommandOption("--train-on-int8")]
    [Description("With --accuracy: also train a head on the int8 engine's features and score that model's int8 .zip (int8 throughout, as `train --int8`).")]
    public bool TrainOnInt8 { get; set; }

    /// <summary>Image size.</summary>
    [CommandOption("--image-size <PIXELS>")]
    [Description("Square image size. Default: 224.")]
    public int ImageSize { get; set; } = 224;

    /// <summary>JSON output.</summary>
    [CommandOption("--json")]
    [Description("Print the report as JSON.")]
    public bool Json { get; set; }

    /// <inheritdoc />
    public override ValidationResult Validate()
    {
        if (!NoSpeed && (Folder is null || !Directory.Exists(Folder)))
            return ValidationResult.Error($"Image folder '{Folder}' does not exist (give one, or --no-speed).");
        if (NoSpeed && Accuracy.Length == 0)
            return ValidationResult.Error("Nothing to do: --no-speed without --accuracy.");
        if (Accuracy.FirstOrDefault(a => !Directory.Exists(a)) is { } missing)
            return ValidationResult.Error($"Dataset folder '{missing}' does not exist.");
        if (Limit < 1 || Rounds < 1 || Profile < 0 || ImageSize < 32)
            return ValidationResult.Error("--limit and --rounds must be at least 1, --profile at least 0, --image-size at least 32.");
        return base.Validate();
    }
}

/// <summary>
/// <c>mltransfer bench quantize</c>: images/s of the int8 engine against the float engine's default (interleaved in one
/// run), optional per-operator profiles, and feature-extraction accuracy and model size before and after <c>quantize</c>.
/// </summary>
public sealed class BenchQuantizeCommand : Command<BenchQuantizeSettings>
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase, IncludeFields = true };

    /// <inheritdoc />
    public override int Execute(CommandContext context, BenchQuantizeSettings settings, CancellationToken cancellationToken)
    {
        var console = CliApp.Ui(settings.Json);
        void Log(string line) => console.MarkupLineInterpolated($"[grey]{line}[/]");
        var benchmark = new QuantizationBenchmarkSettings
        {
            Limit = settings.Limit, Rounds = settings.Rounds, IncludePlainGraph = settings.Plain, ImageSize = settings.ImageSize, ProfileBatches = settings.Profile,
            Quantization = settings.ToQuantizationOptions(), TrainOnInt8Features = settings.TrainOnInt8,
        };
        var speed = settings.NoSpeed ? null : QuantizationBenchmark.RunSpeed(settings.Folder!, benchmark, Log);
        var accuracy = new List<QuantizedAccuracy>();
        foreach (var dataset in settings.Accuracy)
        {
            var (train, test) = Split(dataset);
            accuracy.Add(QuantizationBenchmark.RunAccuracy(dataset, train, test, benchmark, Log));
        }
        var report = new QuantizationBenchmarkReport
        {
            ImageSize = settings.ImageSize,
            Speed = speed?.Speed ?? [],
            QuantizeSeconds = speed?.QuantizeSeconds ?? 0,
            GraphBytes = speed?.GraphBytes ?? default,
            Profile = speed?.Profile ?? [],
            Accuracy = accuracy,
            LoadAverage = speed?.LoadAverage ?? default,
        };
        if (settings.Json)
        {
            Console.Out.WriteLine(JsonSerializer.Serialize(report, Json));
            return 0;
        }
        Render(console, report);
        return 0;
    }

    private static (IReadOnlyList<ImageExample> Train, IReadOnlyList<ImageExample> Test) Split(string dataset)
    {
        var options = new ImageFolderOptions { DecodeCheck = false };
        if (Directory.Exists(Path.Combine(dataset, "train")) && Directory.Exists(Path.Combine(dataset, "test")))
            return (ImageFolder.Load(Path.Combine(dataset, "train"), options).Examples, ImageFolder.Load(Path.Combine(dataset, "test"), options).Examples);
        return ImageFolder.StratifiedSplit(ImageFolder.Load(dataset, options).Examples, 0.2, 1);
    }

    private static void Render(IAnsiConsole console, QuantizationBenchmarkReport report)
    {
        console.MarkupLineInterpolated($"CPU: {report.CpuFeatures}; {report.Cores} cores; {report.ImageSize} px");
        if (report.Speed.Count > 0)
        {
            var table = new Table().Border(TableBorder.Rounded).AddColumn("engine").AddColumn(new TableColumn("images/s").RightAligned())
                .AddColumn(new TableColumn("CPU ms/image").RightAligned()).AddColumn(new TableColumn("seconds").RightAligned());
            foreach (var s in report.Speed)
                table.AddRow(Markup.Escape(s.Name), $"{s.ImagesPerSecond:0.0}", $"{s.CpuMillisecondsPerImage:0.0}", $"{s.Seconds:0.0}");
            console.Write(table);
            console.MarkupLineInterpolated($"int8 / fp32 engine: [bold]{report.Speedup:0.00}×[/]   (quantising took {report.QuantizeSeconds:0.0} s; graphs {report.GraphBytes.Float / 1048576.0:0.0} → {report.GraphBytes.Int8 / 1048576.0:0.0} MiB; load average {report.LoadAverage.Start:0.0} → {report.LoadAverage.End:0.0})");
        }
        foreach (var engine in report.Profile.GroupBy(o => o.Engine))
        {
            var table = new Table().Border(TableBorder.Rounded).Title($"ONNX Runtime profile: {Markup.Escape(engine.Key)}")
                .AddColumn("operator (as run)").AddColumn(new TableColumn("nodes").RightAligned())
                .AddColumn(new TableColumn("ms per batch of 8").RightAligned()).AddColumn(new TableColumn("share").RightAligned());
            foreach (var o in engine.Where(o => o.Share >= 0.005))
                table.AddRow(Markup.Escape(o.Operator), $"{o.Nodes}", $"{o.Milliseconds:0.0}", $"{o.Share:P1}");
            table.AddRow("[grey]all nodes[/]", $"{engine.Sum(o => o.Nodes)}", $"{engine.Sum(o => o.Milliseconds):0.0}", "100 %");
            console.Write(table);
        }
        if (report.Accuracy.Count > 0)
        {
            var table = new Table().Border(TableBorder.Rounded).AddColumn("dataset").AddColumn(new TableColumn("train / test").RightAligned())
                .AddColumn(new TableColumn("fp32 acc").RightAligned()).AddColumn(new TableColumn("int8 acc").RightAligned())
                .AddColumn(new TableColumn("loss (points)").RightAligned()).AddColumn(new TableColumn("same prediction").RightAligned())
                .AddColumn(new TableColumn(".zip fp32 → int8").RightAligned());
            var trained = report.Accuracy.Any(a => a.Int8Trained is not null);
            if (trained)
                table.AddColumn(new TableColumn("trained on int8: acc").RightAligned()).AddColumn(new TableColumn("loss (points)").RightAligned());
            foreach (var a in report.Accuracy)
            {
                string[] cells = [Markup.Escape(a.Dataset), $"{a.Train:N0} / {a.Test:N0}", $"{a.Float:P2}", $"{a.Int8:P2}", $"{a.LossPoints:0.00}", $"{a.Agreement:P1}",
                    $"{a.FloatBytes / 1048576.0:0.0} → {a.Int8Bytes / 1048576.0:0.0} MiB"];
                table.AddRow(trained ? [.. cells, a.Int8Trained is { } t ? $"{t:P2}" : "—", a.Int8TrainedLossPoints is { } l ? $"{l:0.00}" : "—"] : cells);
            }
            console.Write(table);
        }
    }
}
