using MLTransfer.Evaluation;
using MLTransfer.IO;
using MLTransfer.Techniques;
using ScottPlot;
using SkiaSharp;
using Spectre.Console;

namespace MLTransfer.Cli.Rendering;

/// <summary>How the class names under a confusion matrix are drawn: the texts, the font that has their glyphs, the rotation.</summary>
/// <param name="Texts">The label texts (class names, long ones shortened around an ellipsis; <c>#i</c> where no installed font can draw a name).</param>
/// <param name="FontName">The font family whose glyphs cover every text.</param>
/// <param name="Rotation">Rotation in degrees (0, or 45 when the names would not fit side by side).</param>
/// <param name="Warning">Set when some names could not be drawn and were replaced by their number.</param>
public sealed record ClassLabels(IReadOnlyList<string> Texts, string FontName, float Rotation, string? Warning);

/// <summary>PNG plots written next to a model with ScottPlot: confusion matrix and training curves.</summary>
public static class Plots
{
    /// <summary>Longest class name drawn in full; longer names end with an ellipsis.</summary>
    public const int MaxLabelLength = 24;

    private const float TickFontSize = 12;

    /// <summary>Writes every plot the report supports; returns the files written.</summary>
    /// <param name="report">The training report.</param>
    /// <param name="modelPath">The model path; plots are named after it.</param>
    /// <param name="console">Where a warning about undrawable class names goes.</param>
    public static IReadOnlyList<string> WriteAll(TrainingReport report, string modelPath, IAnsiConsole? console = null)
    {
        ArgumentNullException.ThrowIfNull(report);
        var written = new List<string>();
        if (report.Validation is { } validation)
            written.Add(ConfusionMatrix(validation, OutputFile.Companion(modelPath, ".confusion.png"), console));
        if (report.History.Count > 0)
            written.Add(History(report.History, OutputFile.Companion(modelPath, ".history.png")));
        return written;
    }

    /// <summary>Checks a plot destination before any work: a <c>.png</c>, and an existing file there is a PNG (or <paramref name="overwrite"/>).</summary>
    /// <param name="path">The PNG path.</param>
    /// <param name="overwrite">Replace any existing file.</param>
    public static string CheckDestination(string path, bool overwrite) => OutputFile.Check(path, new OutputFileRules
    {
        Kind = "PNG image (.png)",
        Extensions = [".png"],
        IsReplaceable = OutputFile.IsPng,
        Overwrite = overwrite,
        OverwriteHint = "add --force",
    });

    /// <summary>Heat map of the confusion matrix, normalised per true class.</summary>
    /// <param name="report">The metrics.</param>
    /// <param name="path">PNG path.</param>
    /// <param name="console">Where a warning about undrawable class names goes.</param>
    public static string ConfusionMatrix(ClassificationReport report, string path, IAnsiConsole? console = null)
    {
        ArgumentNullException.ThrowIfNull(report);
        const int width = 640, height = 560;
        var k = report.Classes.Count;
        var values = new double[k, k];
        for (var i = 0; i < k; i++)
        {
            var total = Math.Max(1, report.ConfusionMatrix[i].Sum());
            for (var j = 0; j < k; j++)
                values[i, j] = (double)report.ConfusionMatrix[i][j] / total;
        }
        var labels = Labels(report.Classes, width * 0.75f);
        if (labels.Warning is { } warning)
            console?.MarkupLineInterpolated($"[yellow]warning:[/] {warning}");
        var plot = new Plot();
        var heatmap = plot.Add.Heatmap(values);
        heatmap.Colormap = new ScottPlot.Colormaps.Viridis();
        plot.Add.ColorBar(heatmap);
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            Enumerable.Range(0, k).Select(i => new Tick(i, labels.Texts[i])).ToArray());
        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            Enumerable.Range(0, k).Select(i => new Tick(k - 1 - i, labels.Texts[i])).ToArray());
        foreach (var axis in new[] { plot.Axes.Bottom.TickLabelStyle, plot.Axes.Left.TickLabelStyle })
        {
            axis.FontName = labels.FontName;
            axis.FontSize = TickFontSize;
        }
        if (labels.Rotation != 0)
        {
            plot.Axes.Bottom.TickLabelStyle.Rotation = labels.Rotation;
            plot.Axes.Bottom.TickLabelStyle.Alignment = Alignment.MiddleLeft;
            plot.Axes.Bottom.MinimumSize = LongestWidth(labels) * MathF.Sin(labels.Rotation * MathF.PI / 180) + 2 * TickFontSize;
        }
        plot.Title($"Confusion matrix (accuracy {report.MicroAccuracy:P1})");
        plot.XLabel("Predicted class");
        plot.YLabel("True class");
        Save(plot, path, width, height);
        return path;
    }

    /// <summary>
    /// Chooses how to draw class names under a plot <paramref name="available"/> pixels wide: a font that has every glyph
    /// (the default font, else an installed font that covers the names, e.g. a CJK one), names over
    /// <see cref="MaxLabelLength"/> characters shortened (<see cref="Shorten"/>), and a 45° rotation when the names would
    /// overlap side by side.
    /// A name no installed font can draw is replaced by <c>#index</c>, with a warning.
    /// </summary>
    /// <param name="classes">The class names.</param>
    /// <param name="available">Width in pixels the labels share.</param>
    public static ClassLabels Labels(IReadOnlyList<string> classes, float available)
    {
        ArgumentNullException.ThrowIfNull(classes);
        var texts = classes.Select(Shorten).ToList();
        var fontName = Fonts.Default;
        if (!Covers(fontName, texts))
        {
            var detected = Fonts.Detect(string.Concat(texts.Where(t => !Covers(fontName, [t]))));
            if (Covers(detected, texts))
                fontName = detected;
        }
        string? warning = null;
        var missing = texts.Select((t, i) => (t, i)).Where(p => !Covers(fontName, [p.t])).ToList();
        if (missing.Count > 0)
        {
            foreach (var (_, i) in missing)
                texts[i] = $"#{i}";
            warning = $"no installed font can draw the class name(s) {string.Join(", ", missing.Take(5).Select(m => $"'{classes[m.i]}'"))}" +
                $"{(missing.Count > 5 ? " and more" : "")}: the confusion-matrix PNG labels them by number ({string.Join(", ", missing.Take(5).Select(m => $"#{m.i}"))}); " +
                "install a font that has them (e.g. Debian's fonts-noto-cjk or fonts-droid-fallback for Chinese, Japanese and Korean).";
        }
        var labels = new ClassLabels(texts, fontName, 0, warning);
        var spacing = available / Math.Max(1, texts.Count);
        return LongestWidth(labels) + 4 > spacing ? labels with { Rotation = 45 } : labels;
    }

    /// <summary>A name of at most <see cref="MaxLabelLength"/> characters: longer ones keep their start and end around an ellipsis.</summary>
    /// <param name="name">A class name.</param>
    public static string Shorten(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (name.Length <= MaxLabelLength)
            return name;
        var head = (MaxLabelLength - 1) / 2;
        return name[..head] + "…" + name[^(MaxLabelLength - 1 - head)..];
    }

    /// <summary>Width in pixels of the widest label text in its font.</summary>
    /// <param name="labels">The labels.</param>
    public static float LongestWidth(ClassLabels labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        using var typeface = SKTypeface.FromFamilyName(labels.FontName);
        using var font = new SKFont(typeface, TickFontSize);
        return labels.Texts.Count == 0 ? 0 : labels.Texts.Max(t => font.MeasureText(t));
    }

    /// <summary>True when the font family has a glyph for every character of every text.</summary>
    /// <param name="fontName">A font family.</param>
    /// <param name="texts">The texts.</param>
    public static bool Covers(string fontName, IEnumerable<string> texts)
    {
        ArgumentNullException.ThrowIfNull(texts);
        using var typeface = SKTypeface.FromFamilyName(fontName);
        if (typeface is null)
            return false;
        using var font = new SKFont(typeface);
        return texts.All(t => font.ContainsGlyphs(t.Replace(" ", "", StringComparison.Ordinal)));
    }

    /// <summary>Loss and accuracy per epoch.</summary>
    /// <param name="history">Epoch metrics.</param>
    /// <param name="path">PNG path.</param>
    public static string History(IReadOnlyList<EpochMetrics> history, string path)
    {
        ArgumentNullException.ThrowIfNull(history);
        var plot = new Plot();
        var epochs = history.Select(h => (double)h.Epoch + 1).ToArray();
        plot.Add.Scatter(epochs, history.Select(h => h.TrainLoss).ToArray()).LegendText = "train loss";
        plot.Add.Scatter(epochs, history.Select(h => h.TrainAccuracy).ToArray()).LegendText = "train accuracy";
        if (history.Any(h => !double.IsNaN(h.ValidationAccuracy)))
            plot.Add.Scatter(epochs, history.Select(h => h.ValidationAccuracy).ToArray()).LegendText = "validation accuracy";
        plot.ShowLegend();
        plot.Title("Training");
        plot.XLabel("Epoch");
        Save(plot, path, 720, 420);
        return path;
    }

    private static void Save(Plot plot, string path, int width, int height)
    {
        var bytes = plot.GetImageBytes(width, height, ImageFormat.Png);
        AtomicFile.WriteAllBytes(path, bytes);
    }
}
