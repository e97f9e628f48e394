using Microsoft.Extensions.DependencyInjection;
using MLTransfer.Cluster.Hosting;
using MLTransfer.Cluster.Workers;
using Orleans.Configuration;
using Orleans.Storage;
using Orleans.TestingHost;

namespace MLTransfer.Cluster.Tests.TestSupport;

/// <summary>In-process Orleans test clusters (in-memory transport) running the real grains with fast failure detection.</summary>
public static class TestClusters
{
    /// <summary>Worker timings short enough for tests.</summary>
    public static WorkerOptions FastWorkers(int threads = 1) => new()
    {
        Threads = threads,
        HeartbeatPeriod = TimeSpan.FromMilliseconds(200),
        IdlePoll = TimeSpan.FromMilliseconds(50),
        MembershipCheckPeriod = TimeSpan.FromMilliseconds(200),
        LeaseTimeout = TimeSpan.FromSeconds(30),
        DrainTimeout = TimeSpan.FromSeconds(10),
    };

    /// <summary>Starts a cluster of <paramref name="silos"/> silos whose workers use <see cref="FakeProcessor.Current"/>, or the engine when <paramref name="engine"/> is set.</summary>
    public static async Task<TestCluster> StartAsync(int silos, bool engine = false)
    {
        SharedMemoryStorage.Current = new SharedMemoryStorage();
        var builder = new TestClusterBuilder((short)silos);
        builder.Options.BaseSiloPort = 11180;
        builder.Options.BaseGatewayPort = 30180;
        builder.Options.ConfigureFileLogging = false;
        builder.AddSiloBuilderConfigurator<SiloConfigurator>();
        if (engine)
            builder.AddSiloBuilderConfigurator<EngineConfigurator>();
        var cluster = builder.Build();
        await cluster.DeployAsync();
        return cluster;
    }

    private sealed class SiloConfigurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder silo)
        {
            silo.Services.AddKeyedSingleton<IGrainStorage>(WorkerOptions.StorageName,
                (sp, _) => SharedMemoryStorage.Current.For(sp.GetRequiredService<IGrainStorageSerializer>()));
            silo.Services.AddSingleton<IShardProcessor, CurrentFakeProcessor>();
            silo.Configure<ClusterMembershipOptions>(m =>
            {
                m.ProbeTimeout = TimeSpan.FromSeconds(1);
                m.NumMissedProbesLimit = 2;
            });
            silo.AddMLTransferWorkers(FastWorkers());
        }
    }

    /// <summary>Forwards to <see cref="FakeProcessor.Current"/> at call time, so each test can set its own.</summary>
    private sealed class CurrentFakeProcessor(Orleans.Runtime.ILocalSiloDetails silo) : IShardProcessor
    {
        public Task<Jobs.ShardResult> ProcessAsync(Jobs.ShardLease lease, Jobs.ShardInput input, CancellationToken cancellationToken) =>
            FakeProcessor.Current.ProcessAsync(silo.SiloAddress, lease, input, cancellationToken);
    }

    private sealed class EngineConfigurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder silo) =>
            silo.Services.AddSingleton<IShardProcessor>(sp => ActivatorUtilities.CreateInstance<EngineShardProcessor>(sp));
    }
}
