using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLTransfer.Data;
using MLTransfer.Export;

namespace MLTransfer.Techniques.MultiTask;

/// <summary>Reading multi-label rows from a data view and splitting them: what the frozen and fine-tuned multi-task techniques share.</summary>
public static class MultiTaskData
{
    /// <summary>
    /// Reads <c>ImagePath</c> and the task columns. Text columns: blank text is a missing label. Numeric columns
    /// (float, double, integers): NaN is missing, and the task is regression unless declared otherwise.
    /// </summary>
    /// <param name="data">The rows.</param>
    /// <param name="tasks">Task columns; null means every column except <c>ImagePath</c>.</param>
    /// <param name="kinds">Declared kinds; may be null.</param>
    /// <param name="numericClassLimit">See <see cref="ImageManifest.InferKind"/>.</param>
    /// <exception cref="ArgumentException">No <c>ImagePath</c> text column, a task column is missing or of an unsupported type, or no rows.</exception>
    public static (IReadOnlyList<ManifestTask> Tasks, IReadOnlyList<MultiLabelExample> Examples) Read(IDataView data,
        IReadOnlyList<string>? tasks, IReadOnlyDictionary<string, TaskKind>? kinds, int numericClassLimit = ImageManifest.DefaultNumericClassLimit)
    {
        ArgumentNullException.ThrowIfNull(data);
        var pathColumn = data.Schema.GetColumnOrNull(ImagePipeline.ImagePathColumn);
        if (pathColumn is not { Type: TextDataViewType })
            throw new ArgumentException($"The data view needs an '{ImagePipeline.ImagePathColumn}' text column; it has: {string.Join(", ", data.Schema.Select(c => c.Name))}.");
        var columns = TaskColumns(data.Schema, tasks);
        var getters = new List<Func<string>>();
        var paths = new List<string>();
        var labels = columns.Select(_ => new List<string>()).ToArray();
        using (var cursor = data.GetRowCursor([pathColumn.Value, .. columns]))
        {
            var pathGetter = cursor.GetGetter<ReadOnlyMemory<char>>(pathColumn.Value);
            getters.AddRange(columns.Select(c => LabelGetter(cursor, c)));
            ReadOnlyMemory<char> path = default;
            while (cursor.MoveNext())
            {
                pathGetter(ref path);
                paths.Add(path.ToString());
                for (var t = 0; t < columns.Length; t++)
                    labels[t].Add(getters[t]().Trim());
            }
        }
        if (paths.Count == 0)
            throw new ArgumentException("The data view has no rows.");
        var declared = new Dictionary<string, TaskKind>(kinds ?? new Dictionary<string, TaskKind>(), StringComparer.Ordinal);
        foreach (var column in columns.Where(c => c.Type is not TextDataViewType && !declared.ContainsKey(c.Name)))
            declared[column.Name] = TaskKind.Regression;
        var described = columns.Select((c, t) => ImageManifest.DescribeTask(c.Name, labels[t], declared, numericClassLimit)).ToList();
        var examples = paths.Select((p, i) => new MultiLabelExample(p, labels.Select(l => l[i]).ToArray())).ToList();
        return (described, examples);
    }

    /// <summary>The task columns of a schema: the named ones, or every column except <c>ImagePath</c>.</summary>
    /// <param name="schema">The input schema.</param>
    /// <param name="tasks">Task names; null means all.</param>
    public static DataViewSchema.Column[] TaskColumns(DataViewSchema schema, IReadOnlyList<string>? tasks)
    {
        ArgumentNullException.ThrowIfNull(schema);
        var columns = tasks is null
            ? schema.Where(c => !c.IsHidden && c.Name != ImagePipeline.ImagePathColumn).ToArray()
            : tasks.Select(t => schema.GetColumnOrNull(t)
                ?? throw new ArgumentException($"The data view has no task column '{t}'; it has: {string.Join(", ", schema.Select(c => c.Name))}.")).ToArray();
        if (columns.Length == 0)
            throw new ArgumentException("The data view has no task columns besides 'ImagePath'.");
        foreach (var c in columns)
            if (c.Type is not (TextDataViewType or NumberDataViewType))
                throw new ArgumentException($"Task column '{c.Name}' must be text or a number, not {c.Type}.");
        return columns;
    }

    /// <summary>A seeded random split of the images into train and validation sets (not stratified: the rows carry several labels).</summary>
    /// <param name="examples">The images.</param>
    /// <param name="validationFraction">Share held out, in [0, 1).</param>
    /// <param name="seed">Seed of the shuffle.</param>
    public static (IReadOnlyList<MultiLabelExample> Train, IReadOnlyList<MultiLabelExample> Validation) Split(
        IReadOnlyList<MultiLabelExample> examples, double validationFraction, int seed)
    {
        ArgumentNullException.ThrowIfNull(examples);
        if (validationFraction is < 0 or >= 1)
            throw new ArgumentOutOfRangeException(nameof(validationFraction), validationFraction, "The validation fraction must be in [0, 1).");
        var held = examples.Count < 2 ? 0 : (int)Math.Round(examples.Count * validationFraction);
        if (held == 0)
            return (examples, []);
        var order = Enumerable.Range(0, examples.Count).ToArray();
        new Random(seed).Shuffle(order);
        var validation = order.Take(held).Order().Select(i => examples[i]).ToList();
        var train = order.Skip(held).Order().Select(i => examples[i]).ToList();
        return (train, validation);
    }

    /// <summary>Checks that every task can be trained: two classes or more, or two regression targets or more.</summary>
    /// <param name="tasks">The tasks.</param>
    /// <param name="train">The training images.</param>
    /// <exception cref="InvalidDataException">A task cannot be trained.</exception>
    public static void CheckTrainable(IReadOnlyList<ManifestTask> tasks, IReadOnlyList<MultiLabelExample> train)
    {
        for (var t = 0; t < tasks.Count; t++)
        {
            var labelled = train.Select(e => e.Labels[t]).Where(l => l.Length > 0).ToList();
            if (tasks[t].Kind == TaskKind.Classification && labelled.Distinct(StringComparer.Ordinal).Count() < 2)
                throw new InvalidDataException($"Task '{tasks[t].Name}' needs at least 2 classes in the training images; found {labelled.Distinct().Count()}.");
            if (tasks[t].Kind == TaskKind.Regression && labelled.Count < 2)
                throw new InvalidDataException($"Task '{tasks[t].Name}' needs at least 2 labelled training images; found {labelled.Count}.");
        }
    }

    private static Func<string> LabelGetter(DataViewRowCursor cursor, DataViewSchema.Column column)
    {
        switch (column.Type)
        {
            case TextDataViewType:
            {
                var getter = cursor.GetGetter<ReadOnlyMemory<char>>(column);
                ReadOnlyMemory<char> value = default;
                return () => { getter(ref value); return value.ToString(); };
            }
            case NumberDataViewType n when n.RawType == typeof(float):
                return Number<float>(cursor, column, v => v);
            case NumberDataViewType n when n.RawType == typeof(double):
                return Number<double>(cursor, column, v => v);
            case NumberDataViewType n when n.RawType == typeof(int):
                return Number<int>(cursor, column, v => v);
            case NumberDataViewType n when n.RawType == typeof(long):
                return Number<long>(cursor, column, v => v);
            default:
                throw new ArgumentException($"Task column '{column.Name}' has the unsupported type {column.Type}.");
        }
    }

    private static Func<string> Number<T>(DataViewRowCursor cursor, DataViewSchema.Column column, Func<T, double> toDouble)
    {
        var getter = cursor.GetGetter<T>(column);
        T value = default!;
        return () =>
        {
            getter(ref value);
            var d = toDouble(value);
            return double.IsFinite(d) ? d.ToString("R", CultureInfo.InvariantCulture) : "";
        };
    }
}
