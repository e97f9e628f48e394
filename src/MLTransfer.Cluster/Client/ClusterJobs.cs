using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Microsoft.ML;
using MLTransfer.Backbones;
using MLTransfer.Cluster.Grains;
using MLTransfer.Cluster.Jobs;
using MLTransfer.Cluster.Output;
using MLTransfer.Evaluation;
using MLTransfer.Export;
using Orleans.Runtime;

namespace MLTransfer.Cluster.Client;

/// <summary>
/// Submits jobs to a cluster and follows them to the end. The job id is a hash of what the job produces and of its
/// images, so running the same command again (after a client crash, a cancel or a failure) resumes the same job: done
/// shards are kept, the rest run.
/// </summary>
public static class ClusterJobs
{
    /// <summary>
    /// Submits (or resumes) a job, reports progress until it completes, and returns once every part is in the output
    /// folder. Cancelling the token cancels the job on the cluster (workers stop at their next heartbeat).
    /// </summary>
    /// <param name="client">A connected cluster client.</param>
    /// <param name="request">The job.</param>
    /// <param name="progress">Receives progress about twice a second; may be null.</param>
    /// <param name="cancellationToken">Cancels the job.</param>
    /// <exception cref="InvalidOperationException">The job failed, or the output folder holds another job's parts.</exception>
    /// <exception cref="OperationCanceledException">The job was cancelled.</exception>
    public static async Task<ClusterJobOutcome> RunAsync(IClusterClient client, ClusterJobRequest request,
        IProgress<ClusterJobProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(request);
        if (request.Images.Count == 0)
            throw new ArgumentException("The job has no images.", nameof(request));
        var (spec, manifest) = Prepare(request);
        var job = client.GetGrain<IJobGrain>(manifest.JobId);
        var clock = Stopwatch.StartNew();
        var status = await job.GetStatus();
        var resumed = status.Phase != JobPhase.None;
        if (!resumed)
            await DefineShards(client, manifest.JobId, request.Images, manifest.ShardSize, cancellationToken);
        status = await job.Start(spec, manifest.Shards, manifest.Images);
        var doneAtStart = status.ImagesDone;
        var management = client.GetGrain<IManagementGrain>(0);
        var nodes = 0;
        TimeSpan? lastNodeCheck = null;
        TimeSpan? unreachableSince = null;
        try
        {
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                try
                {
                    status = await job.GetStatus();
                    if (lastNodeCheck is null || clock.Elapsed - lastNodeCheck > TimeSpan.FromSeconds(2) || status.Phase != JobPhase.Running)
                    {
                        nodes = (await management.GetHosts(onlyActive: true)).Count;
                        lastNodeCheck = clock.Elapsed;
                    }
                    unreachableSince = null;
                }
                catch (Exception e) when (e is OrleansException or TimeoutException)
                {
                    // The coordinator's silo died or is stopping: the grain comes back on another silo from its stored state.
                    unreachableSince ??= clock.Elapsed;
                    if (clock.Elapsed - unreachableSince > request.UnreachableTimeout)
                        throw new InvalidOperationException($"The cluster has not answered for {request.UnreachableTimeout.TotalSeconds:0} s: {e.Message.ReplaceLineEndings(" ")}", e);
                    await Task.Delay(request.PollPeriod, cancellationToken);
                    continue;
                }
                var rate = clock.Elapsed.TotalSeconds > 0 ? (status.ImagesDone - doneAtStart) / clock.Elapsed.TotalSeconds : 0;
                progress?.Report(new ClusterJobProgress(manifest.JobId, status, nodes, clock.Elapsed) { ImagesPerSecond = rate });
                if (status.Phase == JobPhase.Completed)
                    break;
                if (status.Phase == JobPhase.Failed)
                    throw new InvalidOperationException($"Cluster job {manifest.JobId} failed: {status.Error}");
                if (status.Phase == JobPhase.Cancelled)
                    throw new OperationCanceledException($"Cluster job {manifest.JobId} was cancelled.");
                await Task.Delay(request.PollPeriod, cancellationToken);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            await job.Cancel();
            throw;
        }
        var missing = Enumerable.Range(0, manifest.Shards).Where(s => !File.Exists(ShardKeys.Part(spec.OutputDirectory, s))).ToList();
        if (missing.Count > 0)
            throw new InvalidOperationException(
                $"Cluster job {manifest.JobId} completed but {missing.Count} part(s) are missing from '{spec.OutputDirectory}' (first: shard {missing[0]}); is the folder shared by every node?");
        PartFiles.DeleteStaleTemporaries(spec.OutputDirectory);
        await ForgetShardInputs(client, manifest.JobId, manifest.Shards);
        return new ClusterJobOutcome(manifest.JobId, status, clock.Elapsed, spec.OutputDirectory, resumed);
    }

    /// <summary>Cancels a job by id (workers stop at their next heartbeat; done shards are kept for a resume).</summary>
    /// <param name="client">A connected cluster client.</param>
    /// <param name="jobId">The job.</param>
    public static Task CancelAsync(IClusterClient client, string jobId)
    {
        ArgumentNullException.ThrowIfNull(client);
        return client.GetGrain<IJobGrain>(jobId).Cancel();
    }

    /// <summary>
    /// Resolves the request's paths, backbone and model the way every node will see them, computes the job id and
    /// writes the output folder's manifest (checking the folder holds no other job's parts).
    /// </summary>
    internal static (JobSpec Spec, JobManifest Manifest) Prepare(ClusterJobRequest request)
    {
        var given = request.Spec;
        if (string.IsNullOrWhiteSpace(given.OutputDirectory))
            throw new ArgumentException("The job needs an output folder.", nameof(request));
        if (given.Kind == JobKind.Predict && string.IsNullOrWhiteSpace(given.ModelPath))
            throw new ArgumentException("A predict job needs a model.", nameof(request));
        var spec = given with
        {
            OutputDirectory = Path.GetFullPath(given.OutputDirectory),
            ModelPath = given.ModelPath is null ? null : Path.GetFullPath(given.ModelPath),
            CacheDirectory = given.CacheDirectory is null ? null : Path.GetFullPath(given.CacheDirectory),
            Backbone = given.Backbone is not null && File.Exists(given.Backbone) ? Path.GetFullPath(given.Backbone) : given.Backbone,
        };
        var backbone = Backbone.Resolve(spec.BackboneName);
        IReadOnlyList<string>? classes = null;
        var modelHash = "";
        if (spec.Kind == JobKind.Predict)
        {
            classes = ModelEvaluator.Classes(ModelFile.Load(new MLContext(seed: 0), spec.ModelPath!));
            using var model = File.OpenRead(spec.ModelPath!);
            modelHash = Convert.ToHexStringLower(SHA256.HashData(model));
        }
        var shardSize = request.EffectiveShardSize;
        var manifest = new JobManifest
        {
            JobId = JobId(spec, backbone.Identity, modelHash, request.Images, shardSize),
            Kind = spec.Kind,
            Backbone = spec.BackboneName,
            BackboneIdentity = backbone.Identity,
            ImageSize = spec.ImageSize ?? backbone.InputSize,
            FeatureSize = backbone.FeatureSize,
            OptimizeGraph = !spec.PlainGraph,
            ModelPath = spec.ModelPath,
            Classes = classes,
            Images = request.Images.Count,
            Shards = (request.Images.Count + shardSize - 1) / shardSize,
            ShardSize = shardSize,
        };
        Directory.CreateDirectory(spec.OutputDirectory);
        var existing = JobManifest.Read(spec.OutputDirectory);
        if (existing is not null && existing.JobId != manifest.JobId || existing is null && PartFiles.List(spec.OutputDirectory).Count > 0)
            throw new InvalidOperationException(
                $"'{spec.OutputDirectory}' holds the parts of another job{(existing is null ? "" : $" ({existing.JobId})")}: write to an empty folder.");
        if (existing is null)
            manifest.Write(spec.OutputDirectory);
        return (spec, manifest);
    }

    private static string JobId(JobSpec spec, string backboneIdentity, string modelHash, IReadOnlyList<Data.ImageExample> images, int shardSize)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        void Add(string text) => hash.AppendData(Encoding.UTF8.GetBytes(text + "\n"));
        Add(string.Join("|", spec.Kind, backboneIdentity, spec.ImageSize?.ToString(CultureInfo.InvariantCulture) ?? "native",
            spec.PlainGraph, spec.OutputDirectory, modelHash, shardSize.ToString(CultureInfo.InvariantCulture)));
        foreach (var image in images)
            Add(image.ImagePath + "\t" + image.Label);
        return "job-" + Convert.ToHexStringLower(hash.GetHashAndReset())[..20];
    }

    private static async Task DefineShards(IClusterClient client, string jobId, IReadOnlyList<Data.ImageExample> images, int shardSize,
        CancellationToken cancellationToken)
    {
        var shards = (images.Count + shardSize - 1) / shardSize;
        await Parallel.ForEachAsync(Enumerable.Range(0, shards), new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = cancellationToken },
            async (shard, _) =>
            {
                var start = shard * shardSize;
                var slice = Enumerable.Range(start, Math.Min(shardSize, images.Count - start)).Select(i => images[i]).ToList();
                await client.GetGrain<IShardInputGrain>(ShardKeys.Input(jobId, shard))
                    .Define(new ShardInput { Paths = slice.Select(i => i.ImagePath).ToList(), Labels = slice.Select(i => i.Label).ToList() });
            });
    }

    private static async Task ForgetShardInputs(IClusterClient client, string jobId, int shards)
    {
        try
        {
            await Parallel.ForEachAsync(Enumerable.Range(0, shards), new ParallelOptions { MaxDegreeOfParallelism = 16 },
                async (shard, _) => await client.GetGrain<IShardInputGrain>(ShardKeys.Input(jobId, shard)).Clear());
        }
        catch (Exception e) when (e is OrleansException or TimeoutException)
        {
            // Only storage is at stake: the job is complete and its parts are written.
        }
    }
}
