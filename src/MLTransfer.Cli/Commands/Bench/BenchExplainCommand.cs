using System.ComponentModel;
using System.Diagnostics;
using System.Text.Json;
using Microsoft.ML;
using MLTransfer.Benchmarks;
using MLTransfer.Explain;
using MLTransfer.Featurization;
using MLTransfer.Techniques.FeatureExtraction;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MLTransfer.Cli.Commands.Bench;

/// <summary>Arguments of <c>mltransfer bench explain</c>.</summary>
public sealed class BenchExplainSettings : CommonSettings
{
    /// <summary>Training folder.</summary>
    [CommandArgument(0, "<train-folder>")]
    [Description("Labelled training images.")]
    public string Train { get; set; } = "";

    /// <summary>Test folder.</summary>
    [CommandOption("--test")]
    [Description("Labelled test images; without it a stratified 20% of the training folder is held out.")]
    public string? Test { get; set; }

    /// <summary>Training images per class.</summary>
    [CommandOption("--per-class")]
    [Description("Training images per class (first in file-name order; default: all).")]
    public int? PerClass { get; set; }

    /// <summary>Test images per class.</summary>
    [CommandOption("--test-per-class")]
    [Description("Test images per class (first in file-name order; default: all).")]
    public int? TestPerClass { get; set; }

    /// <summary>Image size.</summary>
    [CommandOption("--image-size")]
    [Description("Square input size (default 224: a 7x7 class-activation map).")]
    [DefaultValue(224)]
    public int ImageSize { get; set; } = 224;

    /// <summary>Head.</summary>
    [CommandOption("--head")]
    [Description("lbfgs (default, explained by class-activation maps) or lightgbm (explained by occlusion).")]
    [DefaultValue("lbfgs")]
    public string Head { get; set; } = "lbfgs";

    /// <summary>Deleted share.</summary>
    [CommandOption("--fraction")]
    [Description("Share of each image's pixels deleted (mean colour). Default 0.2.")]
    [DefaultValue(0.2)]
    public double Fraction { get; set; } = 0.2;

    /// <summary>Deletion fill.</summary>
    [CommandOption("--fill")]
    [Description("What deleted pixels become: blur (default: a strongly blurred copy of the image) or mean (the image's mean colour).")]
    [DefaultValue("blur")]
    public string Fill { get; set; } = "blur";

    /// <summary>Seed.</summary>
    [CommandOption("--seed")]
    [DefaultValue(1)]
    public int Seed { get; set; } = 1;

    /// <summary>JSON output.</summary>
    [CommandOption("--json")]
    public bool Json { get; set; }
}

/// <summary>
/// <c>mltransfer bench explain</c>: trains feature extraction on a folder, explains every test image's predicted class and
/// measures faithfulness: the mean drop of the predicted class's probability when the most salient 20 % of the pixels are
/// deleted, against deleting 20 % chosen by a random map of the same resolution (<see cref="Faithfulness"/>).
/// </summary>
public sealed class BenchExplainCommand : Command<BenchExplainSettings>
{
    /// <inheritdoc />
    public override int Execute(CommandContext context, BenchExplainSettings settings, CancellationToken cancellationToken)
    {
        var console = CliApp.Ui(settings.Json);
        var (train, test) = AccuracyBenchmark.TrainAndTest(settings.Train, settings.Test, null, settings.PerClass, settings.TestPerClass, settings.Seed);
        var head = settings.Head.ToLowerInvariant() switch
        {
            "lbfgs" => HeadKind.LbfgsMaximumEntropy,
            "lightgbm" => HeadKind.LightGbm,
            _ => throw new ArgumentException($"Unknown --head '{settings.Head}': use lbfgs or lightgbm."),
        };
        var fill = settings.Fill.ToLowerInvariant() switch
        {
            "blur" => DeletionFill.Blur,
            "mean" => DeletionFill.MeanColour,
            _ => throw new ArgumentException($"Unknown --fill '{settings.Fill}': use blur or mean."),
        };
        console.MarkupLineInterpolated($"{train.Count} training and {test.Count} test images, {train.Select(e => e.Label).Distinct().Count()} classes, {settings.ImageSize} px, head {settings.Head}");
        var ml = new MLContext(seed: settings.Seed);
        var clock = Stopwatch.StartNew();
        var options = new FeatureExtractionOptions
        {
            Head = head,
            ValidationFraction = 0,
            Seed = settings.Seed,
            Engine = new FeaturizerOptions { ImageSize = settings.ImageSize },
        };
        var model = ml.Transfer().FeatureExtraction(options).Fit(ml.Data.LoadFromEnumerable(train));
        var trainSeconds = clock.Elapsed.TotalSeconds;
        console.MarkupLineInterpolated($"[grey]trained in {trainSeconds:F0} s; explaining {test.Count} test images[/]");
        using var explainer = new ImageExplainer(ml, model);
        var result = Faithfulness.Measure(explainer, test, settings.Fraction, settings.Seed,
            new Progress<int>(done => { if (done % 100 == 0) console.MarkupLineInterpolated($"[grey]{done} / {test.Count}[/]"); }), fill);
        if (settings.Json)
        {
            Console.Out.WriteLine(JsonSerializer.Serialize(new
            {
                train = train.Count,
                test = test.Count,
                image_size = settings.ImageSize,
                head = settings.Head,
                method = ExplainCommand.Name(result.Method),
                accuracy = result.Accuracy,
                mean_probability = result.MeanProbability,
                salient_drop = result.SalientDrop,
                random_drop = result.RandomDrop,
                shifted_drop = result.ShiftedDrop,
                salient_larger = result.SalientLarger,
                fraction = result.Fraction,
                fill = settings.Fill.ToLowerInvariant(),
                skipped = result.Skipped,
                explain_seconds = result.Seconds,
                train_seconds = trainSeconds,
            }));
            return 0;
        }
        var table = new Table().AddColumns("Images", "Method", "Fill", "Test accuracy", "p(predicted)", $"Drop: salient {result.Fraction:P0}", $"Drop: random {result.Fraction:P0}", "Drop: shifted salient",
            "Salient > random", "Explain s");
        table.AddRow(result.Images.ToString("N0"), ExplainCommand.Name(result.Method), settings.Fill.ToLowerInvariant(), result.Accuracy.ToString("F3"), result.MeanProbability.ToString("F3"),
            $"[bold]{result.SalientDrop:F3}[/]", result.RandomDrop.ToString("F3"), result.ShiftedDrop.ToString("F3"), result.SalientLarger.ToString("P0"), result.Seconds.ToString("F0"));
        console.Write(table);
        console.MarkupLineInterpolated($"Salient / random drop: {result.SalientDrop / result.RandomDrop:F2}x");
        return 0;
    }
}
