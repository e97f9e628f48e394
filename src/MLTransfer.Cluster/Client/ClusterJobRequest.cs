using MLTransfer.Cluster.Jobs;
using MLTransfer.Data;

namespace MLTransfer.Cluster.Client;

/// <summary>A job to submit: what to produce and for which images.</summary>
public sealed class ClusterJobRequest
{
    /// <summary>What to produce and where (<see cref="JobSpec.OutputDirectory"/> must be set).</summary>
    public required JobSpec Spec { get; init; }

    /// <summary>The images (paths readable by every node) and their labels (empty when unlabelled).</summary>
    public required IReadOnlyList<ImageExample> Images { get; init; }

    /// <summary>
    /// Images per shard; 0 means <see cref="DefaultShardSize"/> of the image count: 1,000, fewer for small jobs so that
    /// there are at least 64 shards to balance and reassign (at least 10 images each). The default value is 0.
    /// </summary>
    public int ShardSize { get; init; }

    /// <summary>How often the client polls the coordinator for progress. The default value is 500 ms.</summary>
    public TimeSpan PollPeriod { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>How long the client keeps retrying while no silo answers before it gives up (the job goes on). The default value is 2 minutes.</summary>
    public TimeSpan UnreachableTimeout { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>The shard size used when <see cref="ShardSize"/> is 0: min(1,000, max(10, ⌈images / 64⌉)).</summary>
    /// <param name="images">Images in the job.</param>
    public static int DefaultShardSize(int images) => Math.Min(1000, Math.Max(10, (images + 63) / 64));

    /// <summary>The shard size this request uses.</summary>
    public int EffectiveShardSize => ShardSize > 0 ? ShardSize : DefaultShardSize(Images.Count);
}

/// <summary>Progress of a running job as the client sees it.</summary>
/// <param name="JobId">The job.</param>
/// <param name="Status">The coordinator's view.</param>
/// <param name="NodesAlive">Silos active in the cluster's membership.</param>
/// <param name="Elapsed">Time since the client submitted (or re-attached to) the job.</param>
public sealed record ClusterJobProgress(string JobId, JobStatus Status, int NodesAlive, TimeSpan Elapsed)
{
    /// <summary>Images per second since the client attached (images in shards done during this run).</summary>
    public double ImagesPerSecond { get; init; }
}

/// <summary>A finished job.</summary>
/// <param name="JobId">The job.</param>
/// <param name="Status">Its final status.</param>
/// <param name="Elapsed">Time from submission to completion.</param>
/// <param name="OutputDirectory">The folder of Parquet parts.</param>
/// <param name="Resumed">Whether the job existed already (a rerun that resumed or re-attached to it).</param>
public sealed record ClusterJobOutcome(string JobId, JobStatus Status, TimeSpan Elapsed, string OutputDirectory, bool Resumed);
