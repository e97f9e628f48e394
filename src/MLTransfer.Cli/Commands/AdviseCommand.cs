using MLTransfer.Diagnostics;
using System.ComponentModel;
using System.Globalization;
using System.Text.Json;
using MLTransfer.Backbones;
using MLTransfer.Cli.Commands.Train;
using MLTransfer.Data;
using MLTransfer.Featurization;
using MLTransfer.Selection;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MLTransfer.Cli.Commands;

/// <summary>Arguments of <c>mltransfer advise</c>.</summary>
public sealed class AdviseSettings : CommonSettings
{
    /// <summary>The labelled folder.</summary>
    [CommandArgument(0, "<folder>")]
    [Description("Folder of labelled images, one sub-folder per class (the folder you would train on).")]
    public string Folder { get; set; } = "";

    /// <summary>Stages to score.</summary>
    [CommandOption("--layers")]
    [Description("Comma-separated backbone stages whose pooled outputs are scored. Default: the backbone's last three (layer2,layer3,layer4 for resnet18).")]
    public string? Layers { get; set; }

    /// <summary>Image sizes to score.</summary>
    [CommandOption("--sizes")]
    [Description("Comma-separated square image sizes, multiples of the backbone's stride (32 for resnet18). Default: 128,160,224.")]
    [DefaultValue("128,160,224")]
    public string Sizes { get; set; } = "128,160,224";

    /// <summary>Backbones to score.</summary>
    [CommandOption("--backbone")]
    [Description("Comma-separated backbones: resnet18 (default) and/or paths of backbone spec .json files.")]
    [DefaultValue("resnet18")]
    public string Backbone { get; set; } = "resnet18";

    /// <summary>Sample size.</summary>
    [CommandOption("--max-images")]
    [Description("Most images scored: a stratified sample when the folder has more (0 = all). Default 1000.")]
    [DefaultValue(1000)]
    public int MaxImages { get; set; } = 1000;

    /// <summary>k of the k-NN accuracy.</summary>
    [CommandOption("--neighbors")]
    [Description("Neighbours of the k-NN leave-one-out accuracy. Default 10.")]
    [DefaultValue(NearestNeighbors.DefaultNeighbors)]
    public int Neighbors { get; set; } = NearestNeighbors.DefaultNeighbors;

    /// <summary>Seed of the sample.</summary>
    [CommandOption("--seed")]
    [Description("Seed of the sample. Default 0.")]
    [DefaultValue(0)]
    public int Seed { get; set; }

    /// <summary>Cache folder.</summary>
    [CommandOption("--cache-dir")]
    [Description("Folder of the bottleneck (feature) cache; 'train' with the winner's arguments reuses what advise wrote there.")]
    public string? CacheDir { get; set; }

    /// <summary>Disable the cache.</summary>
    [CommandOption("--no-cache")]
    [Description("Do not read or write the bottleneck cache.")]
    public bool NoCache { get; set; }

    /// <summary>JSON output.</summary>
    [CommandOption("--json")]
    [Description("Print one JSON object (candidates ranked, best with train_args) instead of the table.")]
    public bool Json { get; set; }

    /// <summary>The parsed sizes.</summary>
    public IReadOnlyList<int> ImageSizes => Sizes.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
        .Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToList();

    /// <inheritdoc />
    public override ValidationResult Validate()
    {
        if (Sizes.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries) is not { Length: > 0 } sizes
            || sizes.Any(s => !int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var size) || size < 16))
            return ValidationResult.Error($"--sizes must be comma-separated image sizes of at least 16 pixels, e.g. 128,160,224; got '{Sizes}'.");
        if (MaxImages < 0)
            return ValidationResult.Error("--max-images must be 0 (all) or more.");
        if (Neighbors < 1)
            return ValidationResult.Error("--neighbors must be at least 1.");
        return ValidationResult.Success();
    }
}

/// <summary>
/// <c>mltransfer advise &lt;folder&gt;</c>: ranks backbone stages × image sizes × backbones by LogME (with a k-NN leave-one-out
/// accuracy beside it) before any training, and prints the <c>mltransfer train</c> arguments of the winner.
/// </summary>
public sealed class AdviseCommand : Command<AdviseSettings>
{
    /// <inheritdoc />
    public override int Execute(CommandContext context, AdviseSettings settings, CancellationToken cancellationToken)
    {
        var console = CliApp.Ui(settings.Json);
        var arguments = settings.Backbone.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(a => (Argument: a, Backbone: Backbone.Resolve(a))).ToList();
        var folder = ImageFolder.Load(settings.Folder, new ImageFolderOptions { DecodeCheck = false });
        console.MarkupLineInterpolated($"[grey]{folder.Root}[/]: {folder.Examples.Count} images, {folder.Classes.Count} classes");
        var options = new AdviseOptions
        {
            Backbones = arguments.Select(a => a.Backbone).ToList(),
            Layers = RunnerSupport.Layers(settings.Layers),
            ImageSizes = settings.ImageSizes,
            MaxImages = settings.MaxImages,
            Neighbors = settings.Neighbors,
            Seed = settings.Seed,
            Engine = new FeaturizerOptions { CacheDirectory = settings.CacheDir, UseCache = !settings.NoCache },
        };
        Advice advice = null!;
        console.Progress().AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("Scoring candidates");
                options.Log = line => task.Description = Markup.Escape(line);
                options.Progress = new CallbackProgress<FeaturizationProgress>(p =>
                {
                    task.MaxValue = Math.Max(1, p.Total);
                    task.Value = p.Done;
                });
                advice = Advisor.Advise(folder.Examples, options, cancellationToken);
            });
        RunnerSupport.ReportRejected(console, advice.Rejected);
        var trainArgs = TrainArguments(advice.Best, arguments.First(a => ReferenceEquals(a.Backbone, advice.Best.Backbone)).Argument);
        if (settings.Json)
        {
            Console.Out.WriteLine(JsonSerializer.Serialize(new
            {
                images = advice.Images,
                classes = advice.Classes,
                rejected = advice.Rejected.Count,
                seconds = Math.Round(advice.Seconds, 3),
                candidates = advice.Candidates.Select(c => new
                {
                    rank = c.Rank,
                    backbone = c.Backbone.Name,
                    layer = c.Layer,
                    image_size = c.ImageSize,
                    feature_length = c.FeatureLength,
                    logme = c.LogMe,
                    knn_accuracy = c.KnnAccuracy,
                    seconds = Math.Round(c.Seconds, 3),
                }),
                best = new { backbone = advice.Best.Backbone.Name, layer = advice.Best.Layer, image_size = advice.Best.ImageSize, train_args = trainArgs },
            }));
            return 0;
        }
        var table = new Table().AddColumn("Rank").AddColumn("Backbone").AddColumn("Layer").AddColumn(new TableColumn("Size").RightAligned())
            .AddColumn(new TableColumn("Features").RightAligned()).AddColumn(new TableColumn("LogME").RightAligned())
            .AddColumn(new TableColumn("k-NN acc").RightAligned()).AddColumn(new TableColumn("Seconds").RightAligned());
        foreach (var c in advice.Candidates)
            table.AddRow(c.Rank.ToString(CultureInfo.InvariantCulture), Markup.Escape(c.Backbone.Name), Markup.Escape(c.Layer),
                c.ImageSize.ToString(CultureInfo.InvariantCulture), c.FeatureLength.ToString(CultureInfo.InvariantCulture),
                c.LogMe.ToString("F4", CultureInfo.InvariantCulture), c.KnnAccuracy.ToString("P1", CultureInfo.InvariantCulture),
                c.Seconds.ToString("F1", CultureInfo.InvariantCulture));
        console.Write(table);
        var sampled = advice.Images < folder.Examples.Count ? $" (a stratified sample of {folder.Examples.Count})" : "";
        console.MarkupLineInterpolated($"Scored {advice.Images} images of {advice.Classes} classes{sampled} in {advice.Seconds:F1} s (LogME ranks; k-NN: leave-one-out, k = {settings.Neighbors}).");
        console.MarkupLineInterpolated($"Best: [bold]{advice.Best.Backbone.Name} {advice.Best.Layer} at {advice.Best.ImageSize} px[/]. Train it with:");
        console.MarkupLineInterpolated($"  mltransfer train {Quote(settings.Folder)} {trainArgs}");
        return 0;
    }

    /// <summary>The extra arguments of <c>mltransfer train</c> that train a candidate with feature extraction.</summary>
    /// <param name="candidate">The candidate.</param>
    /// <param name="backboneArgument">How the candidate's backbone was named on the command line.</param>
    public static string TrainArguments(AdviceCandidate candidate, string backboneArgument)
    {
        ArgumentNullException.ThrowIfNull(candidate);
        var parts = new List<string>();
        if (candidate.IsStage)
            parts.Add($"--layer {Quote(candidate.Layer)}");
        parts.Add(string.Create(CultureInfo.InvariantCulture, $"--image-size {candidate.ImageSize}"));
        if (!string.Equals(backboneArgument, "resnet18", StringComparison.OrdinalIgnoreCase))
            parts.Add($"--backbone {Quote(backboneArgument)}");
        return string.Join(' ', parts);
    }

    private static string Quote(string value) =>
        value.Length > 0 && value.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or '/' or ':' or '+') ? value : $"'{value.Replace("'", "'\\''")}'";
}
