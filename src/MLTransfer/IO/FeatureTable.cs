using System.Globalization;
using System.Text;
using Parquet;
using Parquet.Schema;

namespace MLTransfer.IO;

/// <summary>One featurised image: where it came from, its label and its feature vector.</summary>
/// <param name="Path">The image file.</param>
/// <param name="Label">The class name; empty for unlabelled images.</param>
/// <param name="Features">The feature vector.</param>
public sealed record FeatureRow(string Path, string Label, float[] Features);

/// <summary>
/// Reads and writes tables of image features that other tools read: columns <c>path</c>, <c>label</c>, then
/// <c>f0</c>…<c>f{D-1}</c> (float32). The format follows the extension: <c>.csv</c> (RFC 4180, invariant culture,
/// shortest round-trip float text) or <c>.parquet</c> (one row group per 4,096 rows). Files are written atomically.
/// </summary>
public static class FeatureTable
{
    /// <summary>Name of the column holding the image path.</summary>
    public const string PathColumn = "path";

    /// <summary>Name of the column holding the label.</summary>
    public const string LabelColumn = "label";

    private const int RowGroupSize = 4096;

    /// <summary>Name of feature column <paramref name="index"/>: <c>f{index}</c>.</summary>
    /// <param name="index">Zero-based feature index.</param>
    public static string FeatureColumn(int index) => "f" + index.ToString(CultureInfo.InvariantCulture);

    /// <summary>True when the path ends with <c>.csv</c> or <c>.parquet</c> (case-insensitive).</summary>
    /// <param name="path">A file path.</param>
    public static bool IsSupported(string path) => FormatOf(path) is not null;

    /// <summary>True when the file is a table this class wrote: a CSV starting with <c>path,label,f0</c> or a Parquet file.</summary>
    /// <param name="path">A file.</param>
    public static bool IsFeatureTable(string path) =>
        OutputFile.StartsWith(path, "PAR1"u8) || OutputFile.StartsWith(path, Encoding.UTF8.GetBytes($"{PathColumn},{LabelColumn},{FeatureColumn(0)}"));

    /// <summary>Writes rows to a CSV or Parquet file, chosen by the extension.</summary>
    /// <param name="path">Destination, ending with <c>.csv</c> or <c>.parquet</c>.</param>
    /// <param name="rows">The rows; every vector must have <paramref name="featureSize"/> values.</param>
    /// <param name="featureSize">Length of the feature vectors.</param>
    /// <exception cref="ArgumentException">The extension is not supported, or a vector has the wrong length.</exception>
    public static void Write(string path, IReadOnlyList<FeatureRow> rows, int featureSize)
    {
        ArgumentNullException.ThrowIfNull(rows);
        ArgumentOutOfRangeException.ThrowIfLessThan(featureSize, 1);
        var format = FormatOf(path) ?? throw new ArgumentException($"Unsupported output '{path}': use a .csv or .parquet file name.", nameof(path));
        foreach (var row in rows)
            if (row.Features.Length != featureSize)
                throw new ArgumentException($"The vector of '{row.Path}' has {row.Features.Length} values; {featureSize} were expected.", nameof(rows));
        if (format == ".csv")
            AtomicFile.Write(path, stream => WriteCsv(stream, rows, featureSize));
        else
            AtomicFile.Write(path, stream => WriteParquet(stream, rows, featureSize));
    }

    /// <summary>Reads a table written by <see cref="Write"/>.</summary>
    /// <param name="path">A <c>.csv</c> or <c>.parquet</c> file.</param>
    /// <exception cref="InvalidDataException">The file does not have the expected columns.</exception>
    public static IReadOnlyList<FeatureRow> Read(string path)
    {
        var format = FormatOf(path) ?? throw new ArgumentException($"Unsupported input '{path}': use a .csv or .parquet file.", nameof(path));
        return format == ".csv" ? ReadCsv(path) : ReadParquet(path);
    }

    private static string? FormatOf(string path)
    {
        var extension = Path.GetExtension(path).ToLowerInvariant();
        return extension is ".csv" or ".parquet" ? extension : null;
    }

    private static void WriteCsv(Stream stream, IReadOnlyList<FeatureRow> rows, int featureSize)
    {
        using var writer = new StreamWriter(stream, new UTF8Encoding(false), 1 << 16, leaveOpen: true) { NewLine = "\n" };
        writer.Write(PathColumn);
        writer.Write(',');
        writer.Write(LabelColumn);
        for (var j = 0; j < featureSize; j++)
        {
            writer.Write(',');
            writer.Write(FeatureColumn(j));
        }
        writer.WriteLine();
        Span<char> number = stackalloc char[32];
        foreach (var row in rows)
        {
            writer.Write(Quote(row.Path));
            writer.Write(',');
            writer.Write(Quote(row.Label));
            foreach (var value in row.Features)
            {
                writer.Write(',');
                value.TryFormat(number, out var written, "R", CultureInfo.InvariantCulture);
                writer.Write(number[..written]);
            }
            writer.WriteLine();
        }
    }

    private static string Quote(string text) =>
        text.AsSpan().IndexOfAny(",\"\r\n") < 0 ? text : "\"" + text.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    private static List<FeatureRow> ReadCsv(string path)
    {
        using var reader = new StreamReader(path, Encoding.UTF8);
        var header = reader.ReadLine() ?? throw new InvalidDataException($"'{path}' is empty.");
        var columns = SplitCsv(header, path);
        if (columns.Count < 3 || columns[0] != PathColumn || columns[1] != LabelColumn)
            throw new InvalidDataException($"'{path}' does not start with the columns {PathColumn},{LabelColumn},f0,…");
        var featureSize = columns.Count - 2;
        var rows = new List<FeatureRow>();
        string? line;
        while ((line = reader.ReadLine()) is not null)
        {
            if (line.Length == 0)
                continue;
            var cells = SplitCsv(line, path);
            if (cells.Count != columns.Count)
                throw new InvalidDataException($"'{path}' row {rows.Count + 1} has {cells.Count} cells; {columns.Count} expected.");
            var features = new float[featureSize];
            for (var j = 0; j < featureSize; j++)
                features[j] = float.Parse(cells[j + 2], NumberStyles.Float, CultureInfo.InvariantCulture);
            rows.Add(new FeatureRow(cells[0], cells[1], features));
        }
        return rows;
    }

    private static List<string> SplitCsv(string line, string path)
    {
        var cells = new List<string>();
        var cell = new StringBuilder();
        var quoted = false;
        for (var i = 0; i < line.Length; i++)
        {
            var c = line[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < line.Length && line[i + 1] == '"')
                {
                    cell.Append('"');
                    i++;
                }
                else if (c == '"')
                    quoted = false;
                else
                    cell.Append(c);
            }
            else if (c == '"')
                quoted = true;
            else if (c == ',')
            {
                cells.Add(cell.ToString());
                cell.Clear();
            }
            else
                cell.Append(c);
        }
        if (quoted)
            throw new InvalidDataException($"'{path}' has an unterminated quoted cell (multi-line cells are not supported).");
        cells.Add(cell.ToString());
        return cells;
    }

    private static ParquetSchema Schema(int featureSize)
    {
        var fields = new List<Field> { new DataField<string>(PathColumn), new DataField<string>(LabelColumn) };
        for (var j = 0; j < featureSize; j++)
            fields.Add(new DataField<float>(FeatureColumn(j)));
        return new ParquetSchema(fields);
    }

    private static void WriteParquet(Stream stream, IReadOnlyList<FeatureRow> rows, int featureSize)
    {
        WriteParquetAsync(stream, rows, featureSize).GetAwaiter().GetResult();
    }

    private static async Task WriteParquetAsync(Stream stream, IReadOnlyList<FeatureRow> rows, int featureSize)
    {
        var schema = Schema(featureSize);
        var fields = schema.GetDataFields();
        await using var writer = await ParquetWriter.CreateAsync(schema, stream).ConfigureAwait(false);
        var column = new float[Math.Min(RowGroupSize, Math.Max(1, rows.Count))];
        for (var start = 0; start < rows.Count || (start == 0 && rows.Count == 0); start += RowGroupSize)
        {
            var count = Math.Min(RowGroupSize, rows.Count - start);
            using var group = writer.CreateRowGroup();
            await group.WriteAsync(fields[0], Enumerable.Range(start, count).Select(i => rows[i].Path).ToArray()).ConfigureAwait(false);
            await group.WriteAsync(fields[1], Enumerable.Range(start, count).Select(i => rows[i].Label).ToArray()).ConfigureAwait(false);
            for (var j = 0; j < featureSize; j++)
            {
                for (var i = 0; i < count; i++)
                    column[i] = rows[start + i].Features[j];
                await group.WriteAsync<float>(fields[j + 2], column.AsMemory(0, count)).ConfigureAwait(false);
            }
            if (rows.Count == 0)
                break;
        }
    }

    private static List<FeatureRow> ReadParquet(string path) => ReadParquetAsync(path).GetAwaiter().GetResult();

    private static async Task<List<FeatureRow>> ReadParquetAsync(string path)
    {
        await using var reader = await ParquetReader.CreateAsync(path).ConfigureAwait(false);
        var fields = reader.Schema.GetDataFields();
        if (fields.Length < 3 || fields[0].Name != PathColumn || fields[1].Name != LabelColumn)
            throw new InvalidDataException($"'{path}' does not start with the columns {PathColumn},{LabelColumn},f0,…");
        var featureSize = fields.Length - 2;
        var rows = new List<FeatureRow>();
        for (var g = 0; g < reader.RowGroupCount; g++)
        {
            using var group = reader.OpenRowGroupReader(g);
            var count = checked((int)group.RowCount);
            var paths = new string?[count];
            var labels = new string?[count];
            await group.ReadAsync(fields[0], paths.AsMemory()).ConfigureAwait(false);
            await group.ReadAsync(fields[1], labels.AsMemory()).ConfigureAwait(false);
            var vectors = new float[count][];
            for (var i = 0; i < count; i++)
                vectors[i] = new float[featureSize];
            var column = new float[count];
            for (var j = 0; j < featureSize; j++)
            {
                await group.ReadAsync<float>(fields[j + 2], column.AsMemory()).ConfigureAwait(false);
                for (var i = 0; i < count; i++)
                    vectors[i][j] = column[i];
            }
            for (var i = 0; i < count; i++)
                rows.Add(new FeatureRow(paths[i] ?? "", labels[i] ?? "", vectors[i]));
        }
        return rows;
    }
}
