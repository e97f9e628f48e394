using MLTransfer.Cluster.Jobs;
using Parquet.Serialization;

namespace MLTransfer.Cluster.Output;

/// <summary>
/// Reads and writes the Parquet parts of a job's output folder: one <c>part-NNNNNN.parquet</c> per shard, all with the
/// same schema, so that the folder reads as one table (Parquet.Net, DuckDB <c>read_parquet('dir/*.parquet')</c>,
/// pyarrow/pandas <c>read_parquet(dir)</c>, which skip the <c>_job.json</c> manifest and hidden temporary files).
/// </summary>
public static class PartFiles
{
    /// <summary>Writes a part atomically (hidden temporary file in the same folder, then rename over the part).</summary>
    /// <typeparam name="TRow"><see cref="FeaturePartRow"/> or <see cref="PredictionPartRow"/>.</typeparam>
    /// <param name="path">The part's path (<see cref="ShardKeys.Part"/>).</param>
    /// <param name="rows">The rows, one per image of the shard.</param>
    public static void Write<TRow>(string path, IReadOnlyList<TRow> rows) where TRow : class, new() =>
        AtomicFile.Write(path, stream => ParquetSerializer.SerializeAsync(rows, stream).GetAwaiter().GetResult());

    /// <summary>Reads one part.</summary>
    /// <typeparam name="TRow">The row type the part was written with.</typeparam>
    /// <param name="path">The part.</param>
    public static IList<TRow> Read<TRow>(string path) where TRow : class, new()
    {
        using var stream = File.OpenRead(path);
        return ParquetSerializer.DeserializeAsync<TRow>(stream).GetAwaiter().GetResult().Data;
    }

    /// <summary>The parts of an output folder in shard order.</summary>
    /// <param name="outputDirectory">The folder.</param>
    public static IReadOnlyList<string> List(string outputDirectory) =>
        Directory.EnumerateFiles(outputDirectory, "part-*.parquet").Order(StringComparer.Ordinal).ToList();

    /// <summary>Every row of an output folder, part after part: the folder as one table.</summary>
    /// <typeparam name="TRow">The row type.</typeparam>
    /// <param name="outputDirectory">The folder.</param>
    public static IEnumerable<TRow> ReadAll<TRow>(string outputDirectory) where TRow : class, new() =>
        List(outputDirectory).SelectMany(Read<TRow>);

    /// <summary>Deletes hidden temporary files that killed writers left in an output folder.</summary>
    /// <param name="outputDirectory">The folder.</param>
    /// <returns>How many were deleted.</returns>
    public static int DeleteStaleTemporaries(string outputDirectory)
    {
        var deleted = 0;
        foreach (var file in Directory.EnumerateFiles(outputDirectory, ".part-*.tmp"))
        {
            try
            {
                File.Delete(file);
                deleted++;
            }
            catch (IOException)
            {
                // Another writer may still hold it; it is hidden from readers either way.
            }
        }
        return deleted;
    }
}
