using System.Collections.Concurrent;
using System.Diagnostics;

namespace MLTransfer.Prediction;

/// <summary>
/// Dynamic batching (the scheme of Triton's and TorchServe's batchers): requests wait in one queue; each of a fixed number of
/// worker threads takes the first waiting request, then keeps taking requests until the batch is full or
/// <c>delay</c> has passed since it took the first, and runs them as one batch. With a batch size of 1 it is a plain
/// bounded worker pool, so callers never block a thread-pool thread on inference.
/// </summary>
internal sealed class DynamicBatcher<TInput, TOutput> : IDisposable
{
    private readonly BlockingCollection<Pending> _queue = new();
    private readonly Func<IReadOnlyList<TInput>, IReadOnlyList<TOutput>> _run;
    private readonly Action<TInput> _release;
    private readonly int _maxBatch;
    private readonly long _delayTicks;
    private readonly Thread[] _workers;
    private readonly CancellationTokenSource _stop = new();

    /// <param name="run">Runs one batch; returns one output per input, in order.</param>
    /// <param name="release">Called once per input after its batch ran (or failed, or was cancelled), e.g. to return a pooled buffer.</param>
    /// <param name="workers">Batches run at the same time.</param>
    /// <param name="maxBatch">Most inputs per batch.</param>
    /// <param name="delay">How long a batch waits for more inputs after its first.</param>
    public DynamicBatcher(Func<IReadOnlyList<TInput>, IReadOnlyList<TOutput>> run, Action<TInput> release, int workers, int maxBatch, TimeSpan delay)
    {
        _run = run;
        _release = release;
        _maxBatch = maxBatch;
        _delayTicks = (long)(delay.TotalSeconds * Stopwatch.Frequency);
        _workers = new Thread[workers];
        for (var i = 0; i < workers; i++)
        {
            _workers[i] = new Thread(Work) { IsBackground = true, Name = $"MLTransfer batcher {i}" };
            _workers[i].Start();
        }
    }

    /// <summary>Queues one input; the task completes when its batch has run. The batcher releases the input in every case.</summary>
    public Task<TOutput> Enqueue(TInput input, CancellationToken cancellationToken)
    {
        var pending = new Pending(input, cancellationToken);
        try
        {
            _queue.Add(pending, cancellationToken);
        }
        catch (Exception e) when (e is OperationCanceledException or InvalidOperationException)
        {
            _release(input);
            pending.Dispose();
            if (e is OperationCanceledException)
                throw;
            throw new ObjectDisposedException(nameof(ImageClassifier), "The classifier has been disposed.");
        }
        return pending.Completion.Task;
    }

    private void Work()
    {
        var batch = new List<Pending>(_maxBatch);
        var inputs = new List<TInput>(_maxBatch);
        try
        {
            while (true)
            {
                batch.Clear();
                inputs.Clear();
                if (!_queue.TryTake(out var first, Timeout.Infinite, _stop.Token))
                    return;
                Take(first, batch, inputs);
                var deadline = Stopwatch.GetTimestamp() + _delayTicks;
                while (batch.Count < _maxBatch)
                {
                    if (_queue.TryTake(out var next))
                    {
                        Take(next, batch, inputs);
                        continue;
                    }
                    var remaining = deadline - Stopwatch.GetTimestamp();
                    if (remaining <= 0 || !_queue.TryTake(out next, TimeSpan.FromSeconds((double)remaining / Stopwatch.Frequency)))
                        break;
                    Take(next, batch, inputs);
                }
                RunBatch(batch, inputs);
            }
        }
        catch (OperationCanceledException)
        {
            // Disposed.
        }
        catch (ObjectDisposedException)
        {
            // Disposed.
        }
    }

    private void Take(Pending pending, List<Pending> batch, List<TInput> inputs)
    {
        if (pending.Completion.Task.IsCompleted)
        {
            Release(pending);
            return;
        }
        batch.Add(pending);
        inputs.Add(pending.Input);
    }

    private void RunBatch(List<Pending> batch, List<TInput> inputs)
    {
        if (batch.Count == 0)
            return;
        try
        {
            var outputs = _run(inputs);
            for (var i = 0; i < batch.Count; i++)
                batch[i].Completion.TrySetResult(outputs[i]);
        }
        catch (Exception e)
        {
            foreach (var pending in batch)
                pending.Completion.TrySetException(e);
        }
        finally
        {
            foreach (var pending in batch)
                Release(pending);
        }
    }

    private void Release(Pending pending)
    {
        _release(pending.Input);
        pending.Dispose();
    }

    public void Dispose()
    {
        if (_stop.IsCancellationRequested)
            return;
        _queue.CompleteAdding();
        _stop.Cancel();
        foreach (var worker in _workers)
            worker.Join();
        while (_queue.TryTake(out var pending))
        {
            pending.Completion.TrySetException(new ObjectDisposedException(nameof(ImageClassifier), "The classifier was disposed before the image ran."));
            Release(pending);
        }
        _stop.Dispose();
        _queue.Dispose();
    }

    private sealed class Pending : IDisposable
    {
        private readonly CancellationTokenRegistration _registration;

        public Pending(TInput input, CancellationToken cancellationToken)
        {
            Input = input;
            Completion = new TaskCompletionSource<TOutput>(TaskCreationOptions.RunContinuationsAsynchronously);
            if (cancellationToken.CanBeCanceled)
                _registration = cancellationToken.Register(() => Completion.TrySetCanceled(cancellationToken));
        }

        public TInput Input { get; }

        public TaskCompletionSource<TOutput> Completion { get; }

        public void Dispose() => _registration.Dispose();
    }
}
