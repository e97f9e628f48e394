using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using MLTransfer.Cluster.Workers;
using Orleans.Configuration;
using Orleans.Runtime;
using StackExchange.Redis;

namespace MLTransfer.Cluster.Hosting;

/// <summary>
/// Builds MLTransfer silos and clients: Orleans with Redis membership (a dead silo is detected by its peers' probes and
/// recorded in Redis) and Redis grain storage for job state, plus a worker grain on every silo.
/// </summary>
public static class ClusterHost
{
    /// <summary>Adds what a silo needs to work on jobs (any membership and storage): the shard processor, worker options and the per-silo worker.</summary>
    /// <param name="silo">The silo builder.</param>
    /// <param name="worker">Worker options.</param>
    public static ISiloBuilder AddMLTransferWorkers(this ISiloBuilder silo, WorkerOptions worker)
    {
        ArgumentNullException.ThrowIfNull(silo);
        ArgumentNullException.ThrowIfNull(worker);
        silo.Services.Configure<WorkerOptions>(o =>
        {
            o.Threads = worker.Threads;
            o.Slots = worker.Slots;
            o.HeartbeatPeriod = worker.HeartbeatPeriod;
            o.LeaseTimeout = worker.LeaseTimeout;
            o.MembershipCheckPeriod = worker.MembershipCheckPeriod;
            o.IdlePoll = worker.IdlePoll;
            o.MaxShardFailures = worker.MaxShardFailures;
            o.MaxClusterFaults = worker.MaxClusterFaults;
            o.DrainTimeout = worker.DrainTimeout;
        });
        silo.Services.TryAddSingleton<IShardProcessor, EngineShardProcessor>();
        silo.Services.AddSingleton<SiloWorker>();
        silo.Services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>, WorkerStartup>();
        return silo;
    }

    /// <summary>Builds a silo host (not started).</summary>
    /// <param name="options">Silo options.</param>
    /// <param name="configureServices">Changes to the silo's services (for example another <see cref="IShardProcessor"/>); may be null.</param>
    /// <param name="logLevel">Least level logged to the console. The default value is <see cref="LogLevel.Warning"/>.</param>
    public static IHost BuildSilo(ClusterSiloOptions options, Action<IServiceCollection>? configureServices = null, LogLevel logLevel = LogLevel.Warning)
    {
        ArgumentNullException.ThrowIfNull(options);
        var redis = ParseRedis(options.Redis);
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders().AddSimpleConsole(c => c.SingleLine = true).SetMinimumLevel(logLevel)
            .AddFilter("Orleans.Runtime.Silo", LogLevel.Error)                 // the ServerGC advice
            .AddFilter("Orleans.Runtime.Messaging", LogLevel.Error);           // peers and clients that went away
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = options.Worker.DrainTimeout + TimeSpan.FromSeconds(15));
        configureServices?.Invoke(builder.Services);
        builder.UseOrleans(silo =>
        {
            silo.Configure<ClusterOptions>(c =>
            {
                c.ClusterId = options.ClusterId;
                c.ServiceId = options.ServiceId;
            });
            if (options.AdvertisedAddress is { } address)
                silo.ConfigureEndpoints(address, options.SiloPort, options.GatewayPort, listenOnAnyHostAddress: false);
            else
                silo.ConfigureEndpoints(options.SiloPort, options.GatewayPort);
            silo.Configure<ClusterMembershipOptions>(m =>
            {
                m.ProbeTimeout = options.ProbeTimeout;
                m.NumMissedProbesLimit = options.MissedProbesLimit;
            });
            silo.UseRedisClustering(o => o.ConfigurationOptions = redis.Clone());
            silo.AddRedisGrainStorage(WorkerOptions.StorageName, o =>
            {
                o.ConfigurationOptions = redis.Clone();
                o.DeleteStateOnClear = true;
            });
            silo.AddMLTransferWorkers(options.Worker);
        });
        return builder.Build();
    }

    /// <summary>Builds a client host (not started) that reaches the cluster's gateways through Redis membership.</summary>
    /// <param name="redisAddress">The Redis server, <c>host:port</c>.</param>
    /// <param name="clusterId">Orleans cluster id. The default value is <c>mltransfer</c>.</param>
    /// <param name="serviceId">Orleans service id. The default value is <c>mltransfer</c>.</param>
    public static IHost BuildClient(string redisAddress, string clusterId = "mltransfer", string serviceId = "mltransfer")
    {
        var redis = ParseRedis(redisAddress);
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.UseOrleansClient(client =>
        {
            client.Configure<ClusterOptions>(c =>
            {
                c.ClusterId = clusterId;
                c.ServiceId = serviceId;
            });
            client.UseRedisClustering(o => o.ConfigurationOptions = redis.Clone());
            // Every client call is a short one (status, start, cancel), so a call to a silo that was killed fails after
            // 10 s instead of Orleans' 30 s default, and the gateway list is re-read from Redis every 5 s instead of every
            // minute, so a dead gateway leaves the client's list soon after the silos have voted it dead.
            client.Configure<ClientMessagingOptions>(m => m.ResponseTimeout = TimeSpan.FromSeconds(10));
            client.Configure<GatewayOptions>(g => g.GatewayListRefreshPeriod = TimeSpan.FromSeconds(5));
        });
        return builder.Build();
    }

    /// <summary>Starts a client and connects it, with a one-line error when Redis or every silo is unreachable.</summary>
    /// <param name="redisAddress">The Redis server, <c>host:port</c>.</param>
    /// <param name="cancellationToken">Cancels the connection attempt.</param>
    /// <returns>The started host; its services hold the <see cref="IClusterClient"/>.</returns>
    public static async Task<IHost> ConnectAsync(string redisAddress, CancellationToken cancellationToken = default)
    {
        await CheckRedisAsync(redisAddress);
        var host = BuildClient(redisAddress);
        try
        {
            await host.StartAsync(cancellationToken);
            return host;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            host.Dispose();
            throw new InvalidOperationException(
                $"No MLTransfer silo answers in the cluster registered at Redis {redisAddress}: start one with 'mltransfer cluster silo --redis {redisAddress}' ({e.Message.ReplaceLineEndings(" ")})", e);
        }
    }

    /// <summary>Fails with a one-line error when the Redis server does not answer.</summary>
    /// <param name="redisAddress">The Redis server, <c>host:port</c>.</param>
    public static async Task CheckRedisAsync(string redisAddress)
    {
        var redis = ParseRedis(redisAddress);
        redis.AbortOnConnectFail = true;
        redis.ConnectTimeout = 5000;
        try
        {
            await using var connection = await ConnectionMultiplexer.ConnectAsync(redis);
            await connection.GetDatabase().PingAsync();
        }
        catch (RedisException e)
        {
            throw new InvalidOperationException($"Cannot reach Redis at {redisAddress}: {e.Message.ReplaceLineEndings(" ")}", e);
        }
    }

    internal static ConfigurationOptions ParseRedis(string redisAddress)
    {
        if (string.IsNullOrWhiteSpace(redisAddress))
            throw new ArgumentException("A Redis address (host:port) is required.", nameof(redisAddress));
        try
        {
            return ConfigurationOptions.Parse(redisAddress);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"'{redisAddress}' is not a Redis address (host:port): {e.Message}", nameof(redisAddress), e);
        }
    }
}
