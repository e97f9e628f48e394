using MLTransfer.Cluster.Grains;
using MLTransfer.Cluster.Workers;
using Orleans.Runtime;

namespace MLTransfer.Cluster.Hosting;

/// <summary>
/// Puts a worker grain on every silo: activates the silo's own <see cref="IWorkerGrain"/> when the silo becomes active,
/// and drains it first thing when the silo stops (running shards are released while the cluster is still reachable).
/// </summary>
internal sealed class WorkerStartup(IGrainFactory grains, ILocalSiloDetails silo, SiloWorker worker) : ILifecycleParticipant<ISiloLifecycle>
{
    public void Participate(ISiloLifecycle lifecycle) =>
        lifecycle.Subscribe(nameof(WorkerStartup), ServiceLifecycleStage.Active, Start, Stop);

    private IWorkerGrain Worker => grains.GetGrain<IWorkerGrain>(silo.SiloAddress.ToParsableString());

    private Task Start(CancellationToken cancellationToken) => Worker.Start();

    private async Task Stop(CancellationToken cancellationToken)
    {
        try
        {
            await worker.Drain().WaitAsync(cancellationToken);
        }
        catch (Exception e) when (e is OperationCanceledException or TimeoutException or OrleansException)
        {
            // Stopping anyway: the coordinators take the shards back when membership declares this silo dead.
        }
    }
}
