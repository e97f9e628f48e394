namespace MLTransfer.Cluster.Jobs;

/// <summary>Where a job stands.</summary>
public enum JobPhase
{
    /// <summary>Never started.</summary>
    None,
    /// <summary>Shards are pending or running.</summary>
    Running,
    /// <summary>Every shard is done.</summary>
    Completed,
    /// <summary>Cancelled; a new start resumes it (done shards are kept).</summary>
    Cancelled,
    /// <summary>A shard failed too often (for example the output folder cannot be written); see the error.</summary>
    Failed,
}

/// <summary>Where a shard stands.</summary>
public enum ShardPhase
{
    /// <summary>Waiting for a worker.</summary>
    Pending,
    /// <summary>Leased to a worker slot.</summary>
    Running,
    /// <summary>Its part is written.</summary>
    Done,
}

/// <summary>One shard's entry in the job's persistent state.</summary>
[GenerateSerializer]
public sealed class ShardEntry
{
    /// <summary>Where the shard stands.</summary>
    [Id(0)] public ShardPhase Phase { get; set; }

    /// <summary>The silo running it (<c>SiloAddress.ToParsableString()</c>), or null.</summary>
    [Id(1)] public string? Silo { get; set; }

    /// <summary>The worker slot running it, or null.</summary>
    [Id(2)] public string? Worker { get; set; }

    /// <summary>Attempts made so far.</summary>
    [Id(3)] public int Attempt { get; set; }

    /// <summary>When the current lease lapses unless the worker reports in (UTC).</summary>
    [Id(4)] public DateTime LeaseExpiresUtc { get; set; }

    /// <summary>Failed attempts (errors other than bad images).</summary>
    [Id(5)] public int Failures { get; set; }

    /// <summary>The last failure's message.</summary>
    [Id(6)] public string? LastError { get; set; }

    /// <summary>The result, once done.</summary>
    [Id(7)] public int Images { get; set; }

    /// <summary>Rejected images, once done.</summary>
    [Id(8)] public int Rejected { get; set; }

    /// <summary>Images served from the cache, once done.</summary>
    [Id(9)] public int FromCache { get; set; }

    /// <summary>Attempts given back because the cluster failed them (not counted in <see cref="Failures"/>).</summary>
    [Id(10)] public int ClusterFaults { get; set; }
}

/// <summary>The persistent state of a job grain (stored with the cluster's grain storage provider).</summary>
[GenerateSerializer]
public sealed class JobState
{
    /// <summary>The spec.</summary>
    [Id(0)] public JobSpec? Spec { get; set; }

    /// <summary>Where the job stands.</summary>
    [Id(1)] public JobPhase Phase { get; set; }

    /// <summary>Images in the job.</summary>
    [Id(2)] public int ImageCount { get; set; }

    /// <summary>One entry per shard.</summary>
    [Id(3)] public List<ShardEntry> Shards { get; set; } = [];

    /// <summary>Shards taken back from dead or silent workers and run again.</summary>
    [Id(4)] public int Reassigned { get; set; }

    /// <summary>Why the job failed.</summary>
    [Id(5)] public string? Error { get; set; }

    /// <summary>When the job was (re)started (UTC).</summary>
    [Id(6)] public DateTime StartedUtc { get; set; }

    /// <summary>When the job completed, failed or was cancelled (UTC).</summary>
    [Id(7)] public DateTime? FinishedUtc { get; set; }
}

/// <summary>A job's progress, as the client shows it.</summary>
[GenerateSerializer, Immutable]
public sealed record JobStatus
{
    /// <summary>Where the job stands.</summary>
    [Id(0)] public JobPhase Phase { get; init; }

    /// <summary>Shards in the job.</summary>
    [Id(1)] public int Shards { get; init; }

    /// <summary>Shards done.</summary>
    [Id(2)] public int ShardsDone { get; init; }

    /// <summary>Shards leased to workers now.</summary>
    [Id(3)] public int ShardsRunning { get; init; }

    /// <summary>Images in the job.</summary>
    [Id(4)] public int Images { get; init; }

    /// <summary>Images in done shards.</summary>
    [Id(5)] public int ImagesDone { get; init; }

    /// <summary>Rejected images in done shards.</summary>
    [Id(6)] public int Rejected { get; init; }

    /// <summary>Images served from the bottleneck cache in done shards.</summary>
    [Id(7)] public int FromCache { get; init; }

    /// <summary>Shards taken back from dead or silent workers.</summary>
    [Id(8)] public int Reassigned { get; init; }

    /// <summary>Distinct silos running shards now.</summary>
    [Id(9)] public int BusySilos { get; init; }

    /// <summary>Why the job failed, or null.</summary>
    [Id(10)] public string? Error { get; init; }

    /// <summary>Attempts made in total (shards run once each when nothing failed).</summary>
    [Id(11)] public int Attempts { get; init; }
}
