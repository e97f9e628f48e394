using MLTransfer.Cluster.Jobs;

namespace MLTransfer.Cluster.Workers;

/// <summary>
/// Turns one shard into its Parquet part. A silo has one (<see cref="EngineShardProcessor"/> by default, registered in
/// its services); it must write the part atomically under <see cref="ShardKeys.Part"/> so that a retried shard
/// overwrites it, and treat unreadable images as rejected rows, never as failures.
/// </summary>
public interface IShardProcessor
{
    /// <summary>Processes a shard and writes its part.</summary>
    /// <param name="lease">The job, shard and spec.</param>
    /// <param name="input">The shard's images.</param>
    /// <param name="cancellationToken">Stops the work (job cancelled, shard taken back, silo stopping).</param>
    Task<ShardResult> ProcessAsync(ShardLease lease, ShardInput input, CancellationToken cancellationToken);
}
