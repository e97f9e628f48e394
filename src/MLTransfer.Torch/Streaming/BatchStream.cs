using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace MLTransfer.Torch.Streaming;

/// <summary>One batch read by a <see cref="BatchStream"/>: the stacked rows as a CPU tensor (the caller disposes it) and which items they are.</summary>
/// <param name="Input">The rows, [count, ..row shape].</param>
/// <param name="Items">The item index of each row.</param>
/// <param name="Paired">The paired rows (e.g. unlabelled target images drawn with each source batch), or null.</param>
/// <param name="PairedItems">The item index of each paired row, or null.</param>
internal sealed record LoadedBatch(Tensor Input, int[] Items, Tensor? Paired, int[]? PairedItems) : IDisposable
{
    public int Count => Items.Length;

    public void Dispose()
    {
        Input.Dispose();
        Paired?.Dispose();
    }
}

/// <summary>
/// Reads the batches of one pass over a list of items on worker threads into a bounded queue that the training thread
/// drains in order, so reading, decoding and augmenting overlap with libtorch and memory does not depend on the number of
/// items (at most <c>capacity</c> batches exist at once; each row is written straight into its batch tensor's native
/// memory). Augmentation draws from one generator per item, seeded from the pass's seed and the item's position in the
/// pass, so the batches are the same whatever the number of workers and their timing (PyTorch's <c>DataLoader</c>
/// with per-worker seeds, made independent of the worker count).
/// </summary>
internal sealed class BatchStream : IDisposable
{
    private readonly IRowSource _source;
    private readonly int[] _order;
    private readonly IRowSource? _pairedSource;
    private readonly int[]? _pairedOrder;
    private readonly int _batchSize;
    private readonly int? _seed;
    private readonly int _batches;
    private readonly LoadedBatch?[] _ready;
    private readonly SemaphoreSlim _room;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task[] _workers;
    private readonly object _gate = new();
    private static long _createdTensors;
    private int _claimed = -1;
    private Exception? _failure;

    /// <param name="source">The rows.</param>
    /// <param name="order">The items, in batch order (each consecutive <paramref name="batchSize"/> form a batch).</param>
    /// <param name="batchSize">Rows per batch (the last batch may be smaller).</param>
    /// <param name="seed">The pass's augmentation seed; null reads exact rows.</param>
    /// <param name="workers">Worker threads.</param>
    /// <param name="capacity">Batches read ahead at most.</param>
    /// <param name="pairedSource">Rows read alongside each batch (same count per batch), or null.</param>
    /// <param name="pairedOrder">The paired items, one per entry of <paramref name="order"/>.</param>
    public BatchStream(IRowSource source, int[] order, int batchSize, int? seed, int workers, int capacity = 0,
        IRowSource? pairedSource = null, int[]? pairedOrder = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        if ((pairedSource is null) != (pairedOrder is null) || (pairedOrder is not null && pairedOrder.Length != order.Length))
            throw new ArgumentException("Paired rows need one paired item per item.", nameof(pairedOrder));
        _source = source;
        _order = order;
        _pairedSource = pairedSource;
        _pairedOrder = pairedOrder;
        _batchSize = batchSize;
        _seed = seed;
        _batches = (order.Length + batchSize - 1) / batchSize;
        _ready = new LoadedBatch?[_batches];
        workers = Math.Clamp(workers, 1, Math.Max(1, _batches));
        capacity = Math.Max(capacity, workers + 1);
        _room = new SemaphoreSlim(capacity, capacity);
        _workers = Enumerable.Range(0, workers)
            .Select(_ => Task.Factory.StartNew(Work, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default))
            .ToArray();
    }

    /// <summary>The number of batches of the pass.</summary>
    public int Count => _batches;

    /// <summary>
    /// Batch tensors created on worker threads since the process started. TorchSharp counts live tensors per thread, so a
    /// thread that disposes these sees its own count drop by one each; adding this count back gives a figure that stays flat
    /// when nothing leaks (tests).
    /// </summary>
    public static long CreatedTensors => Interlocked.Read(ref _createdTensors);

    /// <summary>The default number of worker threads: half the cores (libtorch uses them all), at least one.</summary>
    public static int DefaultWorkers => Math.Max(1, Environment.ProcessorCount / 2);

    /// <summary>Mixes a seed with up to three integers into a generator seed (SplitMix64's finaliser), so nearby inputs give unrelated streams.</summary>
    public static int Mix(int seed, long a, long b = 0, long c = 0)
    {
        unchecked
        {
            ulong z = (ulong)seed * 0x9E3779B97F4A7C15UL;
            foreach (var v in new[] { a, b, c })
            {
                z += (ulong)v + 0x9E3779B97F4A7C15UL;
                z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
                z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
                z ^= z >> 31;
            }
            return (int)(z & 0x7FFFFFFF);
        }
    }

    /// <summary>Reads exact rows of the given items in order (validation, caching, prediction).</summary>
    public static IEnumerable<LoadedBatch> Ordered(IRowSource source, IReadOnlyList<int> items, int batchSize, int workers = 0)
    {
        using var stream = new BatchStream(source, items.ToArray(), batchSize, seed: null, workers > 0 ? workers : DefaultWorkers);
        foreach (var batch in stream.Batches())
            yield return batch;
    }

    /// <summary>The batches in order; blocks until the next one is read; rethrows a worker's failure. Each batch belongs to the caller.</summary>
    public IEnumerable<LoadedBatch> Batches()
    {
        for (var b = 0; b < _batches; b++)
        {
            LoadedBatch batch;
            lock (_gate)
            {
                while (_ready[b] is null && _failure is null)
                    Monitor.Wait(_gate);
                if (_failure is not null)
                    throw _failure is InvalidDataException or IOException
                        ? _failure
                        : new InvalidOperationException($"Reading a batch failed: {_failure.Message}", _failure);
                batch = _ready[b]!;
                _ready[b] = null;
            }
            _room.Release();
            yield return batch;
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        Task.WaitAll(_workers.Select(w => w.ContinueWith(_ => { }, TaskScheduler.Default)).ToArray());
        lock (_gate)
        {
            for (var b = 0; b < _ready.Length; b++)
            {
                _ready[b]?.Dispose();
                _ready[b] = null;
            }
        }
        _room.Dispose();
        _stop.Dispose();
    }

    private void Work()
    {
        try
        {
            while (true)
            {
                _room.Wait(_stop.Token);
                var b = Interlocked.Increment(ref _claimed);
                if (b >= _batches)
                    return;
                var batch = Read(b);
                lock (_gate)
                {
                    if (_stop.IsCancellationRequested)
                    {
                        batch.Dispose();
                        return;
                    }
                    _ready[b] = batch;
                    Monitor.PulseAll(_gate);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception e)
        {
            lock (_gate)
            {
                _failure ??= e;
                Monitor.PulseAll(_gate);
            }
        }
    }

    private LoadedBatch Read(int b)
    {
        var start = b * _batchSize;
        var count = Math.Min(_batchSize, _order.Length - start);
        var items = _order.AsSpan(start, count).ToArray();
        var input = Stack(_source, items, start, 0);
        try
        {
            if (_pairedSource is null)
                return new LoadedBatch(input, items, null, null);
            var paired = _pairedOrder!.AsSpan(start, count).ToArray();
            return new LoadedBatch(input, items, Stack(_pairedSource, paired, start, 1), paired);
        }
        catch
        {
            input.Dispose();
            throw;
        }
    }

    private Tensor Stack(IRowSource source, int[] items, int start, int stream)
    {
        var shape = source.RowShape;
        var length = (int)shape.Aggregate(1L, (a, d) => a * d);
        var tensor = empty([items.Length, .. shape]);
        Interlocked.Increment(ref _createdTensors);
        try
        {
            var data = MemoryMarshal.Cast<byte, float>(tensor.bytes);
            for (var i = 0; i < items.Length; i++)
            {
                _stop.Token.ThrowIfCancellationRequested();
                var random = _seed is { } seed ? new Random(Mix(seed, start + i, stream)) : null;
                source.Fill(items[i], data.Slice(i * length, length), random);
            }
            return tensor;
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
    }
}
