using MLTransfer.Cluster.Jobs;

namespace MLTransfer.Cluster.Grains;

/// <summary>
/// The coordinator of one job (key: the job id). Its state — the spec and every shard's phase (pending, running on
/// silo X, done) — is persisted with the cluster's grain storage, so a restarted coordinator or client resumes the job.
/// Shards leased to a silo that membership declares dead, or whose worker stops reporting in, go back to pending.
/// </summary>
public interface IJobGrain : IGrainWithStringKey
{
    /// <summary>
    /// Starts the job, or resumes it: a new job gets <paramref name="shardCount"/> pending shards; a cancelled or failed
    /// one runs again with its done shards kept; a running or completed one is left as it is.
    /// </summary>
    /// <param name="spec">What to produce.</param>
    /// <param name="shardCount">Number of shards (their inputs are stored by <see cref="IShardInputGrain"/>).</param>
    /// <param name="imageCount">Images in the job.</param>
    Task<JobStatus> Start(JobSpec spec, int shardCount, int imageCount);

    /// <summary>Hands a pending shard to a worker slot, or returns null when none is pending.</summary>
    /// <param name="silo">The worker's silo (<c>SiloAddress.ToParsableString()</c>).</param>
    /// <param name="worker">The worker slot's name.</param>
    Task<ShardLease?> Lease(string silo, string worker);

    /// <summary>Keeps a lease alive; false tells the worker to stop (job cancelled or failed, shard taken back or done).</summary>
    /// <param name="shard">The shard.</param>
    /// <param name="attempt">The lease's attempt.</param>
    Task<bool> Heartbeat(int shard, int attempt);

    /// <summary>Marks a shard done (its part is written). Idempotent: a shard is counted once, whichever attempt reports.</summary>
    /// <param name="shard">The shard.</param>
    /// <param name="attempt">The lease's attempt.</param>
    /// <param name="result">What the part holds.</param>
    Task Complete(int shard, int attempt, ShardResult result);

    /// <summary>Gives a shard back unfinished (its silo is stopping); it becomes pending.</summary>
    /// <param name="shard">The shard.</param>
    /// <param name="attempt">The lease's attempt.</param>
    Task Release(int shard, int attempt);

    /// <summary>Reports an error that is not a bad image (for example an unwritable output); the shard is retried, and the job fails after too many.</summary>
    /// <param name="shard">The shard.</param>
    /// <param name="attempt">The lease's attempt.</param>
    /// <param name="error">One-line reason.</param>
    Task Fail(int shard, int attempt, string error);

    /// <summary>
    /// Gives a shard back because the cluster itself failed it (a grain it needs sat on a silo that just died): it becomes
    /// pending without counting a failure of its work, and the job fails only after
    /// <see cref="Hosting.WorkerOptions.MaxClusterFaults"/> such releases of one shard (a cluster that stays broken).
    /// </summary>
    /// <param name="shard">The shard.</param>
    /// <param name="attempt">The lease's attempt.</param>
    /// <param name="error">One-line reason.</param>
    Task ReleaseAfterClusterFault(int shard, int attempt, string error);

    /// <summary>Cancels the job: nothing more is leased and running workers are told to stop at their next heartbeat.</summary>
    Task Cancel();

    /// <summary>The job's progress.</summary>
    Task<JobStatus> GetStatus();
}

/// <summary>The images of one shard (key: <c>{jobId}/{shard}</c>), stored once when the job is submitted.</summary>
public interface IShardInputGrain : IGrainWithStringKey
{
    /// <summary>Stores the shard's images (idempotent).</summary>
    /// <param name="input">The images.</param>
    Task Define(ShardInput input);

    /// <summary>The shard's images.</summary>
    Task<ShardInput> Get();

    /// <summary>Deletes the stored images once the job is over.</summary>
    Task Clear();
}

/// <summary>The jobs workers look for shards in (key 0).</summary>
public interface IJobRegistryGrain : IGrainWithIntegerKey
{
    /// <summary>Adds a running job.</summary>
    /// <param name="jobId">The job.</param>
    Task Add(string jobId);

    /// <summary>Removes a job that is over.</summary>
    /// <param name="jobId">The job.</param>
    Task Remove(string jobId);

    /// <summary>The running jobs.</summary>
    Task<string[]> Active();
}

/// <summary>The worker of one silo (key: the silo's address), placed on that silo; runs its slots' shard loops.</summary>
public interface IWorkerGrain : IGrainWithStringKey
{
    /// <summary>Starts the slots if they are not running.</summary>
    Task Start();

    /// <summary>Stops the slots: running shards are given back to their jobs.</summary>
    Task Drain();

    /// <summary>Shards this worker finished since it started.</summary>
    Task<int> ShardsDone();
}
