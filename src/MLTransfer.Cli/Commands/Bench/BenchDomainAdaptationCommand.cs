using System.ComponentModel;
using System.Globalization;
using MLTransfer.Techniques.DomainAdaptation;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MLTransfer.Cli.Commands;

/// <summary>Arguments of <c>mltransfer bench domain-adaptation</c>.</summary>
public sealed class BenchDomainAdaptationSettings : CommonSettings
{
    /// <summary>Dataset root.</summary>
    [CommandArgument(0, "<data>")]
    [Description("Dataset root with one folder per domain, each with train/ and test/ class folders (e.g. ../shared/data/mnist-usps-domains).")]
    public string Data { get; set; } = "";

    /// <summary>Directions.</summary>
    [CommandOption("--directions")]
    [Description("Comma-separated source:target pairs. Default: mnist:usps,usps:mnist.")]
    [DefaultValue("mnist:usps,usps:mnist")]
    public string Directions { get; set; } = "mnist:usps,usps:mnist";

    /// <summary>Methods.</summary>
    [CommandOption("--methods")]
    [Description("Comma-separated methods (default: all known): source-only, coral, coral-source-to-target, adabn, and the TorchSharp ones when available.")]
    public string? Methods { get; set; }

    /// <summary>Seeds.</summary>
    [CommandOption("--seeds")]
    [Description("Comma-separated seeds for stochastic methods. Default: 0,1,2.")]
    [DefaultValue("0,1,2")]
    public string Seeds { get; set; } = "0,1,2";

    /// <summary>Image size.</summary>
    [CommandOption("--image-size")]
    [Description("Square input size in pixels. Default 64.")]
    [DefaultValue(64)]
    public int ImageSize { get; set; } = 64;

    /// <summary>Epochs of the gradient methods.</summary>
    [CommandOption("--epochs")]
    [Description("Epochs of the gradient methods (dann, mmd, deep-coral and their source-only peers). Default: their options' default.")]
    public int? Epochs { get; set; }

    /// <summary>Vector cache.</summary>
    [CommandOption("--cache-dir")]
    [Description("Folder keeping backbone vectors between runs. Default: bench-vectors/ in the cache folder ($MLTRANSFER_CACHE_DIR, else ~/.cache/mltransfer).")]
    public string? CacheDir { get; set; }

    /// <summary>Score the saved models.</summary>
    [CommandOption("--score-exported")]
    [Description("Score every saved ML.NET model on the test images (slow) instead of the equivalent head on the graph's features.")]
    public bool ScoreExported { get; set; }

    /// <summary>Markdown output.</summary>
    [CommandOption("--output")]
    [Description("Markdown file to write the table to (the table is printed either way).")]
    public string? Output { get; set; }
}

/// <summary><c>mltransfer bench domain-adaptation</c>: the reproducible domain-adaptation benchmark (every method, both directions, vs source-only).</summary>
public sealed class BenchDomainAdaptationCommand : Command<BenchDomainAdaptationSettings>
{
    /// <summary>Methods the benchmark knows: the closed-form ones and the TorchSharp ones.</summary>
    public static List<BenchmarkMethod> Methods { get; } = [.. DomainAdaptationBenchmark.ClosedFormMethods, .. Torch.DomainAdaptation.TorchDomainAdaptationCatalog.BenchmarkMethods];

    /// <inheritdoc />
    public override int Execute(CommandContext context, BenchDomainAdaptationSettings settings, CancellationToken cancellationToken)
    {
        var console = AnsiConsole.Console;
        var directions = settings.Directions.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(d => d.Split(':') is [var s, var t] ? (s, t) : throw new ArgumentException($"Bad direction '{d}': use source:target.")).ToList();
        var wanted = settings.Methods?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var methods = wanted is null ? Methods
            : wanted.Select(w => Methods.FirstOrDefault(m => m.Name == w) ?? throw new ArgumentException(
                $"Unknown method '{w}': use {string.Join(", ", Methods.Select(m => m.Name))}.")).ToList();
        if (settings.Epochs is { } epochs)
            methods = methods.Select(m => m with { Create = (ml, s) => WithEpochs(m.Create(ml, s), epochs) }).ToList();
        var seeds = settings.Seeds.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToList();
        var rows = DomainAdaptationBenchmark.Run(settings.Data, directions, methods, seeds, settings.ImageSize, log: line => console.WriteLine(line),
            vectorCache: settings.CacheDir ?? Path.Combine(IO.CacheLocation.Default, "bench-vectors"),
            exportedModel: settings.ScoreExported);
        var table = DomainAdaptationBenchmark.ToMarkdown(rows);
        console.WriteLine();
        console.WriteLine(table);
        if (settings.Output is { } output)
        {
            AtomicFile.WriteAllText(output, table);
            console.MarkupLineInterpolated($"[green]Wrote[/] {Path.GetFullPath(output)}");
        }
        return 0;
    }

    private static DomainAdaptationEstimator WithEpochs(DomainAdaptationEstimator estimator, int epochs)
    {
        if (estimator.Options is Torch.DomainAdaptation.FeatureAdapterOptions adapter)
            adapter.Epochs = epochs;
        return estimator;
    }
}
