using System.ComponentModel;
using System.Text.Json;
using MLTransfer.Data;
using MLTransfer.Evaluation;
using MLTransfer.Export;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MLTransfer.Cli.Commands;

/// <summary>Arguments of <c>mltransfer predict</c>.</summary>
public sealed class PredictSettings : CommonSettings
{
    /// <summary>The model.</summary>
    [CommandArgument(0, "<model>")]
    [Description("The ML.NET .zip model.")]
    public string Model { get; set; } = "";

    /// <summary>Image or folder.</summary>
    [CommandArgument(1, "<image-or-folder>")]
    [Description("An image file, or a folder whose images (recursively) are all predicted.")]
    public string Input { get; set; } = "";

    /// <summary>Top K.</summary>
    [CommandOption("--top")]
    [Description("How many classes to list per image, at least 1 (more than the model's classes lists them all). Default 1.")]
    [DefaultValue(1)]
    public int Top { get; set; } = 1;

    /// <summary>JSON output.</summary>
    [CommandOption("--json")]
    [Description("Print one JSON array on stdout.")]
    public bool Json { get; set; }

    /// <inheritdoc />
    public override ValidationResult Validate() => Check.First(Check.AtLeast("--top", Top, 1));
}

/// <summary><c>mltransfer predict</c>: the most likely classes of images.</summary>
public sealed class PredictCommand : Command<PredictSettings>
{
    /// <inheritdoc />
    public override int Execute(CommandContext context, PredictSettings settings, CancellationToken cancellationToken)
    {
        var console = CliApp.Ui(settings.Json);
        var paths = ListInputs(settings.Input, console);
        using var loaded = ModelFile.Open(settings.Model);
        var (mlContext, model) = (loaded.Context, loaded.Model);
        var classes = ModelEvaluator.Classes(model);
        var readable = new List<string>();
        var results = new List<Dictionary<string, object>>();
        foreach (var path in paths)
        {
            var problem = ImageFileCheck.Problem(path);
            if (problem is null)
                readable.Add(path);
            else
                results.Add(new Dictionary<string, object> { ["path"] = path, ["error"] = problem });
        }
        var scores = readable.Count == 0 ? [] : ModelEvaluator.Predict(mlContext, model, readable);
        var top = Math.Clamp(settings.Top, 1, classes.Count);
        var table = new Table().AddColumn("Image").AddColumn("Prediction");
        for (var i = 0; i < readable.Count; i++)
        {
            var ranked = scores[i].Select((s, c) => (Class: classes[c], Score: s)).OrderByDescending(p => p.Score).Take(top).ToList();
            results.Add(new Dictionary<string, object>
            {
                ["path"] = readable[i],
                ["predicted_label"] = ranked[0].Class,
                ["top"] = ranked.Select(r => new Dictionary<string, object> { ["label"] = r.Class, ["score"] = r.Score }).ToList(),
            });
            table.AddRow(Markup.Escape(readable[i]), Markup.Escape(string.Join(", ", ranked.Select(r => $"{r.Class} ({r.Score:P1})"))));
        }
        if (settings.Json)
            Console.Out.WriteLine(JsonSerializer.Serialize(results));
        else
        {
            console.Write(table);
            foreach (var failed in results.Where(r => r.ContainsKey("error")))
                console.MarkupLineInterpolated($"[yellow]{failed["path"]}[/]: {failed["error"]}");
        }
        return results.Any(r => r.ContainsKey("error")) && readable.Count == 0 ? 1 : 0;
    }

    /// <summary>The image, or the images under a folder (see <see cref="ImageFileScan"/>); a folder without images is an error.</summary>
    private static IReadOnlyList<string> ListInputs(string input, IAnsiConsole console)
    {
        if (File.Exists(input))
            return [Path.GetFullPath(input)];
        if (!Directory.Exists(input))
            throw new FileNotFoundException($"'{input}' is neither an image file nor a folder.");
        var scan = ImageFileScan.Run(input);
        foreach (var folder in scan.Unreadable)
            console.MarkupLineInterpolated($"[yellow]warning:[/] {folder.Path}: {folder.Reason}");
        if (scan.SkippedLinks.Count > 0)
            console.MarkupLineInterpolated($"[yellow]warning:[/] {scan.SkippedLinks.Count} link(s) to folders were not followed ('{scan.SkippedLinks[0]}').");
        if (scan.Images.Count == 0)
            throw new InvalidDataException($"No images in '{input}' ({string.Join(", ", ImageFileCheck.Extensions)}, sub-folders included).");
        return scan.Images.Select(p => Path.Combine(input, Path.GetRelativePath(scan.Root, p))).ToList();
    }
}
