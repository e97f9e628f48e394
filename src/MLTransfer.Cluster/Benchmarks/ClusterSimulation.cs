using MLTransfer.Diagnostics;
using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using MLTransfer.Cluster.Client;
using MLTransfer.Cluster.Hosting;
using MLTransfer.Cluster.Jobs;
using MLTransfer.Cluster.Output;
using MLTransfer.Cluster.Workers;
using MLTransfer.Data;

namespace MLTransfer.Cluster.Benchmarks;

/// <summary>What a simulated cluster did.</summary>
/// <param name="Silos">Silos started (each in this process, Redis membership and storage, fake worker).</param>
/// <param name="Images">Fake images in the job.</param>
/// <param name="Shards">Shards in the job.</param>
/// <param name="StartSeconds">Time for every silo to start and join.</param>
/// <param name="JobSeconds">Job wall time, submission to the last part.</param>
/// <param name="IdealSeconds">Images × time per image / silos: the job time with no coordination cost.</param>
/// <param name="KillJobSeconds">The same job with a tenth of the silos stopped without draining at 50 %.</param>
/// <param name="Reassigned">Shards taken back in the disturbed run.</param>
/// <param name="Complete">Whether both runs wrote every image exactly once.</param>
public sealed record ClusterSimulationResult(int Silos, int Images, int Shards, double StartSeconds, double JobSeconds, double IdealSeconds,
    double KillJobSeconds, int Reassigned, bool Complete)
{
    /// <summary>Ideal time / job time.</summary>
    public double Efficiency => IdealSeconds / JobSeconds;

    /// <summary>Shards leased and completed per second by the coordinator.</summary>
    public double ShardsPerSecond => Shards / JobSeconds;

    /// <inheritdoc />
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{Silos} silos started in {StartSeconds:0.0} s; {Images:N0} images in {Shards:N0} shards: {JobSeconds:0.0} s against {IdealSeconds:0.0} s ideal " +
        $"(efficiency {Efficiency:P0}, {ShardsPerSecond:0.0} shards/s through one coordinator); with {Math.Max(1, Silos / 10)} silo(s) stopped at 50 %: " +
        $"{KillJobSeconds:0.0} s, {Reassigned} shard(s) reassigned; output {(Complete ? "complete, each image once" : "INCOMPLETE")}");
}

/// <summary>
/// Many silos in one process against a real redis-server, each with a fake worker that sleeps a fixed time per image
/// and writes real parts: measures what coordination costs as the cluster grows (joins, leases through one job grain,
/// reassignment after silos die), not the engine.
/// </summary>
public static class ClusterSimulation
{
    /// <summary>Time the fake worker takes per image.</summary>
    public static readonly TimeSpan PerImage = TimeSpan.FromMilliseconds(20);

    /// <summary>Runs the simulation.</summary>
    /// <param name="silos">Silos (ports 11100 + i, one gateway on 30100).</param>
    /// <param name="imagesPerSilo">Fake images per silo.</param>
    /// <param name="shardSize">Images per shard.</param>
    /// <param name="redisPort">Loopback port of the simulation's redis-server.</param>
    /// <param name="scratch">Folder for the parts.</param>
    /// <param name="log">Receives a line per step.</param>
    public static async Task<ClusterSimulationResult> RunAsync(int silos, int imagesPerSilo, int shardSize, int redisPort, string scratch, Action<string> log)
    {
        ArgumentNullException.ThrowIfNull(log);
        using var processes = new LocalProcesses();
        var redis = processes.StartRedis(redisPort);
        var hosts = new List<IHost>();
        try
        {
            var clock = Stopwatch.StartNew();
            for (var i = 0; i < silos; i++)
            {
                var host = ClusterHost.BuildSilo(new ClusterSiloOptions
                {
                    Redis = redis,
                    SiloPort = 11100 + i,
                    GatewayPort = i == 0 ? 30100 : 0,
                    AdvertisedAddress = System.Net.IPAddress.Loopback,
                    Worker = new WorkerOptions { Threads = 1, IdlePoll = TimeSpan.FromMilliseconds(200) },
                }, services => services.AddSingleton<IShardProcessor, SleepingShardProcessor>());
                await host.StartAsync();
                hosts.Add(host);
                if ((i + 1) % 10 == 0)
                    log($"{i + 1} silos up ({clock.Elapsed.TotalSeconds:0} s)");
            }
            var start = clock.Elapsed.TotalSeconds;
            using var client = await ClusterHost.ConnectAsync(redis);
            var cluster = client.Services.GetRequiredService<IClusterClient>();
            var images = Enumerable.Range(0, silos * imagesPerSilo).Select(i => new ImageExample { ImagePath = $"/fake/{i}.jpg" }).ToList();
            var ideal = images.Count * PerImage.TotalSeconds / silos;

            async Task<(ClusterJobOutcome Outcome, bool Complete)> Job(string name, Action<ClusterJobProgress>? onProgress)
            {
                var output = Path.Combine(scratch, name);
                var outcome = await ClusterJobs.RunAsync(cluster, new ClusterJobRequest
                {
                    Spec = new JobSpec { OutputDirectory = output, NoCache = true },
                    Images = images,
                    ShardSize = shardSize,
                    PollPeriod = TimeSpan.FromMilliseconds(100),
                }, onProgress is null ? null : new CallbackProgress<ClusterJobProgress>(onProgress));
                var rows = PartFiles.ReadAll<FeaturePartRow>(output).Select(r => r.Path).ToList();
                return (outcome, rows.Count == images.Count && rows.Distinct(StringComparer.Ordinal).Count() == images.Count);
            }

            log("job on every silo");
            var plain = await Job("undisturbed", null);
            var victims = hosts.Skip(1).Take(Math.Max(1, silos / 10)).ToList();
            var stopped = 0;
            log($"job with {victims.Count} silo(s) stopped without draining at 50 %");
            var disturbed = await Job("disturbed", p =>
            {
                if (p.Status.ImagesDone >= images.Count / 2 && Interlocked.Exchange(ref stopped, 1) == 0)
                    foreach (var victim in victims)
                        _ = victim.StopAsync(new CancellationToken(canceled: true));
            });
            await client.StopAsync();
            return new ClusterSimulationResult(silos, images.Count, plain.Outcome.Status.Shards, start, plain.Outcome.Elapsed.TotalSeconds, ideal,
                disturbed.Outcome.Elapsed.TotalSeconds, disturbed.Outcome.Status.Reassigned, plain.Complete && disturbed.Complete);
        }
        finally
        {
            using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await Task.WhenAll(hosts.Select(async h =>
            {
                try { await h.StopAsync(stop.Token); } catch (Exception e) when (e is OperationCanceledException or Orleans.Runtime.OrleansException) { }
                h.Dispose();
            }));
        }
    }

    /// <summary>A worker that sleeps <see cref="PerImage"/> per image and writes a one-value part.</summary>
    private sealed class SleepingShardProcessor : IShardProcessor
    {
        public async Task<ShardResult> ProcessAsync(ShardLease lease, ShardInput input, CancellationToken cancellationToken)
        {
            await Task.Delay(PerImage * input.Paths.Count, cancellationToken);
            var rows = input.Paths.Select(p => new FeaturePartRow { Path = p, Features = [1f] }).ToList();
            PartFiles.Write(ShardKeys.Part(lease.Spec.OutputDirectory, lease.Shard), rows);
            return new ShardResult { Images = rows.Count };
        }
    }
}
