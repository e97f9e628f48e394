using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using Microsoft.ML;
using MLTransfer.Backbones;
using MLTransfer.Cluster.Hosting;
using MLTransfer.Cluster.Jobs;
using MLTransfer.Cluster.Output;
using MLTransfer.Data;
using MLTransfer.Evaluation;
using MLTransfer.Export;
using MLTransfer.Featurization;

namespace MLTransfer.Cluster.Workers;

/// <summary>
/// The default shard processor: featurises with the existing engine (<see cref="OnnxImageFeaturizer"/>, the silo's
/// <see cref="WorkerOptions.Threads"/> cores, the job's bottleneck cache) or predicts with the job's saved model, and
/// writes one Parquet part per shard. Engines and models are created once per silo and reused across shards.
/// </summary>
public sealed class EngineShardProcessor : IShardProcessor, IDisposable
{
    private readonly WorkerOptions _options;
    private readonly ConcurrentDictionary<string, ConcurrentBag<OnnxImageFeaturizer>> _engines = new();
    private readonly ConcurrentDictionary<string, Lazy<LoadedModel>> _models = new();

    /// <summary>Creates the processor.</summary>
    /// <param name="options">The silo's worker options.</param>
    public EngineShardProcessor(IOptions<WorkerOptions> options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options.Value;
    }

    /// <summary>The engine options a job runs with on a silo of <paramref name="threads"/> cores.</summary>
    /// <param name="spec">The job.</param>
    /// <param name="threads">Cores of the silo's engine.</param>
    public static FeaturizerOptions EngineOptions(JobSpec spec, int threads)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var cores = Math.Max(1, threads);
        return new FeaturizerOptions
        {
            ImageSize = spec.ImageSize,
            OptimizeGraph = !spec.PlainGraph,
            UseCache = !spec.NoCache,
            CacheDirectory = spec.CacheDirectory,
            BatchSize = spec.BatchSize > 0 ? spec.BatchSize : new FeaturizerOptions().BatchSize,
            InferenceThreads = cores,
            IntraOpThreads = 1,
            DecodeThreads = Math.Max(1, cores / 2),
        };
    }

    /// <inheritdoc />
    public Task<ShardResult> ProcessAsync(ShardLease lease, ShardInput input, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lease);
        ArgumentNullException.ThrowIfNull(input);
        return Task.Factory.StartNew(() => lease.Spec.Kind == JobKind.Predict
                ? Predict(lease, input, cancellationToken)
                : Featurize(lease, input, cancellationToken),
            cancellationToken, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    private ShardResult Featurize(ShardLease lease, ShardInput input, CancellationToken cancellationToken)
    {
        var spec = lease.Spec;
        var key = $"{spec.BackboneName}|{spec.ImageSize}|{spec.PlainGraph}|{spec.NoCache}|{spec.CacheDirectory}|{spec.BatchSize}";
        var pool = _engines.GetOrAdd(key, _ => new ConcurrentBag<OnnxImageFeaturizer>());
        if (!pool.TryTake(out var engine))
            engine = new OnnxImageFeaturizer(Backbone.Resolve(spec.BackboneName), EngineOptions(spec, _options.Threads));
        try
        {
            var result = engine.Featurize(input.Paths, null, cancellationToken);
            var reasons = Reasons(result.Failed);
            var rows = new FeaturePartRow[input.Paths.Count];
            for (var i = 0; i < rows.Length; i++)
            {
                var path = input.Paths[i];
                rows[i] = new FeaturePartRow
                {
                    Path = path,
                    Label = LabelOrNull(input.Labels[i]),
                    Features = result.Features[i],
                    Error = result.Features[i] is null ? Reason(reasons, path) : null,
                };
            }
            cancellationToken.ThrowIfCancellationRequested();
            PartFiles.Write(ShardKeys.Part(spec.OutputDirectory, lease.Shard), rows);
            return new ShardResult { Images = rows.Length, Rejected = result.Failed.Count, FromCache = result.FromCache };
        }
        finally
        {
            pool.Add(engine);
        }
    }

    private ShardResult Predict(ShardLease lease, ShardInput input, CancellationToken cancellationToken)
    {
        var spec = lease.Spec;
        var modelPath = spec.ModelPath ?? throw new InvalidOperationException("A predict job needs a model path.");
        var model = _models.GetOrAdd(modelPath, path => new Lazy<LoadedModel>(() => LoadedModel.Load(path))).Value;
        var rows = new PredictionPartRow[input.Paths.Count];
        var readable = new List<int>();
        for (var i = 0; i < rows.Length; i++)
        {
            rows[i] = new PredictionPartRow { Path = input.Paths[i], Label = LabelOrNull(input.Labels[i]) };
            rows[i].Error = ImageFileCheck.Problem(input.Paths[i]);
            if (rows[i].Error is null)
                readable.Add(i);
        }
        const int Chunk = 64;
        for (var start = 0; start < readable.Count; start += Chunk)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var chunk = readable.Skip(start).Take(Chunk).ToList();
            var scores = ModelEvaluator.Predict(model.Context, model.Model, chunk.Select(i => input.Paths[i]).ToList());
            for (var k = 0; k < chunk.Count; k++)
            {
                var row = rows[chunk[k]];
                row.Score = scores[k];
                row.PredictedLabel = model.Classes[Array.IndexOf(scores[k], scores[k].Max())];
            }
        }
        cancellationToken.ThrowIfCancellationRequested();
        PartFiles.Write(ShardKeys.Part(spec.OutputDirectory, lease.Shard), rows);
        return new ShardResult { Images = rows.Length, Rejected = rows.Length - readable.Count };
    }

    private static string? LabelOrNull(string label) => label.Length == 0 ? null : label;

    private static Dictionary<string, Queue<string>> Reasons(IReadOnlyList<RejectedImage> failed)
    {
        var reasons = new Dictionary<string, Queue<string>>(StringComparer.Ordinal);
        foreach (var failure in failed)
        {
            if (!reasons.TryGetValue(failure.Path, out var queue))
                reasons[failure.Path] = queue = new Queue<string>();
            queue.Enqueue(failure.Reason);
        }
        return reasons;
    }

    private static string Reason(Dictionary<string, Queue<string>> reasons, string path) =>
        reasons.TryGetValue(path, out var queue) && queue.Count > 0 ? queue.Dequeue() : "could not be featurised";

    /// <summary>Disposes the engines' ONNX Runtime sessions.</summary>
    public void Dispose()
    {
        foreach (var pool in _engines.Values)
            while (pool.TryTake(out var engine))
                engine.Dispose();
    }

    private sealed record LoadedModel(MLContext Context, ITransformer Model, IReadOnlyList<string> Classes)
    {
        public static LoadedModel Load(string path)
        {
            var context = new MLContext(seed: 0);
            var model = ModelFile.Load(context, path);
            return new LoadedModel(context, model, ModelEvaluator.Classes(model));
        }
    }
}
