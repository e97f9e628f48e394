using System.Collections.Concurrent;

namespace MLTransfer.Torch.FineTuning;

/// <summary>One training batch prepared on the worker thread: images (N·3·S·S floats) and labels.</summary>
internal sealed record PreparedBatch(float[] Images, long[] Labels, int Count);

/// <summary>
/// Prepares the batches of one epoch (shuffle, then augmentation) on a worker thread and hands them over through a
/// bounded queue, so C# augmentation overlaps with libtorch training. Everything random is drawn on the worker, in
/// order, from one seeded <see cref="Random"/>, so the batches do not depend on timing.
/// </summary>
internal sealed class BatchProducer : IDisposable
{
    private readonly BlockingCollection<PreparedBatch> _queue;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _worker;
    private Exception? _failure;

    public BatchProducer(IReadOnlyList<float[]> images, IReadOnlyList<int> labels, int[] order, int batchSize, ImageAugmenter? augmenter, Random random, int capacity = 3)
    {
        _queue = new BlockingCollection<PreparedBatch>(capacity);
        int length = images.Count > 0 ? images[0].Length : 0;
        _worker = Task.Run(() =>
        {
            try
            {
                for (int start = 0; start < order.Length; start += batchSize)
                {
                    int count = Math.Min(batchSize, order.Length - start);
                    var data = new float[count * length];
                    var batchLabels = new long[count];
                    for (int k = 0; k < count; k++)
                    {
                        int index = order[start + k];
                        batchLabels[k] = labels[index];
                        var target = data.AsSpan(k * length, length);
                        if (augmenter is null)
                        {
                            images[index].CopyTo(target);
                        }
                        else
                        {
                            augmenter.Augment(images[index], target, random);
                        }
                    }

                    _queue.Add(new PreparedBatch(data, batchLabels, count), _stop.Token);
                }
            }
            catch (OperationCanceledException)
            {
                // Disposed before the epoch ended (early exit or error): nothing more to produce.
            }
            catch (Exception e)
            {
                _failure = e;
            }
            finally
            {
                _queue.CompleteAdding();
            }
        });
    }

    /// <summary>The batches in order; blocks until the next one is ready; rethrows a failure of the worker.</summary>
    public IEnumerable<PreparedBatch> Batches()
    {
        foreach (var batch in _queue.GetConsumingEnumerable())
        {
            yield return batch;
        }

        if (_failure is not null)
        {
            throw new InvalidOperationException("Preparing a training batch failed.", _failure);
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        try
        {
            _worker.Wait();
        }
        catch (AggregateException)
        {
            // The worker's own failure surfaces through the missing batches; nothing to add when disposing.
        }

        _queue.Dispose();
        _stop.Dispose();
    }
}
