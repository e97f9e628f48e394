using MLTransfer.Cluster.Workers;
using Orleans.Placement;
using Orleans.Runtime;

namespace MLTransfer.Cluster.Grains;

/// <summary>
/// The worker of one silo; see <see cref="IWorkerGrain"/>. The grain is the silo's addressable worker; its slots live in
/// the silo's <see cref="SiloWorker"/>, so a re-activation of the grain (for example after the grain directory changed
/// when another silo died) never stops the work.
/// </summary>
[PreferLocalPlacement]
internal sealed class WorkerGrain(SiloWorker worker, ILocalSiloDetails silo) : Grain, IWorkerGrain
{
    public Task Start()
    {
        var here = silo.SiloAddress.ToParsableString();
        if (this.GetPrimaryKeyString() != here)
            throw new InvalidOperationException($"Worker '{this.GetPrimaryKeyString()}' was placed on silo {here}.");
        worker.Start();
        return Task.CompletedTask;
    }

    public Task Drain() => worker.Drain();

    public Task<int> ShardsDone() => Task.FromResult(worker.ShardsDone);
}
