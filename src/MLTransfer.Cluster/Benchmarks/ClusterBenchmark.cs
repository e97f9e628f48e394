using MLTransfer.Diagnostics;
using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using MLTransfer.Backbones;
using MLTransfer.Cluster.Client;
using MLTransfer.Cluster.Hosting;
using MLTransfer.Cluster.Jobs;
using MLTransfer.Cluster.Output;
using MLTransfer.Cluster.Workers;
using MLTransfer.Data;
using MLTransfer.Featurization;

namespace MLTransfer.Cluster.Benchmarks;

/// <summary>Options of <see cref="ClusterBenchmark"/>.</summary>
public sealed class ClusterBenchmarkOptions
{
    /// <summary>How to run <c>mltransfer</c> for the silo processes (see <see cref="LocalProcesses.CliIn"/>).</summary>
    public required IReadOnlyList<string> Cli { get; init; }

    /// <summary>Square image size. The default value is 224.</summary>
    public int ImageSize { get; init; } = 224;

    /// <summary>Images per shard. The default value is 50.</summary>
    public int ShardSize { get; init; } = 50;

    /// <summary>Loopback port of the benchmark's redis-server. The default value is 6391.</summary>
    public int RedisPort { get; init; } = 6391;

    /// <summary>First silo port (gateways use 30100 + the same offset). The default value is 11100.</summary>
    public int BasePort { get; init; } = 11100;

    /// <summary>Scratch folder (outputs, silo logs); deleted afterwards.</summary>
    public required string Scratch { get; init; }

    /// <summary>Receives one line per step.</summary>
    public Action<string>? Log { get; init; }
}

/// <summary>One measured run.</summary>
/// <param name="Name">What ran.</param>
/// <param name="Cores">Cores it had.</param>
/// <param name="Seconds">Wall time from start (engine creation or job submission) to the last part written.</param>
/// <param name="Images">Images it produced.</param>
/// <param name="Note">What else was seen (reassigned shards, completeness).</param>
public sealed record ClusterBenchmarkRun(string Name, int Cores, double Seconds, int Images, string Note)
{
    /// <summary>Images per second.</summary>
    public double ImagesPerSecond => Images / Seconds;
}

/// <summary>The benchmark's runs and ratios.</summary>
/// <param name="Runs">Every run.</param>
/// <param name="Scaling">1 silo × 1 core time / 2 silos × 1 core time (target ≥ 1.8).</param>
/// <param name="OverheadOneCore">1 silo × 1 core time / plain engine on 1 core − 1.</param>
/// <param name="OverheadTwoCores">2 silos × 1 core time / plain engine on 2 cores − 1 (target ≤ 10 %).</param>
/// <param name="KillRatio">Time with one of two silos killed at 50 % / undisturbed 2-silo time (target ≤ 1.7).</param>
/// <param name="KillComplete">Whether the disturbed run's output holds every image exactly once.</param>
public sealed record ClusterBenchmarkResult(IReadOnlyList<ClusterBenchmarkRun> Runs, double Scaling, double OverheadOneCore, double OverheadTwoCores,
    double KillRatio, bool KillComplete);

/// <summary>
/// <c>mltransfer bench cluster</c>: the same images through the plain engine on 1 and 2 cores (this process, pinned)
/// and through a real cluster on this box — redis-server, silo processes pinned to one core each — with 1 silo, with 2
/// silos, and with 2 silos one of which is killed (SIGKILL) at 50 %. No bottleneck cache, so every run computes.
/// </summary>
public static class ClusterBenchmark
{
    /// <summary>Runs the benchmark (about 5 minutes for 2,000 images at 224 px on 2 cores).</summary>
    /// <param name="images">The images.</param>
    /// <param name="options">Options.</param>
    public static async Task<ClusterBenchmarkResult> RunAsync(IReadOnlyList<ImageExample> images, ClusterBenchmarkOptions options)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(options);
        if (Environment.ProcessorCount < 2)
            throw new InvalidOperationException("The cluster benchmark needs at least 2 cores.");
        var log = options.Log ?? (_ => { });
        var spec = new JobSpec { ImageSize = options.ImageSize, NoCache = true };
        var paths = images.Select(i => i.ImagePath).ToList();
        var runs = new List<ClusterBenchmarkRun>();

        log("plain engine, 1 core");
        runs.Add(Plain(paths, spec, cores: 1));
        log("plain engine, 2 cores");
        runs.Add(Plain(paths, spec, cores: 2));

        using var processes = new LocalProcesses();
        var redis = processes.StartRedis(options.RedisPort);
        var port = options.BasePort;
        async Task<(ClusterBenchmarkRun Run, bool Complete)> Cluster(string name, int silos, bool kill)
        {
            log(name);
            var started = new List<Process>();
            for (var s = 0; s < silos; s++, port++)
                started.Add(processes.StartSilo(options.Cli, redis, port, 30000 + port - options.BasePort + 100, threads: 1, cpus: 1L << s,
                    Path.Combine(options.Scratch, $"silo-{port}.log")));
            using var host = await ClusterHost.ConnectAsync(redis);
            var client = host.Services.GetRequiredService<IClusterClient>();
            var output = Path.Combine(options.Scratch, $"out-{port}");
            var killed = 0;
            var progress = new CallbackProgress<ClusterJobProgress>(p =>
            {
                if (kill && p.Status.ImagesDone >= images.Count / 2 && Interlocked.Exchange(ref killed, 1) == 0)
                    LocalProcesses.Kill(started[^1]);
            });
            var request = new ClusterJobRequest
            {
                Spec = spec with { OutputDirectory = output },
                Images = images,
                ShardSize = options.ShardSize,
                PollPeriod = TimeSpan.FromMilliseconds(100),
            };
            var outcome = await ClusterJobs.RunAsync(client, request, progress);
            var rows = PartFiles.ReadAll<FeaturePartRow>(output).Select(r => r.Path).ToList();
            var complete = rows.Count == images.Count && rows.ToHashSet(StringComparer.Ordinal).SetEquals(paths);
            await host.StopAsync();
            foreach (var silo in started)
                LocalProcesses.Stop(silo, TimeSpan.FromSeconds(20));
            var note = $"{outcome.Status.Reassigned} shard(s) reassigned; output {(complete ? "complete, each image once" : "INCOMPLETE")}";
            return (new ClusterBenchmarkRun(name, silos, outcome.Elapsed.TotalSeconds, outcome.Status.ImagesDone, note), complete);
        }

        var one = await Cluster("cluster, 1 silo × 1 core", 1, kill: false);
        var two = await Cluster("cluster, 2 silos × 1 core", 2, kill: false);
        var killedRun = await Cluster("cluster, 2 silos × 1 core, one killed at 50 %", 2, kill: true);
        runs.Add(one.Run);
        runs.Add(two.Run);
        runs.Add(killedRun.Run);
        return new ClusterBenchmarkResult(runs,
            Scaling: one.Run.Seconds / two.Run.Seconds,
            OverheadOneCore: one.Run.Seconds / runs[0].Seconds - 1,
            OverheadTwoCores: two.Run.Seconds / runs[1].Seconds - 1,
            KillRatio: killedRun.Run.Seconds / two.Run.Seconds,
            KillComplete: one.Complete && two.Complete && killedRun.Complete);
    }

    private static ClusterBenchmarkRun Plain(IReadOnlyList<string> paths, JobSpec spec, int cores)
    {
        var self = Process.GetCurrentProcess();
        var before = OperatingSystem.IsLinux() ? self.ProcessorAffinity : 0;
        try
        {
            if (OperatingSystem.IsLinux())
                self.ProcessorAffinity = (nint)((1L << cores) - 1);
            var clock = Stopwatch.StartNew();
            using var engine = new OnnxImageFeaturizer(Backbone.ResNet18(), EngineShardProcessor.EngineOptions(spec, cores));
            var result = engine.Featurize(paths);
            clock.Stop();
            return new ClusterBenchmarkRun($"plain engine, {cores} core(s), one process", cores, clock.Elapsed.TotalSeconds, paths.Count - result.Failed.Count, "");
        }
        finally
        {
            if (OperatingSystem.IsLinux())
                self.ProcessorAffinity = before;
        }
    }
}
