using System.ComponentModel;
using System.Globalization;
using System.Text;
using System.Text.Json;
using MLTransfer.Diagnostics;
using MLTransfer.Torch.Benchmarks;
using MLTransfer.Torch.FineTuning;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MLTransfer.Cli.Commands.Bench;

/// <summary>Arguments of <c>mltransfer bench fine-tuning</c>; fine-tuning options left out keep the <c>train</c> defaults.</summary>
public sealed class BenchFineTuningSettings : BenchSplitSettings, IFineTuningSettings
{
    /// <summary>Image size.</summary>
    [CommandOption("--image-size")]
    [Description("Square input size in pixels (default: the backbone's, 224 for resnet18).")]
    public int? ImageSize { get; set; }

    /// <summary>Epochs.</summary>
    [CommandOption("--epochs")]
    [Description("Epochs (default 10).")]
    public int? Epochs { get; set; }

    /// <summary>Batch size.</summary>
    [CommandOption("--batch-size")]
    [Description("Images per gradient step (default 32).")]
    public int? BatchSize { get; set; }

    /// <summary>Learning rate.</summary>
    [CommandOption("--learning-rate")]
    [Description("Peak learning rate of the one-cycle schedule (default 0.001).")]
    public double? LearningRate { get; set; }

    /// <summary>Head-only epochs.</summary>
    [CommandOption("--unfreeze-after")]
    [Description("Epochs training the head only before the trained blocks unfreeze (default 1).")]
    public int? UnfreezeAfter { get; set; }

    /// <summary>Early-stopping patience.</summary>
    [CommandOption("--patience")]
    [Description("Epochs without a better validation accuracy before training stops (default 3).")]
    public int? Patience { get; set; }

    /// <summary>Top-blocks mode.</summary>
    [CommandOption("--top-blocks-only")]
    [Description("Top blocks on cached lower-block outputs (the default; explicit).")]
    public bool TopBlocksOnly { get; set; }

    /// <summary>Whole-network mode.</summary>
    [CommandOption("--whole-network")]
    [Description("Fine-tune every block on streamed images instead of the top blocks.")]
    public bool WholeNetwork { get; set; }

    /// <summary>Trained top blocks.</summary>
    [CommandOption("--top-blocks")]
    [Description("Top residual blocks trained in top-blocks mode (default 2).")]
    public int? TopBlocks { get; set; }

    /// <summary>Views per image in top-blocks mode.</summary>
    [CommandOption("--top-block-views")]
    [Description("Cached views per training image in top-blocks mode: the exact one and N-1 augmented ones (default 3).")]
    public int? TopBlockViews { get; set; }

    /// <summary>Mirror images of the views in top-blocks mode.</summary>
    [CommandOption("--top-block-mirrors")]
    [Description("Also cache the mirror image of every view in top-blocks mode, so each epoch trains on an image or its mirror (default off).")]
    public bool TopBlockMirrors { get; set; }

    /// <summary>Mixup's α.</summary>
    [CommandOption("--mixup")]
    [Description("Mixup α of each training batch (0: off, the default).")]
    public double? Mixup { get; set; }

    /// <summary>CutMix's α.</summary>
    [CommandOption("--cutmix")]
    [Description("CutMix α of each training batch (0: off, the default).")]
    public double? CutMix { get; set; }

    /// <summary>Weight decay.</summary>
    [CommandOption("--weight-decay")]
    [Description("Weight decay (default 0.0001).")]
    public double? WeightDecay { get; set; }

    /// <summary>The decay of the weights' moving average.</summary>
    [CommandOption("--ema-decay")]
    [Description("Per-step decay of the weights' moving average, which is validated and exported (0: off, the default).")]
    public double? EmaDecay { get; set; }

    /// <summary>Test-time flip.</summary>
    [CommandOption("--test-time-flip")]
    [Description("The fine-tuned model averages the features of each test image and of its mirror image.")]
    public bool TestTimeFlip { get; set; }

    /// <summary>Ensemble size.</summary>
    [CommandOption("--ensemble")]
    [Description("Networks trained with different seeds and averaged (1, the default: one).")]
    public int? Ensemble { get; set; }

    /// <summary>Ensemble folds.</summary>
    [CommandOption("--ensemble-folds")]
    [Description("Each ensemble member holds out its own validation fold, so together they train on every image.")]
    public bool EnsembleFolds { get; set; }

    /// <summary>Full-precision block cache.</summary>
    [CommandOption("--fp32-block-cache")]
    [Description("Cache lower-block outputs as 32-bit floats instead of 16-bit (to measure the difference).")]
    public bool Fp32BlockCache { get; set; }

    /// <summary>Cache folder.</summary>
    [CommandOption("--cache-dir")]
    [Description("Folder of the bottleneck and block caches (default: the user cache folder).")]
    public string? CacheDir { get; set; }

    /// <summary>Skip the peer.</summary>
    [CommandOption("--no-feature-extraction")]
    [Description("Do not train the feature-extraction peer.")]
    public bool NoFeatureExtraction { get; set; }

    /// <summary>Markdown output.</summary>
    [CommandOption("--output")]
    [Description("Append the result as a Markdown table to this file.")]
    public string? Output { get; set; }

    /// <inheritdoc />
    public override ValidationResult Validate() => Check.First(FineTuningSettings.Problem(this));

}

/// <summary>
/// <c>mltransfer bench fine-tuning</c>: fine-tuning (the <c>train</c> defaults unless told otherwise) against feature
/// extraction on the same split, both scored through their reloaded <c>.zip</c>, with training throughput and wall times.
/// </summary>
public sealed class BenchFineTuningCommand : Command<BenchFineTuningSettings>
{
    /// <inheritdoc />
    public override int Execute(CommandContext context, BenchFineTuningSettings settings, CancellationToken cancellationToken)
    {
        var console = CliApp.Ui(settings.Json);
        var (train, test) = settings.LoadSplit();
        var options = settings.ToOptions();
        options.EarlyStoppingPatience = settings.Patience ?? options.EarlyStoppingPatience;
        options.TopBlocks = settings.TopBlocks ?? options.TopBlocks;
        options.HalfPrecisionBlockCache = !settings.Fp32BlockCache;
        options.MetricsCallback = m => console.MarkupLineInterpolated(
            $"[grey]{(m.Members > 1 ? $"member {m.Member}/{m.Members}, " : "")}epoch {m.Epoch}/{m.Epochs} {m.Phase}: loss {m.TrainLoss:F3}, train acc {m.TrainAccuracy:F3}, val acc {m.ValidationScore:F3}, {m.ImagesPerSecond:F1} img/s, elapsed {m.Elapsed:hh\\:mm\\:ss}[/]");
        console.MarkupLineInterpolated($"{train.Count} training and {test.Count} test images, {train.Select(e => e.Label).Distinct().Count()} classes; load average {ProcessMemory.LoadAverage():F1} on {Environment.ProcessorCount} cores");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        IReadOnlyList<FineTuningBenchmarkResult> results;
        using (var work = IO.ScratchFolder.Create())
            results = FineTuningBenchmark.Run(train, test, options, !settings.NoFeatureExtraction, work.Path, line => console.MarkupLineInterpolated($"[grey]{line}[/]"));
        var cpuMinutes = System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime.TotalMinutes;
        if (settings.Json)
        {
            Console.Out.WriteLine(JsonSerializer.Serialize(new
            {
                train = train.Count, test = test.Count, wall_minutes = clock.Elapsed.TotalMinutes, cpu_minutes = cpuMinutes,
                results = results.Select(r => new { r.Name, r.MicroAccuracy, r.MacroAccuracy, r.LogLoss, r.TrainSeconds, train_cpu_minutes = r.TrainCpuSeconds / 60, r.TestSeconds, images_per_second = r.BodyImagesPerSecond }),
            }));
            return 0;
        }
        var table = new Table().AddColumns("Pipeline", "Test accuracy", "Macro", "Log-loss", "Fit (s)", "Fit CPU (min)", "Training img/s");
        foreach (var r in results)
            table.AddRow(Markup.Escape(r.Name), r.MicroAccuracy.ToString("F4", CultureInfo.InvariantCulture), r.MacroAccuracy.ToString("F4", CultureInfo.InvariantCulture),
                r.LogLoss.ToString("F3", CultureInfo.InvariantCulture), r.TrainSeconds.ToString("F0", CultureInfo.InvariantCulture),
                (r.TrainCpuSeconds / 60).ToString("F1", CultureInfo.InvariantCulture),
                double.IsNaN(r.BodyImagesPerSecond) ? "-" : r.BodyImagesPerSecond.ToString("F1", CultureInfo.InvariantCulture));
        console.Write(table);
        var gain = results.Count > 1 ? $"; fine-tuning gain {100 * (results[0].MicroAccuracy - results[1].MicroAccuracy):+0.0;-0.0} points" : "";
        console.MarkupLineInterpolated($"Wall time {clock.Elapsed:hh\\:mm\\:ss}, CPU time {cpuMinutes:F1} min{gain}");
        if (settings.Output is { } output)
            File.AppendAllText(output, Markdown(settings, train.Count, test.Count, results, clock.Elapsed, cpuMinutes));
        return 0;
    }

    private static string Markdown(BenchFineTuningSettings s, int train, int test, IReadOnlyList<FineTuningBenchmarkResult> results, TimeSpan wall, double cpuMinutes)
    {
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"\n`{s.Train}` ({train} training images, {test} test images), wall {wall:hh\\:mm\\:ss}, CPU {cpuMinutes:F1} min\n");
        text.AppendLine("| pipeline | test accuracy | macro | log-loss | fit (s) | fit CPU (min) | training img/s |");
        text.AppendLine("| --- | --- | --- | --- | --- | --- | --- |");
        foreach (var r in results)
            text.AppendLine(CultureInfo.InvariantCulture, $"| {r.Name} | {r.MicroAccuracy:F4} | {r.MacroAccuracy:F4} | {r.LogLoss:F3} | {r.TrainSeconds:F0} | {r.TrainCpuSeconds / 60:F1} | {(double.IsNaN(r.BodyImagesPerSecond) ? "-" : r.BodyImagesPerSecond.ToString("F1", CultureInfo.InvariantCulture))} |");
        return text.ToString();
    }
}
