using MLTransfer.Evaluation;
using MLTransfer.Reporting;
using MLTransfer.Techniques;

namespace MLTransfer.Cli.Rendering;

/// <summary>PNG plots written next to a model (drawn by the library's <see cref="Charts"/>): confusion matrix and training curves.</summary>
public static class Plots
{
    /// <summary>Writes every plot the report supports; returns the files written.</summary>
    /// <param name="report">The training report.</param>
    /// <param name="modelPath">The model path; plots are named after it.</param>
    public static IReadOnlyList<string> WriteAll(TrainingReport report, string modelPath)
    {
        var written = new List<string>();
        var stem = Stem(modelPath);
        if (report.Validation is { } validation)
            written.Add(ConfusionMatrix(validation, stem + ".confusion.png"));
        if (report.History.Count > 0)
            written.Add(Save(Charts.History(report.History), stem + ".history.png"));
        if (report.Domains is { } domains)
            written.Add(Save(Charts.DomainProjection(domains), stem + ".domains.png"));
        return written;
    }

    /// <summary>Heat map of the confusion matrix, normalised per true class.</summary>
    /// <param name="report">The metrics.</param>
    /// <param name="path">PNG path.</param>
    public static string ConfusionMatrix(ClassificationReport report, string path) => Save(Charts.ConfusionMatrix(report), path);

    /// <summary>The path of a model without its extension: files written beside it are named <c>stem.something</c>.</summary>
    /// <param name="modelPath">The model path.</param>
    public static string Stem(string modelPath) =>
        Path.Combine(Path.GetDirectoryName(Path.GetFullPath(modelPath))!, Path.GetFileNameWithoutExtension(modelPath));

    private static string Save(byte[] png, string path)
    {
        AtomicFile.WriteAllBytes(path, png);
        return path;
    }
}
