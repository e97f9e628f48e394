using System.Globalization;
using Microsoft.ML;

namespace MLTransfer.Data;

/// <summary>What a task predicts.</summary>
public enum TaskKind
{
    /// <summary>One class out of several (text labels): <c>PredictedLabel_T</c> and the probabilities <c>Score_T</c>.</summary>
    Classification,
    /// <summary>A number (e.g. age): the prediction <c>Score_T</c>.</summary>
    Regression,
}

/// <summary>One task of a manifest.</summary>
/// <param name="Name">Column name of the task.</param>
/// <param name="Kind">Classification or regression.</param>
/// <param name="Classes">Classification: the distinct labels in ordinal order; regression: empty.</param>
public sealed record ManifestTask(string Name, TaskKind Kind, IReadOnlyList<string> Classes);

/// <summary>An image with one label per task; an empty label means the label is missing.</summary>
/// <param name="ImagePath">Full path of the image.</param>
/// <param name="Labels">One label per task, in the order of the tasks; empty when missing.</param>
public sealed record MultiLabelExample(string ImagePath, IReadOnlyList<string> Labels);

/// <summary>
/// A labelled image dataset for multi-task learning, read from a CSV manifest
/// <c>path,&lt;task1&gt;,&lt;task2&gt;,...</c> (header row first; <see cref="Csv"/> quoting rules), or from class
/// folders for a single task.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item><description>Paths are relative to the manifest's folder (<c>\</c> is read as <c>/</c>). Absolute paths and paths that
/// leave the manifest's folder (e.g. <c>../x.jpg</c>) are rejected with an error naming the line.</description></item>
/// <item><description>A blank field is a missing label: the image is used for the other tasks only. Rows whose selected tasks are
/// all blank are skipped and counted in <see cref="Unlabelled"/>.</description></item>
/// <item><description>Task kinds are declared (<see cref="ImageManifestOptions.Kinds"/>) or inferred by <see cref="InferKind"/>.</description></item>
/// <item><description>Unreadable images are listed in <see cref="Rejected"/> (or fail the load in strict mode).</description></item>
/// </list>
/// </remarks>
public sealed class ImageManifest
{
    /// <summary>Name of the manifest's path column (compared case-insensitively).</summary>
    public const string PathColumn = "path";

    /// <summary>The default of <see cref="ImageManifestOptions.NumericClassLimit"/>.</summary>
    public const int DefaultNumericClassLimit = 10;

    private ImageManifest(string root, IReadOnlyList<ManifestTask> tasks, IReadOnlyList<MultiLabelExample> examples,
        IReadOnlyList<RejectedImage> rejected, int unlabelled)
    {
        Root = root;
        Tasks = tasks;
        Examples = examples;
        Rejected = rejected;
        Unlabelled = unlabelled;
    }

    /// <summary>Full path of the folder the image paths are relative to.</summary>
    public string Root { get; }

    /// <summary>The tasks, in the order of <see cref="MultiLabelExample.Labels"/>.</summary>
    public IReadOnlyList<ManifestTask> Tasks { get; }

    /// <summary>The usable images, in file order.</summary>
    public IReadOnlyList<MultiLabelExample> Examples { get; }

    /// <summary>Images that could not be used, with the reason.</summary>
    public IReadOnlyList<RejectedImage> Rejected { get; }

    /// <summary>Rows skipped because every selected task's label was blank.</summary>
    public int Unlabelled { get; }

    /// <summary>
    /// Infers a task's kind from its non-blank values: <see cref="TaskKind.Regression"/> when every value parses as a
    /// finite number (invariant culture) and there are more than <paramref name="numericClassLimit"/> distinct
    /// values; otherwise <see cref="TaskKind.Classification"/>. So digits 0–9 are classes, ages 1–115 a regression target,
    /// and <c>0-12</c> (an age bucket) is a class.
    /// </summary>
    /// <param name="values">The task's labels (blanks are ignored).</param>
    /// <param name="numericClassLimit">Most distinct numeric values still read as classes. The default value is 10.</param>
    public static TaskKind InferKind(IEnumerable<string> values, int numericClassLimit = DefaultNumericClassLimit)
    {
        ArgumentNullException.ThrowIfNull(values);
        var distinct = new HashSet<string>(StringComparer.Ordinal);
        foreach (var value in values)
        {
            if (string.IsNullOrWhiteSpace(value))
                continue;
            if (!TryParseNumber(value, out _))
                return TaskKind.Classification;
            distinct.Add(value.Trim());
        }
        return distinct.Count > numericClassLimit ? TaskKind.Regression : TaskKind.Classification;
    }

    /// <summary>Parses a regression label (invariant culture, finite values only).</summary>
    /// <param name="value">The text.</param>
    /// <param name="number">The number.</param>
    public static bool TryParseNumber(string value, out double number) =>
        double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out number) && double.IsFinite(number);

    /// <summary>Reads a CSV manifest.</summary>
    /// <param name="manifestPath">The <c>.csv</c> file.</param>
    /// <param name="options">Reading options; null means the defaults.</param>
    /// <exception cref="FileNotFoundException">The manifest does not exist.</exception>
    /// <exception cref="InvalidDataException">Malformed CSV, no <c>path</c> column, unknown or duplicate task, a path escaping the folder, no images.</exception>
    public static ImageManifest Load(string manifestPath, ImageManifestOptions? options = null)
    {
        options ??= new ImageManifestOptions();
        ArgumentException.ThrowIfNullOrWhiteSpace(manifestPath);
        var file = Path.GetFullPath(manifestPath);
        if (!File.Exists(file))
            throw new FileNotFoundException($"Manifest '{file}' does not exist.", file);
        var root = Path.GetDirectoryName(file)!;
        IReadOnlyList<Csv.Record> records;
        try
        {
            records = Csv.Parse(File.ReadAllText(file));
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"Manifest '{file}': {e.Message}", e);
        }
        if (records.Count == 0)
            throw new InvalidDataException($"Manifest '{file}' is empty: it needs a header 'path,<task1>,<task2>,...'.");
        var header = records[0].Fields.Select(f => f.Trim()).ToArray();
        var pathIndex = Array.FindIndex(header, h => string.Equals(h, PathColumn, StringComparison.OrdinalIgnoreCase));
        if (pathIndex < 0)
            throw new InvalidDataException($"Manifest '{file}' has no '{PathColumn}' column; its header is '{string.Join(",", header)}'.");
        var duplicate = header.GroupBy(h => h, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
            throw new InvalidDataException($"Manifest '{file}' has the column '{duplicate.Key}' twice.");
        var available = header.Where((_, i) => i != pathIndex).ToList();
        var taskNames = options.Tasks?.Select(t => t.Trim()).ToList() ?? available;
        if (taskNames.Count == 0)
            throw new InvalidDataException($"Manifest '{file}' has no task columns besides '{PathColumn}'.");
        var unknown = taskNames.Where(t => !available.Contains(t, StringComparer.Ordinal)).ToList();
        if (unknown.Count > 0)
            throw new InvalidDataException($"Manifest '{file}' has no task column '{string.Join("', '", unknown)}'; its tasks are '{string.Join("', '", available)}'.");
        if (taskNames.Distinct(StringComparer.Ordinal).Count() != taskNames.Count)
            throw new InvalidDataException("A task is listed twice.");
        var columns = taskNames.Select(t => Array.IndexOf(header, t)).ToArray();

        var rows = new List<(string Path, string[] Labels)>();
        var rejected = new List<RejectedImage>();
        var unlabelled = 0;
        foreach (var record in records.Skip(1))
        {
            if (record.Fields.Count != header.Length)
                throw new InvalidDataException($"Manifest '{file}', line {record.Line}: {record.Fields.Count} fields, the header has {header.Length}.");
            var relative = record.Fields[pathIndex].Trim();
            var path = Resolve(root, relative, file, record.Line);
            var labels = columns.Select(c => record.Fields[c].Trim()).ToArray();
            if (labels.All(l => l.Length == 0))
            {
                unlabelled++;
                continue;
            }
            var problem = ImageFileCheck.HasImageExtension(path) ? ImageFileCheck.Problem(path, options.MaxPixels, options.DecodeCheck)
                : $"not an image file name ({string.Join(", ", ImageFileCheck.Extensions)})";
            if (problem is not null)
            {
                if (options.Strict)
                    throw new InvalidDataException($"Unreadable image '{path}' (manifest line {record.Line}): {problem} (strict mode).");
                rejected.Add(new RejectedImage(path, problem));
                continue;
            }
            rows.Add((path, labels));
        }
        if (rows.Count == 0)
            throw new InvalidDataException(rejected.Count == 0
                ? $"Manifest '{file}' lists no labelled images."
                : $"Manifest '{file}' lists no readable images: all {rejected.Count} were rejected (first: {rejected[0].Reason}).");

        var tasks = taskNames.Select((name, t) => DescribeTask(name, rows.Select(r => r.Labels[t]).ToList(), options.Kinds, options.NumericClassLimit)).ToList();
        return new ImageManifest(root, tasks, rows.Select(r => new MultiLabelExample(r.Path, r.Labels)).ToList(), rejected, unlabelled);
    }

    /// <summary>Reads one task from class folders (<see cref="ImageFolder"/>): the folder name is the label.</summary>
    /// <param name="folder">Folder with one sub-folder per class.</param>
    /// <param name="taskName">Name of the task. The default value is <c>label</c>.</param>
    /// <param name="options">Folder reading options; null means the defaults.</param>
    public static ImageManifest FromFolder(string folder, string taskName = "label", ImageFolderOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(taskName);
        var images = ImageFolder.Load(folder, options);
        var task = new ManifestTask(taskName, TaskKind.Classification, images.Classes);
        return new ImageManifest(images.Root, [task], images.Examples.Select(e => new MultiLabelExample(e.ImagePath, [e.Label])).ToList(), images.Rejected, 0);
    }

    /// <summary>
    /// A data view with an <c>ImagePath</c> text column and one text column per task, named after the task
    /// (missing labels are empty text): the input of <c>mlContext.Transfer().MultiTask(...)</c>.
    /// </summary>
    /// <param name="mlContext">The ML.NET context.</param>
    public IDataView ToDataView(MLContext mlContext)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        return Heads.InMemoryRows.Text([Export.ImagePipeline.ImagePathColumn, .. Tasks.Select(t => t.Name)],
            Examples.Select(e => (IReadOnlyList<string>)[e.ImagePath, .. e.Labels]).ToList());
    }

    /// <summary>The same tasks over some of the images (e.g. one side of a split).</summary>
    /// <param name="examples">The images to keep; labels in the order of <see cref="Tasks"/>.</param>
    public ImageManifest Subset(IReadOnlyList<MultiLabelExample> examples)
    {
        ArgumentNullException.ThrowIfNull(examples);
        if (examples.Any(e => e.Labels.Count != Tasks.Count))
            throw new ArgumentException($"Every example needs {Tasks.Count} labels.");
        return new ImageManifest(Root, Tasks, examples, [], 0);
    }

    /// <summary>Index of a task by name.</summary>
    /// <param name="name">The task name.</param>
    public int TaskIndex(string name)
    {
        for (var i = 0; i < Tasks.Count; i++)
            if (string.Equals(Tasks[i].Name, name, StringComparison.Ordinal))
                return i;
        throw new ArgumentException($"No task '{name}'; the tasks are '{string.Join("', '", Tasks.Select(t => t.Name))}'.");
    }

    private static string Resolve(string root, string relative, string file, int line)
    {
        if (relative.Length == 0)
            throw new InvalidDataException($"Manifest '{file}', line {line}: the path is empty.");
        var normalized = relative.Replace('\\', '/');
        if (Path.IsPathRooted(normalized) || normalized.StartsWith('/') || (normalized.Length > 1 && normalized[1] == ':'))
            throw new InvalidDataException($"Manifest '{file}', line {line}: the path '{relative}' is absolute; paths must be relative to the manifest's folder.");
        var full = Path.GetFullPath(Path.Combine(root, normalized));
        var prefix = root.EndsWith(Path.DirectorySeparatorChar) ? root : root + Path.DirectorySeparatorChar;
        if (!full.StartsWith(prefix, StringComparison.Ordinal))
            throw new InvalidDataException($"Manifest '{file}', line {line}: the path '{relative}' escapes the manifest's folder '{root}'.");
        return full;
    }

    /// <summary>Describes a task from its labels: its declared kind or the inferred one (<see cref="InferKind"/>), and its classes.</summary>
    /// <param name="name">The task's name.</param>
    /// <param name="labels">Its labels (blank = missing).</param>
    /// <param name="kinds">Declared kinds by task name; may be null.</param>
    /// <param name="numericClassLimit">See <see cref="InferKind"/>.</param>
    public static ManifestTask DescribeTask(string name, IReadOnlyList<string> labels, IReadOnlyDictionary<string, TaskKind>? kinds,
        int numericClassLimit = DefaultNumericClassLimit)
    {
        ArgumentNullException.ThrowIfNull(labels);
        var kind = kinds is not null && kinds.TryGetValue(name, out var declared)
            ? declared
            : InferKind(labels, numericClassLimit);
        if (kind == TaskKind.Regression && labels.FirstOrDefault(l => !string.IsNullOrWhiteSpace(l) && !TryParseNumber(l, out _)) is { } bad)
            throw new InvalidDataException($"Task '{name}' is a regression task but has the label '{bad}', which is not a number.");
        var classes = kind == TaskKind.Regression ? []
            : labels.Where(l => !string.IsNullOrWhiteSpace(l)).Distinct(StringComparer.Ordinal).OrderBy(l => l, StringComparer.Ordinal).ToArray();
        return new ManifestTask(name, kind, classes);
    }
}
