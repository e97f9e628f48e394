using System.Globalization;

namespace MLTransfer.Cluster.Jobs;

/// <summary>Names derived from a job and a shard number: grain keys and part files.</summary>
public static class ShardKeys
{
    /// <summary>The key of a shard's <see cref="Grains.IShardInputGrain"/>.</summary>
    /// <param name="jobId">The job.</param>
    /// <param name="shard">The shard.</param>
    public static string Input(string jobId, int shard) => jobId + "/" + shard.ToString(CultureInfo.InvariantCulture);

    /// <summary>The Parquet part of a shard: <c>part-{shard:D6}.parquet</c>; a retried shard writes the same name.</summary>
    /// <param name="outputDirectory">The job's output folder.</param>
    /// <param name="shard">The shard.</param>
    public static string Part(string outputDirectory, int shard) =>
        Path.Combine(outputDirectory, "part-" + shard.ToString("D6", CultureInfo.InvariantCulture) + ".parquet");
}
