using System.ComponentModel;
using System.Diagnostics;
using MLTransfer.Backbones;
using MLTransfer.Data;
using MLTransfer.Featurization;
using MLTransfer.IO;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MLTransfer.Cli.Commands;

/// <summary>
/// <c>mltransfer featurize &lt;folder&gt; --output &lt;file.csv|file.parquet&gt;</c>: runs every image of a folder through the
/// frozen backbone and writes path, label and features f0…f{D-1}, using the bottleneck cache.
/// </summary>
public sealed class FeaturizeCommand : Command<FeaturizeCommand.Settings>
{
    /// <summary>Arguments of <see cref="FeaturizeCommand"/>.</summary>
    public sealed class Settings : FeaturizerSettings
    {
        /// <summary>The image folder: one sub-folder per class, or images directly inside (empty labels).</summary>
        [CommandArgument(0, "<folder>")]
        [Description("Image folder: one sub-folder per class (the label), or images directly inside (no labels).")]
        public string Folder { get; set; } = "";

        /// <summary>The output table.</summary>
        [CommandOption("-o|--output <FILE>")]
        [Description("Output file: .csv or .parquet, with columns path, label, f0..f{D-1}.")]
        public string Output { get; set; } = "";

        /// <summary>Featurise with the int8 backbone.</summary>
        [CommandOption("--int8")]
        [Description("Run the backbone quantised to int8 (static QDQ, calibrated on --calibration or on the folder's own images): faster, features differ slightly from the float model's.")]
        public bool Int8 { get; set; }

        /// <summary>Calibration images for --int8.</summary>
        [CommandOption("--calibration <FOLDER>")]
        [Description("With --int8: images to calibrate the activation ranges on. Default: the images being featurised (300 spread over them).")]
        public string? Calibration { get; set; }

        /// <inheritdoc />
        public override FeaturizerOptions ToOptions()
        {
            var options = base.ToOptions();
            if (Int8)
                options.Quantization = new Quantization.QuantizationOptions { CalibrationFolder = Calibration };
            return options;
        }

        /// <inheritdoc />
        public override ValidationResult Validate()
        {
            if (string.IsNullOrWhiteSpace(Folder) || !Directory.Exists(Folder))
                return ValidationResult.Error($"Image folder '{Folder}' does not exist.");
            if (string.IsNullOrWhiteSpace(Output))
                return ValidationResult.Error("--output is required (a .csv or .parquet file).");
            if (Calibration is not null && !Int8)
                return ValidationResult.Error("--calibration needs --int8.");
            if (Calibration is not null && !Directory.Exists(Calibration))
                return ValidationResult.Error($"Calibration folder '{Calibration}' does not exist.");
            if (!FeatureTable.IsSupported(Output))
                return ValidationResult.Error($"Unsupported output '{Output}': use a .csv or .parquet file name.");
            return base.Validate();
        }
    }

    /// <inheritdoc />
    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        var examples = ListImages(settings.Folder);
        if (examples.Count == 0)
        {
            AnsiConsole.MarkupLine($"[red]No images in '{Markup.Escape(settings.Folder)}'.[/]");
            return 1;
        }
        var backbone = Backbone.Resolve(settings.Backbone);
        var clock = Stopwatch.StartNew();
        using var engine = new OnnxImageFeaturizer(backbone, settings.ToOptions());
        var result = FeaturizerProgress.Run(engine, examples.Select(e => e.ImagePath).ToList(), cancellationToken);
        var rows = new List<FeatureRow>(examples.Count);
        for (var i = 0; i < examples.Count; i++)
            if (result.Features[i] is { } vector)
                rows.Add(new FeatureRow(examples[i].ImagePath, examples[i].Label, vector));
        FeatureTable.Write(settings.Output, rows, engine.FeatureSize);
        clock.Stop();

        AnsiConsole.MarkupLine(
            $"Featurised [bold]{rows.Count:N0}[/] images with {Markup.Escape(backbone.Name)}{(settings.Int8 ? " (int8)" : "")} at {engine.ImageSize} px " +
            $"(cached {result.FromCache:N0} / {examples.Count:N0}) in {clock.Elapsed.TotalSeconds:0.0} s → [green]{Markup.Escape(settings.Output)}[/]");
        FeaturizerProgress.ReportFailures(result.Failed);
        return rows.Count > 0 ? 0 : 1;
    }

    /// <summary>The images of a folder with their labels: class sub-folders if there are any, otherwise the images directly inside.</summary>
    /// <param name="folder">The folder.</param>
    public static IReadOnlyList<ImageExample> ListImages(string folder)
    {
        var root = Path.GetFullPath(folder);
        var hasClasses = Directory.GetDirectories(root).Any(d => !Path.GetFileName(d).StartsWith('.'));
        if (hasClasses)
        {
            var dataset = ImageFolder.Load(root, new ImageFolderOptions { DecodeCheck = false, MinimumClasses = 1 });
            return dataset.Examples.Concat(dataset.Rejected.Select(r => new ImageExample { ImagePath = r.Path, Label = Path.GetFileName(Path.GetDirectoryName(r.Path)) ?? "" }))
                .ToList();
        }
        return Directory.EnumerateFiles(root).Where(ImageFileCheck.HasImageExtension).OrderBy(f => f, StringComparer.Ordinal)
            .Select(f => new ImageExample { ImagePath = f, Label = "" }).ToList();
    }
}
