using System.ComponentModel;
using MLTransfer.Backbones;
using MLTransfer.Benchmarks;
using MLTransfer.Cli.Commands.Train;
using MLTransfer.Featurization;
using MLTransfer.Data;
using MLTransfer.Techniques.MultiTask;
using MLTransfer.Torch.Benchmarks;
using MLTransfer.Torch.MultiTask;
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

    /// <summary>Compare fine-tuned models instead of frozen ones.</summary>
    [CommandOption("--fine-tune")]
    [Description("Compare a fine-tuned multi-task model with fine-tuned single-task models (TorchSharp; same budget and split).")]
    public bool FineTune { get; set; }

    /// <summary>Fine-tuning: epochs.</summary>
    [CommandOption("--epochs")]
    [Description("With --fine-tune: epochs. Default 4.")]
    [DefaultValue(4)]
    public int Epochs { get; set; } = 4;

    /// <summary>Fine-tuning: head-only epochs.</summary>
    [CommandOption("--unfreeze-after")]
    [Description("With --fine-tune: heads-only epochs. Default 1.")]
    [DefaultValue(1)]
    public int UnfreezeAfter { get; set; } = 1;

    /// <summary>Fine-tuning: learning rate.</summary>
    [CommandOption("--learning-rate")]
    [Description("With --fine-tune: peak learning rate of the heads. Default 0.001.")]
    [DefaultValue(1e-3)]
    public double LearningRate { get; set; } = 1e-3;

    /// <summary>Fine-tuning: loss weighting.</summary>
    [CommandOption("--loss-weighting")]
    [Description("With --fine-tune: uncertainty (default), equal or gradnorm.")]
    [DefaultValue("uncertainty")]
    public string LossWeighting { get; set; } = "uncertainty";

    /// <summary>Fine-tuning: training images.</summary>
    [CommandOption("--train-limit")]
    [Description("With --fine-tune: train on at most this many images (seeded random subset).")]
    public int? TrainLimit { get; set; }

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
        if (settings.FineTune)
            return FineTuned(console, settings, manifest);
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

    private static int FineTuned(IAnsiConsole console, BenchMultiTaskSettings settings, ImageManifest manifest)
    {
        var options = new MultiTaskFineTuningOptions
        {
            Backbone = Backbone.Resolve(settings.Backbone), ImageSize = settings.ImageSize ?? 64, Epochs = settings.Epochs, UnfreezeAfterEpochs = settings.UnfreezeAfter,
            LearningRate = settings.LearningRate, Seed = settings.Seed, Weighting = MultiTaskFineTuningRunner.Weighting(settings.LossWeighting),
            MetricsCallback = m => RunnerSupport.EpochLine(console, m),
        };
        MultiTaskBenchmarkResult result;
        using (var scratch = IO.ScratchFolder.Create())
            result = MultiTaskFineTuningBenchmark.Run(manifest, options, settings.TestFraction, settings.TrainLimit, settings.Work ?? scratch.Path,
                line => console.MarkupLineInterpolated($"[grey]{DateTime.UtcNow:HH:mm:ss} {line}[/]"));
        var heading = $"## Fine-tuned: multi-task vs single-task fine-tuning\n\n{options.Backbone!.Name} fine-tuned with TorchSharp at {options.ImageSize} px, {options.Epochs} epochs " +
            $"({options.UnfreezeAfterEpochs} heads-only), batch {options.BatchSize}, AdamW one-cycle, peak LR {options.LearningRate} (backbone ×{options.BackboneLearningRateFactor}), " +
            $"{options.ValidationFraction:P0} validation with early stopping on the mean task score (patience {options.EarlyStoppingPatience}), BatchNorm {options.BatchNorm}. " +
            $"Multi-task loss weighting: {options.Weighting}. Single-task models: the same trainer with one task. Machine: {Environment.ProcessorCount} CPU cores, no GPU. Run {DateTime.UtcNow:yyyy-MM-dd}.";
        var command = "mltransfer bench multi-task " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1).SkipWhile(a => a != "multi-task").Skip(1)
            .Select(a => a.Contains(' ') ? $"\"{a}\"" : a));
        var markdown = MultiTaskBenchmark.Markdown(result, heading, command);
        if (settings.Output is not null)
            File.WriteAllText(settings.Output, markdown);
        console.WriteLine(markdown);
        return result.Rows.All(r => r.WithinTarget) ? 0 : 3;
    }
}
