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

        /// <summary>Replace an existing output that is not a feature table.</summary>
        [CommandOption("--force")]
        [Description("Replace an existing --output file even when it is not a feature table.")]
        public bool Force { get; set; }

        /// <inheritdoc />
        public override ValidationResult Validate()
        {
            if (string.IsNullOrWhiteSpace(Output))
                return ValidationResult.Error("--output is required (a .csv or .parquet file).");
            if (!FeatureTable.IsSupported(Output))
                return ValidationResult.Error($"Unsupported output '{Output}': use a .csv or .parquet file name.");
            return base.Validate();
        }
    }

    /// <inheritdoc />
    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        var output = OutputFile.Check(settings.Output, new OutputFileRules
        {
            Kind = "feature table (.csv or .parquet)",
            IsReplaceable = FeatureTable.IsFeatureTable,
            Overwrite = settings.Force,
            OverwriteHint = "add --force",
        });
        var examples = ListImages(settings.Folder, AnsiConsole.Console);
        if (examples.Count == 0)
            throw new InvalidDataException($"No images in '{settings.Folder}' ({string.Join(", ", ImageFileCheck.Extensions)}).");
        var backbone = Backbone.Resolve(settings.Backbone);
        var clock = Stopwatch.StartNew();
        using var engine = new OnnxImageFeaturizer(backbone, settings.ToOptions());
        var result = FeaturizerProgress.Run(engine, examples.Select(e => e.ImagePath).ToList(), cancellationToken);
        var rows = new List<FeatureRow>(examples.Count);
        for (var i = 0; i < examples.Count; i++)
            if (result.Features[i] is { } vector)
                rows.Add(new FeatureRow(examples[i].ImagePath, examples[i].Label, vector));
        if (rows.Count == 0)
        {
            FeaturizerProgress.ReportFailures(result.Failed);
            throw new InvalidDataException($"None of the {examples.Count:N0} images in '{settings.Folder}' could be featurised; nothing was written.");
        }
        FeatureTable.Write(output, rows, engine.FeatureSize);
        clock.Stop();

        AnsiConsole.MarkupLine(
            $"Featurised [bold]{rows.Count:N0}[/] images with {Markup.Escape(backbone.Name)} at {engine.ImageSize} px " +
            $"(cached {result.FromCache:N0} / {examples.Count:N0}) in {clock.Elapsed.TotalSeconds:0.0} s → [green]{Markup.Escape(settings.Output)}[/]");
        FeaturizerProgress.ReportFailures(result.Failed);
        return 0;
    }

    /// <summary>The images of a folder with their labels: class sub-folders if there are any, otherwise the images directly inside.</summary>
    /// <param name="folder">The folder.</param>
    /// <param name="console">Where warnings go.</param>
    public static IReadOnlyList<ImageExample> ListImages(string folder, IAnsiConsole console)
    {
        ArgumentNullException.ThrowIfNull(console);
        var root = Path.GetFullPath(folder);
        if (!Directory.Exists(root))
            throw new DirectoryNotFoundException($"Image folder '{folder}' does not exist.");
        var hasClasses = Directory.GetDirectories(root).Any(d => !Path.GetFileName(d).StartsWith('.'));
        if (hasClasses)
        {
            var dataset = ImageFolder.Load(root, new ImageFolderOptions { DecodeCheck = false, MinimumClasses = 1 });
            Train.RunnerSupport.ReportWarnings(console, dataset.Warnings);
            return dataset.Examples.Concat(dataset.Rejected.Where(r => File.Exists(r.Path))
                    .Select(r => new ImageExample { ImagePath = r.Path, Label = Path.GetFileName(Path.GetDirectoryName(r.Path)) ?? "" }))
                .ToList();
        }
        return Directory.EnumerateFiles(root).Where(ImageFileCheck.HasImageExtension).OrderBy(f => f, StringComparer.Ordinal)
            .Select(f => new ImageExample { ImagePath = f, Label = "" }).ToList();
    }
}
