using MLTransfer.Diagnostics;
using MLTransfer.Cluster.Client;
using MLTransfer.Cluster.Hosting;
using MLTransfer.Cluster.Jobs;
using MLTransfer.Data;
using Microsoft.Extensions.DependencyInjection;
using Spectre.Console;

namespace MLTransfer.Cli.Commands.Cluster;

/// <summary>Submits a job to the cluster behind a progress bar (shards done, images/s, nodes alive) and prints the merged view.</summary>
public static class ClusterJobConsole
{
    /// <summary>Runs a job to completion; Ctrl-C cancels it on the cluster (rerun the same command to resume).</summary>
    /// <param name="redis">The cluster's Redis server.</param>
    /// <param name="spec">What to produce.</param>
    /// <param name="images">The images and labels.</param>
    /// <param name="shardSize">Images per shard; 0 means the default.</param>
    /// <param name="cancellationToken">Cancels the job.</param>
    public static int Run(string redis, JobSpec spec, IReadOnlyList<ImageExample> images, int shardSize, CancellationToken cancellationToken)
    {
        if (images.Count == 0)
            throw new InvalidDataException("No images to process.");
        using var host = ClusterHost.ConnectAsync(redis, cancellationToken).GetAwaiter().GetResult();
        var client = host.Services.GetRequiredService<IClusterClient>();
        var request = new ClusterJobRequest { Spec = spec, Images = images, ShardSize = shardSize };
        ClusterJobOutcome? outcome = null;
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(context =>
            {
                var task = context.AddTask($"{spec.Kind.ToString().ToLowerInvariant()} on the cluster", maxValue: images.Count);
                var progress = new CallbackProgress<ClusterJobProgress>(p =>
                {
                    task.Value = p.Status.ImagesDone;
                    task.Description = $"shards {p.Status.ShardsDone:N0}/{p.Status.Shards:N0} · {p.ImagesPerSecond:N1} images/s · {p.NodesAlive} node(s) alive";
                });
                outcome = ClusterJobs.RunAsync(client, request, progress, cancellationToken).GetAwaiter().GetResult();
                task.Value = task.MaxValue;
                task.StopTask();
            });
        var status = outcome!.Status;
        AnsiConsole.MarkupLineInterpolated(
            $"{(outcome.Resumed ? "Resumed job" : "Job")} {outcome.JobId}: [bold]{status.ImagesDone:N0}[/] images in {status.Shards:N0} part(s) ({status.Rejected:N0} rejected, {status.FromCache:N0} from the cache) in {outcome.Elapsed.TotalSeconds:0.0} s; {status.Reassigned} shard(s) taken back from dead or silent nodes → [green]{outcome.OutputDirectory}[/]");
        if (status.Rejected > 0)
            AnsiConsole.MarkupLine("[yellow]Rejected images are rows with an 'error' and no values; the job went on without them.[/]");
        AnsiConsole.MarkupLineInterpolated($"[grey]Read it as one table: DuckDB SELECT * FROM '{outcome.OutputDirectory}/*.parquet'; pandas.read_parquet('{outcome.OutputDirectory}').[/]");
        return 0;
    }
}
