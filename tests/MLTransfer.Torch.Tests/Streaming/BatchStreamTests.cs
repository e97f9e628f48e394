using MLTransfer.Torch.Streaming;
using MLTransfer.Torch.Tests.Training;
using NUnit.Framework;

namespace MLTransfer.Torch.Tests.Streaming;

public class BatchStreamTests
{
    [Test]
    public void Should_read_ahead_at_most_its_capacity_while_the_consumer_is_slow()
    {
        var rows = new NoisyRows(64);
        using var stream = new BatchStream(rows, Enumerable.Range(0, 64).ToArray(), batchSize: 4, seed: 1, workers: 2, capacity: 3);
        var taken = 0;
        foreach (var batch in stream.Batches())
        {
            using (batch)
            {
                Thread.Sleep(20);
                taken++;
                Assert.That(Volatile.Read(ref rows.Fills), Is.LessThanOrEqualTo((taken + 3) * 4), "rows read beyond the bound");
            }
        }
        Assert.That(taken, Is.EqualTo(16));
        Assert.That(rows.Fills, Is.EqualTo(64));
    }

    [Test]
    public void Should_pass_a_reading_failure_on_with_its_message_and_release_what_was_read()
    {
        var before = BatchStream.CreatedTensors;
        using var stream = new BatchStream(new FailingRows(), Enumerable.Range(0, 40).ToArray(), batchSize: 4, seed: null, workers: 2);
        var seen = 0;
        var error = Assert.Throws<InvalidDataException>(() =>
        {
            foreach (var batch in stream.Batches())
                using (batch)
                    seen++;
        });
        Assert.That(error!.Message, Does.Contain("row 21 is unreadable"));
        Assert.That(seen, Is.LessThanOrEqualTo(5));
        Assert.That(BatchStream.CreatedTensors - before, Is.LessThan(40 / 4), "reading stopped after the failure");
    }

    [Test]
    public void Should_stop_its_workers_when_abandoned()
    {
        var rows = new NoisyRows(400, delayMilliseconds: 2);
        var stream = new BatchStream(rows, Enumerable.Range(0, 400).ToArray(), batchSize: 4, seed: 2, workers: 2);
        using (var first = stream.Batches().First())
        {
        }
        stream.Dispose();
        var fills = rows.Fills;
        Thread.Sleep(100);
        Assert.That(rows.Fills, Is.EqualTo(fills), "no worker runs after Dispose");
        Assert.That(fills, Is.LessThan(400));
    }

    private sealed class FailingRows : IRowSource
    {
        public int Count => 40;

        public long[] RowShape => [2];

        public void Fill(int index, Span<float> destination, Random? random)
        {
            if (index == 21)
                throw new InvalidDataException("row 21 is unreadable");
            destination.Fill(index);
        }
    }
}
