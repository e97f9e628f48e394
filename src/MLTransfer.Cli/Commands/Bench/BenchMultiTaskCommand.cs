using System.ComponentModel;
using MLTransfer.Backbones;
using MLTransfer.Benchmarks;
using MLTransfer.Cli.Commands.Train;
using MLTransfer.Featurization;
using MLTransfer.Techniques.MultiTask;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MLTransfer.Cli.Commands.Bench;

/// <summary>Arguments of <c>mltransfer bench multi-task</c>.</summary>
public sealed class BenchMultiTaskSettings : CommonSettings
{
    /// <summary>The manifest.</summary>
    [CommandArgument(0, "<manifest>")]
    [Description("Manifest CSV: path,<task1>,<task2>,... (paths relative to the CSV).")]
    public string Manifest { get; set; } = "";

    /// <summary>Tasks.</summary>
    [CommandOption("--tasks")]
    [Description("Comma-separated tasks, optionally with :regression or :classification (default: all, kinds inferred).")]
    public string? Tasks { get; set; }

    /// <summary>Backbone.</summary>
    [CommandOption("--backbone")]
    [Description("resnet18 (default) or the path of a backbone spec .json.")]
    [DefaultValue("resnet18")]
    public string Backbone { get; set; } = "resnet18";

    /// <summary>Image size.</summary>
    [CommandOption("--image-size")]
    [Description("Square input size (default: the backbone's).")]
    public int? ImageSize { get; set; }

    /// <summary>Test share.</summary>
    [CommandOption("--test-fraction")]
    [Description("Share of the images held out for testing. Default 0.2.")]
    [DefaultValue(0.2)]
    public double TestFraction { get; set; } = 0.2;

    /// <summary>Seed.</summary>
    [CommandOption("--seed")]
    [DefaultValue(1)]
    public int Seed { get; set; } = 1;

    /// <summary>Markdown output.</summary>
    [CommandOption("--output")]
    [Description("Write the Markdown table to this file.")]
    public string? Output { get; set; }

    /// <summary>Model folder.</summary>
    [CommandOption("--work")]
    [Description("Folder for the trained models (default: a temporary folder).")]
    public string? Work { get; set; }
}

/// <summary>
/// <c>mltransfer bench multi-task</c>: one multi-task model vs one single-task model per task, same backbone, split and
/// heads; per-task accuracy (MAE for regression) and inference cost (backbone passes, wall time), in one run. The
/// bottleneck cache is off so every fit pays for its own featurisation.
/// </summary>
public sealed class BenchMultiTaskCommand : Command<BenchMultiTaskSettings>
{
    /// <inheritdoc />
    public override int Execute(CommandContext context, BenchMultiTaskSettings settings, CancellationToken cancellationToken)
    {
        var console = AnsiConsole.Console;
        var manifest = MultiTaskRunner.LoadManifest(console, settings.Manifest, null, settings.Tasks, strict: false);
        var backbone = Backbone.Resolve(settings.Backbone);
        var options = new MultiTaskOptions { Backbone = backbone, Engine = new FeaturizerOptions { ImageSize = settings.ImageSize, UseCache = false } };
        var work = settings.Work ?? Path.Combine(Path.GetTempPath(), "mltransfer", "bench-multi-task");
        var result = MultiTaskBenchmark.Run(manifest, options, settings.TestFraction, settings.Seed, work,
            line => console.MarkupLineInterpolated($"[grey]{DateTime.UtcNow:HH:mm:ss} {line}[/]"));
        var size = settings.ImageSize ?? backbone.InputSize;
        var heading = $"# Multi-task vs single-task models\n\nData: `{Path.GetFileName(manifest.Root)}` ({manifest.Examples.Count} images; tasks "
            + string.Join(", ", manifest.Tasks.Select(t => $"{t.Name} ({t.Kind.ToString().ToLowerInvariant()})"))
            + $"). Frozen {backbone.Name} backbone at {size} px; classification heads: ML.NET L-BFGS maximum entropy; regression heads: ridge (λ by 5-fold CV). "
            + $"Machine: {Environment.ProcessorCount} CPU cores, no GPU. Run {DateTime.UtcNow:yyyy-MM-dd}.";
        var command = "mltransfer bench multi-task " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1).SkipWhile(a => a != "multi-task").Skip(1)
            .Select(a => a.Contains(' ') ? $"\"{a}\"" : a));
        var markdown = MultiTaskBenchmark.Markdown(result, heading, command);
        if (settings.Output is not null)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(settings.Output))!);
            File.WriteAllText(settings.Output, markdown);
            console.MarkupLineInterpolated($"[green]Wrote[/] {Path.GetFullPath(settings.Output)}");
        }
        console.WriteLine(markdown);
        return result.Rows.All(r => r.WithinTarget) && result.MultiTaskPasses == 1 ? 0 : 3;
    }
}
