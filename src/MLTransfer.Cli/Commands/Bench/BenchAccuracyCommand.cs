using System.ComponentModel;
using System.Text.Json;
using MLTransfer.Benchmarks;
using MLTransfer.Data;
using MLTransfer.Featurization;
using MLTransfer.Techniques.FeatureExtraction;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MLTransfer.Cli.Commands.Bench;

/// <summary>Arguments of benchmarks that train on one labelled folder and test on a held-out split or another folder.</summary>
public class BenchSplitSettings : CommonSettings
{
    /// <summary>Training folder.</summary>
    [CommandArgument(0, "<train-folder>")]
    [Description("Labelled training images.")]
    public string Train { get; set; } = "";

    /// <summary>Test folder.</summary>
    [CommandOption("--test")]
    [Description("Labelled test images; without it a stratified 20% of the training folder is held out.")]
    public string? Test { get; set; }

    /// <summary>Classes.</summary>
    [CommandOption("--classes")]
    [Description("Comma-separated classes to keep (default: all).")]
    public string? Classes { get; set; }

    /// <summary>Training images per class.</summary>
    [CommandOption("--per-class")]
    [Description("Training images per class (first in file-name order).")]
    public int? PerClass { get; set; }

    /// <summary>Seed.</summary>
    [CommandOption("--seed")]
    [Description("Seed of the split, shuffles and initialisation (default 1).")]
    [DefaultValue(1)]
    public int Seed { get; set; } = 1;

    /// <summary>JSON output.</summary>
    [CommandOption("--json")]
    [Description("Print the result as JSON instead of a table.")]
    public bool Json { get; set; }

    /// <summary>The training and test images these settings describe.</summary>
    public (IReadOnlyList<ImageExample> Train, IReadOnlyList<ImageExample> Test) LoadSplit()
    {
        var classes = Classes?.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).ToHashSet();
        return AccuracyBenchmark.TrainAndTest(Train, Test, classes, PerClass, null, Seed);
    }
}

/// <summary>Arguments of <c>mltransfer bench accuracy</c>.</summary>
public sealed class BenchAccuracySettings : BenchSplitSettings
{
}

/// <summary><c>mltransfer bench accuracy</c>: plain ML.NET vs MLTransfer feature extraction on the same split, in one run.</summary>
public sealed class BenchAccuracyCommand : Command<BenchAccuracySettings>
{
    /// <inheritdoc />
    public override int Execute(CommandContext context, BenchAccuracySettings settings, CancellationToken cancellationToken)
    {
        var console = CliApp.Ui(settings.Json);
        var (train, test) = settings.LoadSplit();
        console.MarkupLineInterpolated($"{train.Count} training and {test.Count} test images, {train.Select(e => e.Label).Distinct().Count()} classes");
        var options = new FeatureExtractionOptions { ValidationFraction = 0, Seed = settings.Seed, Engine = new FeaturizerOptions { UseCache = false } };
        var results = AccuracyBenchmark.Run(train, test, options, line => console.MarkupLineInterpolated($"[grey]{line}[/]"));
        if (settings.Json)
        {
            Console.Out.WriteLine(JsonSerializer.Serialize(new { train = train.Count, test = test.Count, results }));
            return 0;
        }
        var table = new Table().AddColumn("Pipeline").AddColumn("Micro-acc").AddColumn("Macro-acc").AddColumn("Log-loss").AddColumn("Fit s").AddColumn("Test s");
        foreach (var r in results)
            table.AddRow(Markup.Escape(r.Name), r.MicroAccuracy.ToString("F4"), r.MacroAccuracy.ToString("F4"), r.LogLoss.ToString("F4"),
                r.TrainSeconds.ToString("F1"), r.TestSeconds.ToString("F1"));
        console.Write(table);
        console.MarkupLineInterpolated($"Fit speed-up vs ML.NET: {results[0].TrainSeconds / results[1].TrainSeconds:F2}x");
        return 0;
    }
}
