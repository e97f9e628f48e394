namespace MLTransfer.Cluster.Hosting;

/// <summary>How a silo works on shards and how the coordinator watches leases.</summary>
public sealed class WorkerOptions
{
    /// <summary>Name of the grain storage provider holding job state.</summary>
    public const string StorageName = "mltransfer";

    /// <summary>Cores the silo's engine uses (inference threads; decode threads are half of them). The default value is the machine's core count.</summary>
    public int Threads { get; set; } = Environment.ProcessorCount;

    /// <summary>Worker slots per silo, each running one shard at a time with <see cref="Threads"/> cores. The default value is 1.</summary>
    public int Slots { get; set; } = 1;

    /// <summary>How often a busy slot reports to its job's coordinator. The default value is 2 seconds.</summary>
    public TimeSpan HeartbeatPeriod { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>A lease whose worker has not reported for this long goes back to pending (membership usually acts first). The default value is 60 seconds.</summary>
    public TimeSpan LeaseTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>How often the coordinator compares running shards with cluster membership. The default value is 1 second.</summary>
    public TimeSpan MembershipCheckPeriod { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How long an idle slot waits before looking for work again. The default value is 500 ms.</summary>
    public TimeSpan IdlePoll { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Failed attempts of one shard after which the job fails (bad images are listed, not failures; a silo that cannot be reached releases the shard without counting). The default value is 3.</summary>
    public int MaxShardFailures { get; set; } = 3;

    /// <summary>Releases of one shard after cluster faults (a silo that cannot be reached) after which the job fails: the cluster stays broken. The default value is 20.</summary>
    public int MaxClusterFaults { get; set; } = 20;

    /// <summary>How long a stopping silo waits for its slots to give their shards back. The default value is 30 seconds.</summary>
    public TimeSpan DrainTimeout { get; set; } = TimeSpan.FromSeconds(30);
}
