using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using MLTransfer.Cluster.Hosting;
using MLTransfer.Cluster.Jobs;
using Orleans.Runtime;

namespace MLTransfer.Cluster.Grains;

/// <summary>The coordinator of one job; see <see cref="IJobGrain"/>.</summary>
internal sealed class JobGrain(
    [PersistentState("job", WorkerOptions.StorageName)] IPersistentState<JobState> state,
    IClusterMembershipService membership,
    IOptions<WorkerOptions> options,
    ILogger<JobGrain> logger) : Grain, IJobGrain
{
    private readonly WorkerOptions _options = options.Value;
    private IGrainTimer? _timer;
    private int _cursor;

    private JobState Job => state.State;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        // Leases are not persisted on every heartbeat: give running shards a fresh lease after a (re)activation.
        var until = DateTime.UtcNow + _options.LeaseTimeout;
        foreach (var shard in Job.Shards.Where(s => s.Phase == ShardPhase.Running))
            shard.LeaseExpiresUtc = until;
        if (Job.Phase == JobPhase.Running)
            StartTimer();
        return Task.CompletedTask;
    }

    public async Task<JobStatus> Start(JobSpec spec, int shardCount, int imageCount)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentOutOfRangeException.ThrowIfLessThan(shardCount, 1);
        if (Job.Phase == JobPhase.None)
        {
            Job.Spec = spec;
            Job.ImageCount = imageCount;
            Job.Shards = Enumerable.Range(0, shardCount).Select(_ => new ShardEntry()).ToList();
        }
        else if (Job.Spec != spec || Job.Shards.Count != shardCount || Job.ImageCount != imageCount)
            throw new InvalidOperationException($"Job '{this.GetPrimaryKeyString()}' exists with another spec or shard count.");
        if (Job.Phase is JobPhase.Running or JobPhase.Completed)
            return Status();
        foreach (var shard in Job.Shards.Where(s => s.Phase != ShardPhase.Done))
        {
            shard.Phase = ShardPhase.Pending;
            shard.Failures = shard.ClusterFaults = 0;
            shard.Silo = shard.Worker = null;
        }
        Job.Phase = JobPhase.Running;
        Job.Error = null;
        Job.StartedUtc = DateTime.UtcNow;
        Job.FinishedUtc = null;
        await state.WriteStateAsync();
        await Registry.Add(this.GetPrimaryKeyString());
        StartTimer();
        logger.LogInformation("Job {Job} running: {Shards} shards, {Images} images", this.GetPrimaryKeyString(), shardCount, imageCount);
        if (Job.Shards.All(s => s.Phase == ShardPhase.Done))
            await Finish(JobPhase.Completed, null);
        return Status();
    }

    public async Task<ShardLease?> Lease(string silo, string worker)
    {
        if (Job.Phase != JobPhase.Running)
            return null;
        await TakeBackLostShards();
        var count = Job.Shards.Count;
        for (var i = 0; i < count; i++)
        {
            var index = (_cursor + i) % count;
            var shard = Job.Shards[index];
            if (shard.Phase != ShardPhase.Pending)
                continue;
            _cursor = (index + 1) % count;
            shard.Phase = ShardPhase.Running;
            shard.Silo = silo;
            shard.Worker = worker;
            shard.Attempt++;
            shard.LeaseExpiresUtc = DateTime.UtcNow + _options.LeaseTimeout;
            await state.WriteStateAsync();
            return new ShardLease { JobId = this.GetPrimaryKeyString(), Shard = index, Attempt = shard.Attempt, Spec = Job.Spec! };
        }
        return null;
    }

    public Task<bool> Heartbeat(int shard, int attempt)
    {
        if (Job.Phase != JobPhase.Running || !TryGetShard(shard, out var entry) || entry.Phase != ShardPhase.Running || entry.Attempt != attempt)
            return Task.FromResult(false);
        entry.LeaseExpiresUtc = DateTime.UtcNow + _options.LeaseTimeout;
        return Task.FromResult(true);
    }

    public async Task Complete(int shard, int attempt, ShardResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        if (!TryGetShard(shard, out var entry) || entry.Phase == ShardPhase.Done)
            return;
        entry.Phase = ShardPhase.Done;
        entry.Silo = entry.Worker = null;
        entry.Images = result.Images;
        entry.Rejected = result.Rejected;
        entry.FromCache = result.FromCache;
        if (Job.Phase == JobPhase.Running && Job.Shards.All(s => s.Phase == ShardPhase.Done))
            await Finish(JobPhase.Completed, null);
        else
            await state.WriteStateAsync();
    }

    public async Task Release(int shard, int attempt)
    {
        if (TakeBack(shard, attempt) is not null)
            await state.WriteStateAsync();
    }

    public async Task Fail(int shard, int attempt, string error)
    {
        if (TakeBack(shard, attempt) is not { } entry)
            return;
        logger.LogWarning("Job {Job} shard {Shard} attempt {Attempt} failed: {Error}", this.GetPrimaryKeyString(), shard, attempt, error);
        await CountAgainstLimit(entry, error, ++entry.Failures, _options.MaxShardFailures, $"shard {shard} failed {entry.Failures} times: {error}");
    }

    public async Task ReleaseAfterClusterFault(int shard, int attempt, string error)
    {
        if (TakeBack(shard, attempt) is not { } entry)
            return;
        await CountAgainstLimit(entry, error, ++entry.ClusterFaults, _options.MaxClusterFaults,
            $"shard {shard} could not run {entry.ClusterFaults} times, the cluster did not answer: {error}");
    }

    // The running attempt `attempt` of `shard` gives its shard back (pending, no silo); null when that lease is not current.
    private ShardEntry? TakeBack(int shard, int attempt)
    {
        if (!TryGetShard(shard, out var entry) || entry.Phase != ShardPhase.Running || entry.Attempt != attempt)
            return null;
        entry.Phase = ShardPhase.Pending;
        entry.Silo = entry.Worker = null;
        return entry;
    }

    // Records a given-back shard's error; the job fails once `count` reaches `limit`, otherwise the state is saved.
    private async Task CountAgainstLimit(ShardEntry entry, string error, int count, int limit, string failure)
    {
        entry.LastError = error;
        if (count >= limit && Job.Phase == JobPhase.Running)
            await Finish(JobPhase.Failed, failure);
        else
            await state.WriteStateAsync();
    }

    public async Task Cancel()
    {
        if (Job.Phase != JobPhase.Running)
            return;
        foreach (var shard in Job.Shards.Where(s => s.Phase == ShardPhase.Running))
        {
            shard.Phase = ShardPhase.Pending;
            shard.Silo = shard.Worker = null;
        }
        await Finish(JobPhase.Cancelled, null);
    }

    public Task<JobStatus> GetStatus() => Task.FromResult(Status());

    private IJobRegistryGrain Registry => GrainFactory.GetGrain<IJobRegistryGrain>(0);

    private bool TryGetShard(int shard, out ShardEntry entry)
    {
        entry = null!;
        if (shard < 0 || shard >= Job.Shards.Count)
            return false;
        entry = Job.Shards[shard];
        return true;
    }

    private void StartTimer()
    {
        _timer ??= this.RegisterGrainTimer(TakeBackLostShards, new GrainTimerCreationOptions
        {
            DueTime = _options.MembershipCheckPeriod,
            Period = _options.MembershipCheckPeriod,
            KeepAlive = true,
        });
    }

    /// <summary>Running shards whose silo membership declares dead, or whose lease lapsed, go back to pending.</summary>
    private async Task TakeBackLostShards()
    {
        if (Job.Phase != JobPhase.Running)
            return;
        var snapshot = membership.CurrentSnapshot;
        var now = DateTime.UtcNow;
        var changed = false;
        foreach (var shard in Job.Shards)
        {
            if (shard.Phase != ShardPhase.Running)
                continue;
            var dead = shard.Silo is { } silo && snapshot.GetSiloStatus(SiloAddress.FromParsableString(silo)) == SiloStatus.Dead;
            if (!dead && now < shard.LeaseExpiresUtc)
                continue;
            logger.LogWarning("Job {Job}: shard on {Silo} taken back ({Reason})", this.GetPrimaryKeyString(), shard.Silo, dead ? "silo dead" : "lease lapsed");
            shard.Phase = ShardPhase.Pending;
            shard.Silo = shard.Worker = null;
            Job.Reassigned++;
            changed = true;
        }
        if (changed)
            await state.WriteStateAsync();
    }

    private async Task Finish(JobPhase phase, string? error)
    {
        Job.Phase = phase;
        Job.Error = error;
        Job.FinishedUtc = DateTime.UtcNow;
        await state.WriteStateAsync();
        await Registry.Remove(this.GetPrimaryKeyString());
        _timer?.Dispose();
        _timer = null;
        logger.LogInformation("Job {Job} {Phase}", this.GetPrimaryKeyString(), phase);
    }

    private JobStatus Status()
    {
        var running = Job.Shards.Where(s => s.Phase == ShardPhase.Running).ToList();
        var done = Job.Shards.Where(s => s.Phase == ShardPhase.Done).ToList();
        return new JobStatus
        {
            Phase = Job.Phase,
            Shards = Job.Shards.Count,
            ShardsDone = done.Count,
            ShardsRunning = running.Count,
            Images = Job.ImageCount,
            ImagesDone = done.Sum(s => s.Images),
            Rejected = done.Sum(s => s.Rejected),
            FromCache = done.Sum(s => s.FromCache),
            Reassigned = Job.Reassigned,
            BusySilos = running.Select(s => s.Silo).Distinct().Count(),
            Error = Job.Error,
            Attempts = Job.Shards.Sum(s => s.Attempt),
        };
    }
}
