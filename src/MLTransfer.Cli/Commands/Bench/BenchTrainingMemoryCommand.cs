using System.ComponentModel;
using System.Globalization;
using MLTransfer.Data;
using MLTransfer.Diagnostics;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MLTransfer.Cli.Commands.Bench;

/// <summary>Arguments of <c>mltransfer bench training-memory</c>.</summary>
public sealed class BenchTrainingMemorySettings : CommonSettings
{
    /// <summary>Source images.</summary>
    [CommandArgument(0, "<folder>")]
    [Description("Labelled images (one sub-folder per class) to repeat under new names.")]
    public string Folder { get; set; } = "";

    /// <summary>Image counts.</summary>
    [CommandOption("--images")]
    [Description("Comma-separated numbers of training images. Default 2000,20000.")]
    [DefaultValue("2000,20000")]
    public string Images { get; set; } = "2000,20000";

    /// <summary>Image size.</summary>
    [CommandOption("--image-size")]
    [Description("Square input size. Default 224.")]
    [DefaultValue(224)]
    public int ImageSize { get; set; } = 224;

    /// <summary>Top-blocks mode.</summary>
    [CommandOption("--top-blocks-only")]
    [Description("Measure train --top-blocks-only instead of the whole network.")]
    public bool TopBlocksOnly { get; set; }

    /// <summary>Epochs.</summary>
    [CommandOption("--epochs")]
    [Description("Epochs of each run (all of them train the backbone). Default 1.")]
    [DefaultValue(1)]
    public int Epochs { get; set; } = 1;
}

/// <summary>
/// <c>mltransfer bench training-memory</c>: peak resident memory of <c>mltransfer train --technique fine-tuning</c>, run as a
/// child process, for growing numbers of images. The images are the folder's, copied under new names into a temporary
/// folder with a few distinct bytes appended after each file's end (so no two copies share a cache entry; decoders ignore
/// them); the folder, the model and the caches are deleted afterwards.
/// </summary>
public sealed class BenchTrainingMemoryCommand : Command<BenchTrainingMemorySettings>
{
    /// <inheritdoc />
    public override int Execute(CommandContext context, BenchTrainingMemorySettings settings, CancellationToken cancellationToken)
    {
        var console = AnsiConsole.Console;
        var counts = settings.Images.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(c => int.TryParse(c, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n >= 20 ? n : throw new ArgumentException($"Bad --images entry '{c}': use counts of at least 20."))
            .ToList();
        var source = ImageFolder.Load(settings.Folder, new ImageFolderOptions { DecodeCheck = false }).Examples;
        var (host, prefix) = Self();
        var rows = new List<(int Images, long Peak, TimeSpan Wall, int Exit)>();
        foreach (var count in counts)
        {
            using (var scratch = IO.ScratchFolder.Create())
            {
                var work = scratch.Path;
                var folder = Path.Combine(work, "images");
                Repeat(source, count, folder);
                string[] arguments =
                [
                    .. prefix, "train", folder, "--technique", "fine-tuning", "--image-size", settings.ImageSize.ToString(CultureInfo.InvariantCulture),
                    "--epochs", settings.Epochs.ToString(CultureInfo.InvariantCulture), "--unfreeze-after", "0", "--output", Path.Combine(work, "model.zip"),
                    "--cache-dir", Path.Combine(work, "cache"), "--no-plots", .. (settings.TopBlocksOnly ? new[] { "--top-blocks-only" } : ["--whole-network"]),
                ];
                console.MarkupLineInterpolated($"[grey]{count:N0} images: {host} {string.Join(' ', arguments)}[/]");
                var last = "";
                var (exit, peak, wall) = ProcessMemory.RunMeasured(host, arguments, line =>
                {
                    if (line.StartsWith("epoch", StringComparison.Ordinal) || line.StartsWith("error", StringComparison.Ordinal))
                        console.MarkupLineInterpolated($"[grey]  {line}[/]");
                    last = line;
                });
                console.MarkupLineInterpolated($"{count:N0} images: peak RSS {peak / 1048576.0:N0} MiB, wall {wall:hh\\:mm\\:ss}, exit {exit}{(exit == 0 ? "" : ": " + last)}");
                rows.Add((count, peak, wall, exit));
            }
        }
        var table = new Table().AddColumns("Training images", "Mode", "Peak RSS (MiB)", "× smallest run", "Wall", "Exit");
        foreach (var r in rows)
            table.AddRow(r.Images.ToString("N0", CultureInfo.InvariantCulture), settings.TopBlocksOnly ? "top blocks" : "whole network",
                (r.Peak / 1048576.0).ToString("N0", CultureInfo.InvariantCulture), ((double)r.Peak / rows[0].Peak).ToString("F2", CultureInfo.InvariantCulture),
                r.Wall.ToString(@"hh\:mm\:ss", CultureInfo.InvariantCulture), r.Exit.ToString(CultureInfo.InvariantCulture));
        console.Write(table);
        return rows.All(r => r.Exit == 0) ? 0 : 1;
    }

    /// <summary>How to start this tool again: its apphost, or <c>dotnet</c> with its assembly.</summary>
    private static (string Host, string[] Prefix) Self()
    {
        var host = Environment.ProcessPath ?? "dotnet";
        return Path.GetFileNameWithoutExtension(host) == "dotnet" ? (host, [typeof(CliApp).Assembly.Location]) : (host, []);
    }

    /// <summary>Copies images round-robin under new names, each made distinct by bytes appended after the end of the file.</summary>
    private static void Repeat(IReadOnlyList<ImageExample> source, int count, string folder)
    {
        for (var i = 0; i < count; i++)
        {
            var image = source[i % source.Count];
            var directory = Path.Combine(folder, image.Label);
            Directory.CreateDirectory(directory);
            var bytes = File.ReadAllBytes(image.ImagePath);
            var tag = System.Text.Encoding.ASCII.GetBytes(FormattableString.Invariant($"mltransfer-copy-{i:D7}"));
            File.WriteAllBytes(Path.Combine(directory, FormattableString.Invariant($"{i:D7}{Path.GetExtension(image.ImagePath)}")), [.. bytes, .. tag]);
        }
    }
}
