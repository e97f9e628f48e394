using System.ComponentModel;
using System.Text.Json;
using Microsoft.ML;
using MLTransfer.Data;
using MLTransfer.Evaluation;
using MLTransfer.Explain;
using MLTransfer.Export;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MLTransfer.Cli.Commands;

/// <summary>Arguments of <c>mltransfer explain</c>.</summary>
public sealed class ExplainSettings : CommonSettings
{
    /// <summary>The model.</summary>
    [CommandArgument(0, "<model>")]
    [Description("The ML.NET .zip model (a single-task MLTransfer classifier).")]
    public string Model { get; set; } = "";

    /// <summary>Image or folder.</summary>
    [CommandArgument(1, "<image-or-folder>")]
    [Description("An image file, or a folder whose images (recursively) are all explained.")]
    public string Input { get; set; } = "";

    /// <summary>Output folder.</summary>
    [CommandOption("-o|--output")]
    [Description("Folder for the heat-map PNGs and explanations.json. Default: explanations.")]
    [DefaultValue("explanations")]
    public string Output { get; set; } = "explanations";

    /// <summary>Top K.</summary>
    [CommandOption("--top")]
    [Description("How many classes get a heat map per image, most probable first. Default 1.")]
    [DefaultValue(1)]
    public int Top { get; set; } = 1;

    /// <summary>A named class.</summary>
    [CommandOption("--class")]
    [Description("Explain this class instead of the most probable ones.")]
    public string? Class { get; set; }

    /// <summary>Method.</summary>
    [CommandOption("--method")]
    [Description("auto (default: class-activation maps for linear heads, occlusion otherwise), cam or occlusion.")]
    [DefaultValue("auto")]
    public string Method { get; set; } = "auto";

    /// <summary>Multi-task: the task.</summary>
    [CommandOption("--task")]
    [Description("Multi-task models: the classification task to explain (its Score_<task> column).")]
    public string? Task { get; set; }

    /// <summary>Raw maps in the JSON.</summary>
    [CommandOption("--raw")]
    [Description("Also write each raw map (the grid of floats before upsampling) into explanations.json.")]
    public bool Raw { get; set; }

    /// <inheritdoc />
    public override ValidationResult Validate() =>
        Top < 1 ? ValidationResult.Error("--top must be at least 1.") : ValidationResult.Success();
}

/// <summary>
/// <c>mltransfer explain</c>: a heat map per image of where the predicted (or a named) class comes from, written as PNG
/// overlays next to an <c>explanations.json</c> index.
/// </summary>
public sealed class ExplainCommand : Command<ExplainSettings>
{
    /// <inheritdoc />
    public override int Execute(CommandContext context, ExplainSettings settings, CancellationToken cancellationToken)
    {
        var console = AnsiConsole.Console;
        var method = ParseMethod(settings.Method);
        var (root, paths) = ImagePaths(settings.Input);
        var mlContext = new MLContext(seed: 0);
        var model = ModelFile.Load(mlContext, settings.Model);
        var tasks = MultiTaskEvaluator.Tasks(model);
        if (settings.Task is null && tasks.Count > 0)
            throw new ArgumentException($"This multi-task model has the tasks '{string.Join("', '", tasks.Keys)}': give --task <name> (a classification task).");
        using var explainer = new ImageExplainer(mlContext, model, new ExplainerOptions
        {
            Method = method, Top = settings.Top, Class = settings.Class,
            ScoreColumn = settings.Task is { } task ? Techniques.MultiTask.MultiTaskColumns.Score(task) : "Score",
        });
        console.MarkupLineInterpolated($"{paths.Count} image(s), {explainer.Classes.Count} classes, {Describe(explainer.Method)} at {explainer.ImageSize} px");
        var output = Path.GetFullPath(settings.Output);
        var table = new Table().AddColumn("Image").AddColumn("Prediction").AddColumn("Heat map");
        var failed = new List<ExplanationOutcome>();
        var explained = 0;
        console.Progress().AutoClear(true).Start(ctx =>
        {
            var task = ctx.AddTask("Explaining", maxValue: Math.Max(1, paths.Count));
            AtomicFile.Write(Path.Combine(output, "explanations.json"), stream =>
            {
                using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
                json.WriteStartObject();
                json.WriteString("model", Path.GetFullPath(settings.Model));
                json.WriteString("method", Name(explainer.Method));
                json.WriteNumber("image_size", explainer.ImageSize);
                json.WriteStartArray("images");
                foreach (var outcome in explainer.ExplainAll(paths, cancellationToken))
                {
                    task.Increment(1);
                    if (outcome.Explanation is not { } e)
                    {
                        failed.Add(outcome);
                        continue;
                    }
                    var files = Write(e, output, Path.GetRelativePath(root, outcome.ImagePath));
                    WriteJson(json, e, files, output, settings.Raw);
                    if (explained++ < 20)
                        table.AddRow(Markup.Escape(Path.GetRelativePath(root, e.ImagePath)), Markup.Escape($"{e.PredictedLabel} ({e.Probabilities.Max():P1})"),
                            Markup.Escape(string.Join(", ", files.Select(f => Path.GetRelativePath(output, f)))));
                }
                json.WriteEndArray();
                json.WriteStartArray("rejected");
                foreach (var f in failed)
                {
                    json.WriteStartObject();
                    json.WriteString("path", f.ImagePath);
                    json.WriteString("reason", f.Problem);
                    json.WriteEndObject();
                }
                json.WriteEndArray();
                json.WriteEndObject();
            });
        });
        console.Write(table);
        if (explained > 20)
            console.MarkupLineInterpolated($"... and {explained - 20} more");
        foreach (var f in failed)
            console.MarkupLineInterpolated($"[yellow]{f.ImagePath}[/]: {f.Problem}");
        console.MarkupLineInterpolated($"[green]{explained} image(s) explained[/] into {output} (index: explanations.json)");
        return explained == 0 ? 1 : 0;
    }

    private static (string Root, List<string> Paths) ImagePaths(string input)
    {
        if (File.Exists(input))
        {
            var file = Path.GetFullPath(input);
            return (Path.GetDirectoryName(file)!, [file]);
        }
        if (!Directory.Exists(input))
            throw new FileNotFoundException($"'{input}' is neither an image file nor a folder.");
        var root = Path.GetFullPath(input);
        var paths = Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories).Where(ImageFileCheck.HasImageExtension).Order(StringComparer.Ordinal).ToList();
        if (paths.Count == 0)
            throw new InvalidDataException($"Folder '{root}' has no images ({string.Join(", ", ImageFileCheck.Extensions)}).");
        return (root, paths);
    }

    private static List<string> Write(Explanation e, string output, string relative)
    {
        var stem = Path.Combine(output, Path.ChangeExtension(relative, null));
        var files = new List<string>();
        foreach (var map in e.Maps)
        {
            var file = $"{stem}.{Safe(map.Class)}.png";
            AtomicFile.WriteAllBytes(file, HeatMapImage.Overlay(e, map));
            files.Add(file);
        }
        return files;
    }

    private static void WriteJson(Utf8JsonWriter json, Explanation e, List<string> files, string output, bool raw)
    {
        json.WriteStartObject();
        json.WriteString("path", e.ImagePath);
        json.WriteString("predicted_label", e.PredictedLabel);
        json.WriteNumber("score", e.Probabilities.Max());
        if (!double.IsNaN(e.ReconstructionError))
            json.WriteNumber("reconstruction_error", e.ReconstructionError);
        json.WriteStartArray("maps");
        for (var i = 0; i < e.Maps.Count; i++)
        {
            var map = e.Maps[i];
            json.WriteStartObject();
            json.WriteString("class", map.Class);
            json.WriteNumber("probability", map.Probability);
            json.WriteString("png", Path.GetRelativePath(output, files[i]));
            json.WriteNumber("width", map.Width);
            json.WriteNumber("height", map.Height);
            if (raw)
            {
                json.WriteStartArray("values");
                foreach (var v in map.Values)
                    json.WriteNumberValue(v);
                json.WriteEndArray();
            }
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteEndObject();
    }

    private static string Safe(string name) => string.Concat(name.Select(c => Path.GetInvalidFileNameChars().Contains(c) || c == ' ' ? '_' : c));

    internal static ExplanationMethod ParseMethod(string method) => method.ToLowerInvariant() switch
    {
        "auto" => ExplanationMethod.Auto,
        "cam" or "class-activation-map" => ExplanationMethod.ClassActivationMap,
        "occlusion" => ExplanationMethod.Occlusion,
        _ => throw new ArgumentException($"Unknown --method '{method}': use auto, cam or occlusion."),
    };

    internal static string Name(ExplanationMethod method) => method == ExplanationMethod.ClassActivationMap ? "cam" : "occlusion";

    private static string Describe(ExplanationMethod method) =>
        method == ExplanationMethod.ClassActivationMap ? "class-activation maps (linear head)" : "occlusion sensitivity";
}
