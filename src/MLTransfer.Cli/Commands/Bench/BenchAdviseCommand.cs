using System.ComponentModel;
using System.Globalization;
using System.Text.Json;
using MLTransfer.Backbones;
using MLTransfer.Benchmarks;
using MLTransfer.Cli.Commands.Train;
using MLTransfer.Data;
using MLTransfer.Selection;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MLTransfer.Cli.Commands.Bench;

/// <summary>Arguments of <c>mltransfer bench advise</c>.</summary>
public sealed class BenchAdviseSettings : CommonSettings
{
    /// <summary>Training folder, or nothing with --manifest.</summary>
    [CommandArgument(0, "[train-folder]")]
    [Description("Labelled training images, one sub-folder per class (or use --manifest).")]
    public string? Train { get; set; }

    /// <summary>Test folder.</summary>
    [CommandOption("--test")]
    [Description("Labelled test images; without it a stratified share (--test-fraction) of the training images is held out.")]
    public string? Test { get; set; }

    /// <summary>Manifest.</summary>
    [CommandOption("--manifest")]
    [Description("A manifest CSV (path,<task1>,...) instead of a folder; --task names the label column.")]
    public string? Manifest { get; set; }

    /// <summary>Task of the manifest.</summary>
    [CommandOption("--task")]
    [Description("The manifest column used as the class label.")]
    public string? Task { get; set; }

    /// <summary>Test share.</summary>
    [CommandOption("--test-fraction")]
    [Description("Share of each class held out for testing when there is no --test folder. Default 0.2.")]
    [DefaultValue(0.2)]
    public double TestFraction { get; set; } = 0.2;

    /// <summary>Stages.</summary>
    [CommandOption("--layers")]
    [Description("Comma-separated stages. Default: the backbone's last three.")]
    public string? Layers { get; set; }

    /// <summary>Sizes.</summary>
    [CommandOption("--sizes")]
    [Description("Comma-separated image sizes. Default: 128,160,224.")]
    [DefaultValue("128,160,224")]
    public string Sizes { get; set; } = "128,160,224";

    /// <summary>Sample size of advise.</summary>
    [CommandOption("--max-images")]
    [Description("advise's sample size (0 = all training images). Default 1000.")]
    [DefaultValue(1000)]
    public int MaxImages { get; set; } = 1000;

    /// <summary>More sample sizes.</summary>
    [CommandOption("--also-max-images")]
    [Description("Comma-separated further sample sizes to run advise with against the same trained candidates (e.g. 250,500).")]
    public string? AlsoMaxImages { get; set; }

    /// <summary>Skip timing the training runs.</summary>
    [CommandOption("--no-train-timing")]
    [Description("Featurise training and test images once per size for all layers (scratch cache) instead of training each candidate cold: same accuracies, about a third of the time, no speed-up measured.")]
    public bool NoTrainTiming { get; set; }

    /// <summary>Cache of the untimed mode.</summary>
    [CommandOption("--cache-dir")]
    [Description("With --no-train-timing: the bottleneck cache to use and keep (e.g. shared by the tasks of one manifest). Default: a scratch folder, deleted.")]
    public string? CacheDir { get; set; }

    /// <summary>Subset size.</summary>
    [CommandOption("--limit")]
    [Description("Use at most this many labelled images (a seeded subset chosen by path, the same for every task of a manifest), before the test split.")]
    public int? Limit { get; set; }

    /// <summary>Seed.</summary>
    [CommandOption("--seed")]
    [DefaultValue(1)]
    public int Seed { get; set; } = 1;

    /// <summary>Name in the report.</summary>
    [CommandOption("--name")]
    [Description("Dataset name for the report heading.")]
    public string? Name { get; set; }

    /// <summary>Markdown output.</summary>
    [CommandOption("--output")]
    [Description("Append the Markdown section to this file.")]
    public string? Output { get; set; }

    /// <summary>Cross-validation folds.</summary>
    [CommandOption("--folds")]
    [Description("Also measure every candidate by K-fold cross-validation over the training and test images together (needs --no-train-timing).")]
    public int? Folds { get; set; }

    /// <summary>L2 grid of the head.</summary>
    [CommandOption("--head-l2")]
    [Description("With --folds: comma-separated fixed L2 regularisations of the head to cross-validate besides feature extraction's own choice (how much the ranking depends on the head; 1 is ML.NET's default).")]
    public string? HeadL2 { get; set; }

    /// <summary>JSON output.</summary>
    [CommandOption("--json")]
    public bool Json { get; set; }

    /// <inheritdoc />
    public override ValidationResult Validate()
    {
        if ((Train is null) == (Manifest is null))
            return ValidationResult.Error("Give a training folder or --manifest (with --task), not both.");
        if (Manifest is not null && string.IsNullOrWhiteSpace(Task))
            return ValidationResult.Error("--manifest needs --task (the label column).");
        if (Folds is { } folds && (folds < 2 || !NoTrainTiming))
            return ValidationResult.Error("--folds needs a value of at least 2 and --no-train-timing (cross-validation reads cached features).");
        if (HeadL2 is not null && Folds is null)
            return ValidationResult.Error("--head-l2 needs --folds (each L2 is measured by cross-validation).");
        if (HeadL2 is not null && ParseL2(HeadL2) is null)
            return ValidationResult.Error($"--head-l2 '{HeadL2}' must be comma-separated numbers of at least 0.");
        if (TestFraction is <= 0 or >= 1)
            return ValidationResult.Error("--test-fraction must be in (0, 1).");
        return new AdviseSettings { Sizes = Sizes }.Validate();
    }

    /// <summary>The values of <c>--head-l2</c>, or null when one is not a finite number of at least 0.</summary>
    internal static IReadOnlyList<float>? ParseL2(string text)
    {
        var values = new List<float>();
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (!float.TryParse(part, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || !float.IsFinite(value) || value < 0)
                return null;
            values.Add(value);
        }
        return values.Count == 0 ? null : values;
    }
}

/// <summary>
/// <c>mltransfer bench advise</c>: Kendall τ between advise's LogME ranking and the held-out accuracy feature extraction reaches
/// with each candidate, advise's time against training every candidate, and the advised configuration against the default.
/// </summary>
public sealed class BenchAdviseCommand : Command<BenchAdviseSettings>
{
    /// <inheritdoc />
    public override int Execute(CommandContext context, BenchAdviseSettings settings, CancellationToken cancellationToken)
    {
        var console = CliApp.Ui(settings.Json);
        var (train, test, name) = Load(settings);
        console.MarkupLineInterpolated($"{name}: {train.Count} training and {test.Count} test images, {train.Select(e => e.Label).Distinct().Count()} classes");
        var options = new AdviseOptions
        {
            Layers = RunnerSupport.Layers(settings.Layers),
            ImageSizes = new AdviseSettings { Sizes = settings.Sizes }.ImageSizes,
            MaxImages = settings.MaxImages,
            Seed = settings.Seed,
        };
        var result = AdviseBenchmark.Run(train, test, options, settings.Seed,
            line => console.MarkupLineInterpolated($"[grey]{DateTime.UtcNow:HH:mm:ss} {line}[/]"),
            settings.AlsoMaxImages?.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(v => int.Parse(v, CultureInfo.InvariantCulture)).ToList(),
            timeTraining: !settings.NoTrainTiming, cacheDirectory: settings.CacheDir, folds: settings.Folds ?? 0,
            headL2: settings.HeadL2 is null ? null : BenchAdviseSettings.ParseL2(settings.HeadL2));
        var command = "mltransfer bench advise " + string.Join(' ', Environment.GetCommandLineArgs().SkipWhile(a => a != "advise").Skip(1)
            .Select(a => a.Contains(' ') ? $"\"{a}\"" : a));
        var cache = settings.NoTrainTiming ? "features shared through one bottleneck cache (advise times are not cold-run times)" : "bottleneck cache off, every fit cold";
        var heading = string.Create(CultureInfo.InvariantCulture,
            $"### {name}\n\nResNet18, frozen; candidates {string.Join(", ", result.Rows.Select(r => r.Candidate.Layer).Distinct())} × {settings.Sizes} px; "
            + $"advise sample {settings.MaxImages} images, k-NN k = {NearestNeighbors.DefaultNeighbors}; feature extraction head: L-BFGS maximum entropy, its L2 chosen on a held-out fifth of each fit's images; "
            + $"{cache}. {Environment.ProcessorCount} cores, run {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC.");
        var markdown = AdviseBenchmark.Markdown(result, heading, command);
        if (settings.Output is not null)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(settings.Output))!);
            File.AppendAllText(settings.Output, markdown + "\n");
        }
        if (settings.Json)
        {
            Console.Out.WriteLine(JsonSerializer.Serialize(new
            {
                dataset = name,
                train = result.TrainCount,
                test = result.TestCount,
                advise_images = result.Advice.Images,
                kendall_logme = result.KendallLogMe,
                kendall_knn = result.KendallKnn,
                folds = result.Folds,
                kendall_logme_cv = result.Folds > 1 ? result.KendallLogMeCrossValidated : (double?)null,
                kendall_knn_cv = result.Folds > 1 ? result.KendallKnnCrossValidated : (double?)null,
                kendall_logme_cv_by_l2 = result.KendallLogMeByL2.ToDictionary(p => p.Key.ToString(CultureInfo.InvariantCulture), p => p.Value),
                kendall_logme_cv_best_l2 = double.IsNaN(result.KendallLogMeBestL2) ? (double?)null : result.KendallLogMeBestL2,
                advise_seconds = result.AdviseSeconds,
                train_all_seconds = result.TrainAllSeconds,
                training_timed = result.TrainingTimed,
                speed_up = result.TrainingTimed ? result.SpeedUp : (double?)null,
                advised = new { layer = result.Advised.Candidate.Layer, image_size = result.Advised.Candidate.ImageSize, accuracy = result.Advised.HeldOutAccuracy },
                @default = result.Default is { } d ? new { layer = d.Candidate.Layer, image_size = d.Candidate.ImageSize, accuracy = d.HeldOutAccuracy } : null,
                other_samples = result.OtherSamples.Select(o => new
                {
                    max_images = o.MaxImages, images = o.Advice.Images, kendall_logme = o.KendallLogMe,
                    kendall_logme_cv = result.Folds > 1 ? o.KendallLogMeCrossValidated : (double?)null, kendall_knn = o.KendallKnn, advise_seconds = o.Advice.Seconds,
                    speed_up = o.SpeedUp, advised = new { layer = o.Advice.Best.Layer, image_size = o.Advice.Best.ImageSize, accuracy = o.AdvisedAccuracy },
                }),
                candidates = result.Rows.Select(r => new
                {
                    rank = r.Candidate.Rank, layer = r.Candidate.Layer, image_size = r.Candidate.ImageSize, logme = r.Candidate.LogMe,
                    knn_accuracy = r.Candidate.KnnAccuracy, held_out_accuracy = r.HeldOutAccuracy,
                    cv_accuracy = result.Folds > 1 ? r.CrossValidatedAccuracy : (double?)null,
                    cv_accuracy_by_l2 = r.CrossValidatedAccuracyByL2.ToDictionary(p => p.Key.ToString(CultureInfo.InvariantCulture), p => p.Value), advise_seconds = r.Candidate.Seconds, train_seconds = r.TrainSeconds,
                }),
            }));
            return 0;
        }
        Console.Out.WriteLine(markdown);
        return 0;
    }

    private static (IReadOnlyList<ImageExample> Train, IReadOnlyList<ImageExample> Test, string Name) Load(BenchAdviseSettings settings)
    {
        IReadOnlyList<ImageExample> all;
        string name;
        if (settings.Manifest is not null)
        {
            var manifest = ImageManifest.Load(settings.Manifest, new ImageManifestOptions
            {
                Tasks = [settings.Task!], Kinds = new Dictionary<string, TaskKind> { [settings.Task!] = TaskKind.Classification }, DecodeCheck = false,
            });
            all = manifest.Examples.Where(e => e.Labels[0].Length > 0).Select(e => new ImageExample { ImagePath = e.ImagePath, Label = e.Labels[0] }).ToList();
            name = settings.Name ?? $"{Path.GetFileName(manifest.Root)} ({settings.Task})";
        }
        else
        {
            all = ImageFolder.Load(settings.Train!, new ImageFolderOptions { DecodeCheck = false }).Examples;
            name = settings.Name ?? Path.GetFileName(Path.GetFullPath(settings.Train!).TrimEnd(Path.DirectorySeparatorChar));
        }
        if (settings.Limit is { } limit && all.Count > limit)
            all = all.OrderBy(e => Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(
                System.Text.Encoding.UTF8.GetBytes($"{settings.Seed}|{Path.GetFileName(e.ImagePath)}"))), StringComparer.Ordinal).Take(limit).ToList();
        if (settings.Test is null)
        {
            var (train, test) = ImageFolder.StratifiedSplit(all, settings.TestFraction, settings.Seed);
            return (train, test, name);
        }
        return (all, ImageFolder.Load(settings.Test, new ImageFolderOptions { DecodeCheck = false, MinimumClasses = 1 }).Examples, name);
    }
}
