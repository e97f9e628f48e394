using MLTransfer.Backbones;
using MLTransfer.Data;
using MLTransfer.Featurization;
using MLTransfer.Techniques.DomainAdaptation;
using MLTransfer.Torch.Streaming;
using MLTransfer.Torch.FineTuning;
using MLTransfer.Torch.Onnx;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLTransfer.Torch.DomainAdaptation;

/// <summary>
/// What lies below the adapter's bottleneck: the rows each image is read as, the part of the backbone that turns a
/// batch of rows into pooled features (and may train), and how the trained result is exported.
/// </summary>
internal abstract class AdapterTrunk : IDisposable
{
    protected const int InferenceBatch = 64;

    /// <summary>Rows of the source training images, in <see cref="AdaptationContext.SourceTrain"/> order.</summary>
    public IRowSource Source { get; protected init; } = new MemoryRows([]);

    /// <summary>Rows of the source validation images, or null.</summary>
    public IRowSource? Validation { get; protected init; }

    /// <summary>Rows of the unlabelled target images.</summary>
    public IRowSource Target { get; protected init; } = new MemoryRows([]);

    /// <summary>The trunk's trainable parameters by stable names (none when frozen).</summary>
    public IReadOnlyList<(string Name, Parameter Parameter)> Parameters { get; protected init; } = [];

    /// <summary>Pooled features of the source training images as the exported graph computes them (after <see cref="Finish"/>).</summary>
    public float[][] SourcePooled { get; protected set; } = [];

    /// <summary>Pooled features of the source validation images as the head is scored on them (after <see cref="Finish"/>).</summary>
    public float[][]? ValidationPooled { get; protected set; }

    /// <summary>Maps raw frozen-backbone features of images, and the images, to the pooled features of the exported graph.</summary>
    public abstract Func<IReadOnlyList<float[]>, IReadOnlyList<ImageExample>, float[][]> PooledAsExported { get; }

    /// <summary>Every tensor of the trunk's trained state (parameters and BatchNorm statistics), by stable names.</summary>
    public virtual IEnumerable<(string Name, Tensor Tensor)> StateTensors() => [];

    /// <summary>Pooled features of a source batch and, when given, a target batch (training step; gradients flow).</summary>
    public abstract (Tensor Source, Tensor? Target) Pooled(Tensor source, Tensor? target);

    /// <summary>Pooled features of rows in inference batches (no gradients), with the rows' indices; the caller disposes them.</summary>
    public IEnumerable<(int[] Items, Tensor Pooled)> PooledBatches(IRowSource rows)
    {
        foreach (var batch in BatchStream.Ordered(rows, Enumerable.Range(0, rows.Count).ToArray(), InferenceBatch))
        {
            Tensor pooled;
            using (batch)
            using (NewDisposeScope())
            using (no_grad())
                pooled = Pooled(batch.Input, null).Source.alias().MoveToOuterDisposeScope(); // alias: a frozen trunk returns the batch itself
            yield return (batch.Items, pooled);
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

    protected float[][] PooledArrays(IRowSource rows)
    {
        var result = new float[rows.Count][];
        foreach (var (items, pooled) in PooledBatches(rows))
        {
            using (pooled)
            {
                var width = (int)pooled.shape[1];
                var flat = pooled.contiguous().data<float>().ToArray();
                for (var i = 0; i < items.Length; i++)
                    result[items[i]] = flat.AsSpan(i * width, width).ToArray();
            }
        }
        return result;
    }
}

/// <summary>The frozen backbone: rows are the pooled features already computed, nothing trains, the featuriser's graph is exported as it is.</summary>
internal sealed class FrozenTrunk : AdapterTrunk
{
    private readonly string _graphPath;

    public FrozenTrunk(AdaptationContext context)
    {
        _graphPath = context.Featurizer.GraphPath;
        Source = new MemoryRows(context.SourceTrain.Features);
        Validation = context.SourceValidation is { } validation ? new MemoryRows(validation.Features) : null;
        Target = new MemoryRows(context.Target.Features);
    }

    public override Func<IReadOnlyList<float[]>, IReadOnlyList<ImageExample>, float[][]> PooledAsExported => (rows, _) => rows.ToArray();

    public override (Tensor Source, Tensor? Target) Pooled(Tensor source, Tensor? target) => (source, target);

    public override string WriteGraph(string tag) => _graphPath;
}

/// <summary>
/// The backbone's top blocks train: rows are the frozen lower blocks' outputs, computed once per image and kept in the
/// on-disk block cache (<see cref="BlockOutputs"/>, shared with fine-tuning's top-blocks mode); the trained weights and
/// BatchNorm statistics are written back into the fused featuriser graph.
/// </summary>
internal sealed class BackboneTrunk : AdapterTrunk
{
    private readonly AdaptationContext _context;
    private readonly BackboneBlocks _blocks;
    private readonly string _cut;
    private readonly DomainBatchNorm _batchNorm;
    private readonly BlockCacheSettings _cache;

    public BackboneTrunk(AdaptationContext context, int trainedBlocks, DomainBatchNorm batchNorm, BlockCacheSettings cache)
    {
        _context = context;
        _batchNorm = batchNorm;
        _cache = cache;
        _blocks = new BackboneBlocks(OnnxModuleImporter.Import(FeaturizerGraph.Load(FusedGraph()), FeaturizerGraph.InputName, FeaturizerGraph.OutputName));
        _cut = _blocks.Cut(trainedBlocks);
        var trained = _blocks.ParametersFrom(_blocks.FirstTrainedBlock(trainedBlocks));
        _blocks.TrainOnly(trained);
        _blocks.Backbone.FreezeBatchNormStatistics = batchNorm == DomainBatchNorm.Frozen;
        Parameters = trained.Select(n => ("trunk:" + n, _blocks.Backbone.TrainableParameters[n])).ToList();
        Source = Rows(context.SourceTrain.Examples);
        Validation = context.SourceValidation is null ? null : Rows(context.SourceValidation.Examples);
        Target = Rows(context.Target.Examples);
    }

    public override Func<IReadOnlyList<float[]>, IReadOnlyList<ImageExample>, float[][]> PooledAsExported => (_, examples) => Exported(examples);

    public override IEnumerable<(string Name, Tensor Tensor)> StateTensors() =>
        Parameters.Select(p => (p.Name, (Tensor)p.Parameter)).Concat(_blocks.Backbone.BatchNormStatistics.Select(s => ("trunk-bnstat:" + s.Key, s.Value)));

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

    /// <summary>
    /// Fixes the BatchNorm statistics to export and computes the pooled features the head is trained and scored on from the
    /// images through the whole backbone, exactly as the exported graph does (the cached rows may be 16-bit).
    /// </summary>
    public override void Finish(bool adapted)
    {
        var perDomain = _batchNorm == DomainBatchNorm.PerDomain && adapted;
        if (perDomain)
            ReestimateStatistics(Source);
        _blocks.Backbone.eval();
        SourcePooled = Exported(_context.SourceTrain.Examples);
        ValidationPooled = _context.SourceValidation is { } validation ? Exported(validation.Examples) : null;
        if (perDomain)
            ReestimateStatistics(Target);
        _blocks.Backbone.eval();
    }

    public override string WriteGraph(string tag)
    {
        var trained = _blocks.Backbone.ExportModel();
        var key = FeatureGraphEdits.Hash(Parameters.Select(p => p.Parameter.data<float>().ToArray())
            .Concat(_blocks.Backbone.BatchNormStatistics.Values.Select(s => s.data<float>().ToArray())).ToArray());
        return FeatureGraphEdits.WriteEdited(FusedGraph(), _context.Engine.EffectiveGraphDirectory, tag + "-backbone", key, edited =>
        {
            edited.Graph.Initializer.Clear();
            edited.Graph.Initializer.AddRange(trained.Graph.Initializer);
        });
    }

    public override void Dispose() => _blocks.Backbone.Dispose();

    /// <summary>The featuriser's fused graph, written again if the shared graph folder has dropped it meanwhile.</summary>
    private string FusedGraph() =>
        File.Exists(_context.Featurizer.GraphPath) ? _context.Featurizer.GraphPath
            : FeaturizerGraph.Materialize(_context.Backbone, _context.Featurizer.ImageSize, Path.GetDirectoryName(_context.Featurizer.GraphPath));

    private Tensor Run(Tensor rows) =>
        _blocks.Backbone.Run(new Dictionary<string, Tensor>(StringComparer.Ordinal) { [_cut] = rows }, FeaturizerGraph.OutputName)[FeaturizerGraph.OutputName];

    /// <summary>Sets the running statistics of the trained blocks' BatchNorm layers to their (cumulative) averages over <paramref name="rows"/>.</summary>
    private void ReestimateStatistics(IRowSource rows)
    {
        var backbone = _blocks.Backbone;
        var momentum = backbone.BatchNormMomentum;
        backbone.train();
        using (no_grad())
        {
            var batch = 0;
            foreach (var loaded in BatchStream.Ordered(rows, Enumerable.Range(0, rows.Count).ToArray(), InferenceBatch))
            {
                using (loaded)
                using (NewDisposeScope())
                {
                    backbone.BatchNormMomentum = 1.0 / (batch + 1);
                    Run(loaded.Input);
                }
                batch++;
            }
        }
        backbone.BatchNormMomentum = momentum;
        backbone.eval();
    }

    /// <summary>Pooled features of images through the whole backbone in evaluation mode: what the exported graph computes.</summary>
    private float[][] Exported(IReadOnlyList<ImageExample> examples)
    {
        var backbone = _blocks.Backbone;
        backbone.eval();
        var rows = new ImageFileRows(examples.Select(e => e.ImagePath).ToList(), _context.Featurizer.ImageSize);
        var result = new float[rows.Count][];
        using var noGrad = no_grad();
        foreach (var batch in BatchStream.Ordered(rows, Enumerable.Range(0, rows.Count).ToArray(), InferenceBatch))
        {
            using (batch)
            using (NewDisposeScope())
            {
                var pooled = backbone.Run(new Dictionary<string, Tensor>(StringComparer.Ordinal) { [backbone.InputName] = batch.Input }, FeaturizerGraph.OutputName)[FeaturizerGraph.OutputName];
                var flat = pooled.contiguous().data<float>().ToArray();
                var width = flat.Length / batch.Count;
                for (var k = 0; k < batch.Count; k++)
                    result[batch.Items[k]] = flat.AsSpan(k * width, width).ToArray();
            }
        }
        return result;
    }

    private BlockOutputs Rows(IReadOnlyList<ImageExample> examples) =>
        BlockOutputs.Prepare(_blocks, _context.Backbone, _cut, _context.Featurizer.ImageSize, examples.Select(e => e.ImagePath).ToList(), 1, null, false, _context.Seed, _cache, null, default);
}
