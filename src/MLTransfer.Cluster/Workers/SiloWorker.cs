using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using MLTransfer.Cluster.Grains;
using MLTransfer.Cluster.Hosting;
using MLTransfer.Cluster.Jobs;
using Orleans.Runtime;

namespace MLTransfer.Cluster.Workers;

/// <summary>
/// The slots of one silo (a singleton of its services). Each slot loops: find a running job with a pending shard,
/// lease it, run the silo's <see cref="IShardProcessor"/> while reporting to the coordinator, then mark it done,
/// failed, or (when the silo stops) released.
/// </summary>
internal sealed class SiloWorker(
    IShardProcessor processor,
    IGrainFactory grains,
    ILocalSiloDetails silo,
    IOptions<WorkerOptions> options,
    ILogger<SiloWorker> logger)
{
    private readonly Lock _lock = new();
    private readonly WorkerOptions _options = options.Value;
    private readonly CancellationTokenSource _stop = new();
    private Task[] _slots = [];
    private int _shardsDone;

    public int ShardsDone => Volatile.Read(ref _shardsDone);

    /// <summary>Starts the slots once; later calls do nothing.</summary>
    public void Start()
    {
        lock (_lock)
        {
            if (_slots.Length > 0 || _stop.IsCancellationRequested)
                return;
            var here = silo.SiloAddress.ToParsableString();
            _slots = Enumerable.Range(0, Math.Max(1, _options.Slots))
                .Select(slot => Task.Run(() => RunSlot(grains, here, $"{silo.Name}#{slot}", _stop.Token)))
                .ToArray();
            logger.LogInformation("Worker on {Silo} started {Slots} slot(s) with {Threads} core(s) each", here, _slots.Length, _options.Threads);
        }
    }

    /// <summary>Stops the slots; running shards are released to their jobs.</summary>
    public async Task Drain()
    {
        await _stop.CancelAsync();
        Task[] slots;
        lock (_lock)
            slots = _slots;
        await Task.WhenAny(Task.WhenAll(slots), Task.Delay(_options.DrainTimeout));
    }

    private async Task RunSlot(IGrainFactory grains, string here, string worker, CancellationToken stop)
    {
        var registry = grains.GetGrain<IJobRegistryGrain>(0);
        var turn = 0;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                var lease = await FindWork(grains, registry, here, worker, turn++);
                if (lease is null)
                {
                    await Task.Delay(_options.IdlePoll, stop);
                    continue;
                }
                await RunShard(grains.GetGrain<IJobGrain>(lease.JobId), grains, lease, stop);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e)
            {
                // The coordinator or the registry was unreachable (for example its silo just died): try again shortly.
                logger.LogWarning("Worker {Worker}: {Error}", worker, e.Message);
                await Task.Delay(_options.IdlePoll, CancellationToken.None);
            }
        }
    }

    private static async Task<ShardLease?> FindWork(IGrainFactory grains, IJobRegistryGrain registry, string here, string worker, int turn)
    {
        var jobs = await registry.Active();
        for (var i = 0; i < jobs.Length; i++)
        {
            var lease = await grains.GetGrain<IJobGrain>(jobs[(turn + i) % jobs.Length]).Lease(here, worker);
            if (lease is not null)
                return lease;
        }
        return null;
    }

    private async Task RunShard(IJobGrain job, IGrainFactory grains, ShardLease lease, CancellationToken stop)
    {
        using var shard = CancellationTokenSource.CreateLinkedTokenSource(stop);
        Task<ShardResult> work;
        try
        {
            var input = await grains.GetGrain<IShardInputGrain>(ShardKeys.Input(lease.JobId, lease.Shard)).Get();
            work = processor.ProcessAsync(lease, input, shard.Token);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            work = Task.FromException<ShardResult>(e);
        }
        while (!work.IsCompleted)
        {
            await Task.WhenAny(work, Task.Delay(_options.HeartbeatPeriod, CancellationToken.None));
            if (work.IsCompleted || shard.IsCancellationRequested)
                continue;
            try
            {
                if (!await job.Heartbeat(lease.Shard, lease.Attempt))
                    await shard.CancelAsync();
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Coordinator unreachable for now: keep working; the part is idempotent.
            }
        }
        try
        {
            var result = await work;
            await Retry(() => job.Complete(lease.Shard, lease.Attempt, result));
            Interlocked.Increment(ref _shardsDone);
        }
        catch (OperationCanceledException) when (shard.IsCancellationRequested)
        {
            if (stop.IsCancellationRequested)
                await Retry(() => job.Release(lease.Shard, lease.Attempt));
        }
        catch (Exception e) when (IsClusterFault(e))
        {
            // A grain the shard needs (its stored input, typically) lived on a silo that just died and membership has
            // not declared it dead yet. That is not the shard's fault: give it back without counting a failure, and
            // wait a little so the grain can come back on a live silo before anyone leases the shard again.
            var message = OneLine(e);
            logger.LogWarning("Job {Job} shard {Shard} released on {Silo}, the cluster did not answer: {Error}", lease.JobId, lease.Shard, silo.Name, message);
            await Retry(() => job.ReleaseAfterClusterFault(lease.Shard, lease.Attempt, message));
            await Task.Delay(_options.IdlePoll, CancellationToken.None);
        }
        catch (Exception e)
        {
            var message = OneLine(e);
            logger.LogWarning("Job {Job} shard {Shard} failed on {Silo}: {Error}", lease.JobId, lease.Shard, silo.Name, message);
            await Retry(() => job.Fail(lease.Shard, lease.Attempt, message));
        }
    }

    private static async Task Retry(Func<Task> call)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await call();
                return;
            }
            catch (Exception) when (attempt < 5)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(500 * attempt));
            }
            catch (Exception)
            {
                // Given up: the coordinator takes the shard back by membership or lease timeout.
                return;
            }
        }
    }

    /// <summary>Errors of the cluster itself (a silo unreachable, a message rejected or timed out), as opposed to the shard's work.</summary>
    internal static bool IsClusterFault(Exception e)
    {
        while (e is AggregateException { InnerException: not null } aggregate)
            e = aggregate.InnerException!;
        return e is OrleansException or TimeoutException;
    }

    internal static string OneLine(Exception e)
    {
        var inner = e;
        while (inner is AggregateException { InnerException: not null })
            inner = inner.InnerException!;
        return inner.Message.ReplaceLineEndings(" ");
    }
}
