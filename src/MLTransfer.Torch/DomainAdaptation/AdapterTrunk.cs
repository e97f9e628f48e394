using System.Collections.Concurrent;
using MLTransfer.Backbones;
using MLTransfer.Data;
using MLTransfer.Techniques.DomainAdaptation;
using MLTransfer.Torch.FineTuning;
using MLTransfer.Torch.Onnx;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLTransfer.Torch.DomainAdaptation;

/// <summary>
/// What lies below the adapter's bottleneck: the rows each image is cached as, the part of the backbone that turns a
/// batch of rows into pooled features (and may train), and how the trained result is exported.
/// </summary>
internal abstract class AdapterTrunk : IDisposable
{
    protected const int InferenceBatch = 64;

    /// <summary>Cached rows of the source training images, in <see cref="AdaptationContext.SourceTrain"/> order.</summary>
    public IReadOnlyList<float[]> Source { get; protected init; } = [];

    /// <summary>Cached rows of the source validation images, or null.</summary>
    public IReadOnlyList<float[]>? Validation { get; protected init; }

    /// <summary>Cached rows of the unlabelled target images.</summary>
    public IReadOnlyList<float[]> Target { get; protected init; } = [];

    /// <summary>The shape of one row.</summary>
    public long[] RowShape { get; protected init; } = [];

    /// <summary>The trunk's trainable parameters (none when frozen).</summary>
    public IReadOnlyList<Parameter> Parameters { get; protected init; } = [];

    /// <summary>Pooled features of the source training images as the exported graph computes them (after <see cref="Finish"/>).</summary>
    public float[][] SourcePooled { get; protected set; } = [];

    /// <summary>Pooled features of the source validation images as the head is scored on them (after <see cref="Finish"/>).</summary>
    public float[][]? ValidationPooled { get; protected set; }

    /// <summary>Maps raw frozen-backbone features of images, and the images, to the pooled features of the exported graph.</summary>
    public abstract Func<IReadOnlyList<float[]>, IReadOnlyList<ImageExample>, float[][]> PooledAsExported { get; }

    /// <summary>Stacks the chosen rows into a batch tensor.</summary>
    public Tensor Batch(IReadOnlyList<float[]> rows, int[] indices)
    {
        var length = rows[indices[0]].Length;
        var buffer = new float[indices.Length * length];
        for (var i = 0; i < indices.Length; i++)
            Array.Copy(rows[indices[i]], 0, buffer, (long)i * length, length);
        return tensor(buffer, [indices.Length, .. RowShape]);
    }

    /// <summary>Pooled features of a source batch and, when given, a target batch (training step; gradients flow).</summary>
    public abstract (Tensor Source, Tensor? Target) Pooled(Tensor source, Tensor? target);

    /// <summary>Pooled features of rows in inference batches (no gradients), with each batch's first row index; the caller disposes them.</summary>
    public IEnumerable<(int Start, Tensor Pooled)> PooledBatches(IReadOnlyList<float[]> rows)
    {
        for (var start = 0; start < rows.Count; start += InferenceBatch)
        {
            var indices = Enumerable.Range(start, Math.Min(InferenceBatch, rows.Count - start)).ToArray();
            Tensor pooled;
            using (NewDisposeScope())
            using (no_grad())
                pooled = Pooled(Batch(rows, indices), null).Source.MoveToOuterDisposeScope();
            yield return (start, pooled);
        }
    }

    /// <summary>Switches the trainable part between training and evaluation mode.</summary>
    public virtual void Train(bool training)
    {
    }

    /// <summary>Called once after training: fixes what is exported and computes <see cref="SourcePooled"/> and <see cref="ValidationPooled"/>.</summary>
    /// <param name="adapted">Whether the target took part in training (false for the source-only peer).</param>
    public virtual void Finish(bool adapted)
    {
        SourcePooled = PooledArrays(Source);
        ValidationPooled = Validation is null ? null : PooledArrays(Validation);
    }

    /// <summary>Writes the graph the bottleneck is appended to and returns its path.</summary>
    public abstract string WriteGraph(string tag);

    public virtual void Dispose()
    {
    }

    protected float[][] PooledArrays(IReadOnlyList<float[]> rows)
    {
        var result = new List<float[]>(rows.Count);
        foreach (var (_, pooled) in PooledBatches(rows))
        {
            using (pooled)
            {
                var width = (int)pooled.shape[1];
                var flat = pooled.contiguous().data<float>().ToArray();
                for (var i = 0; i < pooled.shape[0]; i++)
                    result.Add(flat.AsSpan(i * width, width).ToArray());
            }
        }
        return result.ToArray();
    }
}

/// <summary>The frozen backbone: rows are the cached pooled features, nothing trains, the featuriser's graph is exported as it is.</summary>
internal sealed class FrozenTrunk : AdapterTrunk
{
    private readonly string _graphPath;

    public FrozenTrunk(AdaptationContext context)
    {
        _graphPath = context.Featurizer.GraphPath;
        Source = context.SourceTrain.Features;
        Validation = context.SourceValidation?.Features;
        Target = context.Target.Features;
        RowShape = [Source[0].Length];
    }

    public override Func<IReadOnlyList<float[]>, IReadOnlyList<ImageExample>, float[][]> PooledAsExported => (rows, _) => rows.ToArray();

    public override (Tensor Source, Tensor? Target) Pooled(Tensor source, Tensor? target) => (source, target);

    public override string WriteGraph(string tag) => _graphPath;
}

/// <summary>
/// The backbone's top blocks train: rows are the frozen lower blocks' outputs (computed once per image and graph,
/// <see cref="BlockOutputCache"/>); the trained weights and BatchNorm statistics are written back into the fused
/// featuriser graph.
/// </summary>
internal sealed class BackboneTrunk : AdapterTrunk
{
    private readonly AdaptationContext _context;
    private readonly BackboneBlocks _blocks;
    private readonly string _cut;
    private readonly DomainBatchNorm _batchNorm;

    public BackboneTrunk(AdaptationContext context, int trainedBlocks, DomainBatchNorm batchNorm)
    {
        _context = context;
        _batchNorm = batchNorm;
        _blocks = new BackboneBlocks(OnnxModuleImporter.Import(FeaturizerGraph.Load(context.Featurizer.GraphPath), FeaturizerGraph.InputName, FeaturizerGraph.OutputName));
        _cut = _blocks.Cut(trainedBlocks);
        var trained = _blocks.ParametersFrom(_blocks.FirstTrainedBlock(trainedBlocks));
        _blocks.TrainOnly(trained);
        _blocks.Backbone.FreezeBatchNormStatistics = batchNorm == DomainBatchNorm.Frozen;
        Parameters = trained.Select(n => _blocks.Backbone.TrainableParameters[n]).ToList();
        Source = Rows(context.SourceTrain.Examples, out var shape);
        RowShape = shape;
        Validation = context.SourceValidation is null ? null : Rows(context.SourceValidation.Examples, out _);
        Target = Rows(context.Target.Examples, out _);
    }

    public override Func<IReadOnlyList<float[]>, IReadOnlyList<ImageExample>, float[][]> PooledAsExported => (rows, examples) =>
    {
        _blocks.Backbone.eval();
        return PooledArrays(Rows(examples, out var _));
    };

    public override (Tensor Source, Tensor? Target) Pooled(Tensor source, Tensor? target)
    {
        if (target is null)
            return (Run(source), null);
        if (_batchNorm == DomainBatchNorm.PerDomain)
            return (Run(source), Run(target));
        var both = Run(cat([source, target], 0));
        var n = source.shape[0];
        return (both.narrow(0, 0, n), both.narrow(0, n, both.shape[0] - n));
    }

    public override void Train(bool training) => _blocks.Backbone.train(training);

    public override void Finish(bool adapted)
    {
        if (_batchNorm != DomainBatchNorm.PerDomain || !adapted)
        {
            base.Finish(adapted);
            return;
        }
        ReestimateStatistics(Source);
        base.Finish(adapted);
        ReestimateStatistics(Target);
        _blocks.Backbone.eval();
    }

    public override string WriteGraph(string tag)
    {
        var trained = _blocks.Backbone.ExportModel();
        var key = FeatureGraphEdits.Hash(Parameters.Select(p => p.data<float>().ToArray())
            .Concat(_blocks.Backbone.BatchNormStatistics.Values.Select(s => s.data<float>().ToArray())).ToArray());
        return FeatureGraphEdits.WriteEdited(_context.Featurizer.GraphPath, _context.Engine.EffectiveGraphDirectory, tag + "-backbone", key, edited =>
        {
            edited.Graph.Initializer.Clear();
            edited.Graph.Initializer.AddRange(trained.Graph.Initializer);
        });
    }

    public override void Dispose() => _blocks.Backbone.Dispose();

    private Tensor Run(Tensor rows) =>
        _blocks.Backbone.Run(new Dictionary<string, Tensor>(StringComparer.Ordinal) { [_cut] = rows }, FeaturizerGraph.OutputName)[FeaturizerGraph.OutputName];

    /// <summary>Sets the running statistics of the trained blocks' BatchNorm layers to their (cumulative) averages over <paramref name="rows"/>.</summary>
    private void ReestimateStatistics(IReadOnlyList<float[]> rows)
    {
        var backbone = _blocks.Backbone;
        var momentum = backbone.BatchNormMomentum;
        backbone.train();
        using (no_grad())
        {
            var batch = 0;
            for (var start = 0; start < rows.Count; start += InferenceBatch, batch++)
            {
                using var scope = NewDisposeScope();
                backbone.BatchNormMomentum = 1.0 / (batch + 1);
                Run(Batch(rows, Enumerable.Range(start, Math.Min(InferenceBatch, rows.Count - start)).ToArray()));
            }
        }
        backbone.BatchNormMomentum = momentum;
        backbone.eval();
    }

    private float[][] Rows(IReadOnlyList<ImageExample> examples, out long[] shape) =>
        BlockOutputCache.Get(_blocks, _context.Featurizer.GraphPath, _cut, _context.Featurizer.ImageSize, examples.Select(e => e.ImagePath).ToList(), out shape);
}

/// <summary>
/// Frozen lower-block outputs by (graph, cut value, image), kept for the life of the process so that every method and
/// seed of a benchmark (and the source-only peer of a CLI run) decodes and runs the frozen blocks once per image.
/// </summary>
internal static class BlockOutputCache
{
    /// <summary>Cached bytes above which the cache starts again empty. The value is 6 GiB.</summary>
    private const long MaxBytes = 6L << 30;

    private static readonly ConcurrentDictionary<string, float[]> Outputs = new(StringComparer.Ordinal);
    private static readonly ConcurrentDictionary<string, long[]> Shapes = new(StringComparer.Ordinal);
    private static long _bytes;

    public static float[][] Get(BackboneBlocks blocks, string graphPath, string cut, int imageSize, IReadOnlyList<string> paths, out long[] shape)
    {
        var prefix = graphPath + "|" + cut + "|";
        var missing = paths.Where(p => !Outputs.ContainsKey(prefix + p)).Distinct(StringComparer.Ordinal).ToList();
        var computed = new Dictionary<string, float[]>(StringComparer.Ordinal);
        foreach (var chunk in missing.Chunk(256))
        {
            var (outputs, chunkShape) = blocks.CacheOutputs(ImagePixelReader.Read(chunk, imageSize), cut, 32);
            Shapes[prefix] = chunkShape;
            for (var i = 0; i < chunk.Length; i++)
                computed[chunk[i]] = outputs[i];
        }
        var computedBytes = computed.Values.Sum(v => 4L * v.Length);
        if (Interlocked.Add(ref _bytes, computedBytes) > MaxBytes)
        {
            Outputs.Clear();
            Interlocked.Exchange(ref _bytes, computedBytes);
        }
        foreach (var (path, output) in computed)
            Outputs[prefix + path] = output;
        shape = Shapes[prefix];
        return paths.Select(p => computed.TryGetValue(p, out var row) ? row : Outputs[prefix + p]).ToArray();
    }
}
