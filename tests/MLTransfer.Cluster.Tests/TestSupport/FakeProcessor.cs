using System.Collections.Concurrent;
using MLTransfer.Cluster.Jobs;
using MLTransfer.Cluster.Output;
using MLTransfer.Cluster.Workers;

namespace MLTransfer.Cluster.Tests.TestSupport;

/// <summary>
/// A shard processor that takes a set time per image and writes a real part (feature = the image's number parsed from
/// its fake path), recording every call, so the job logic can be tested without the engine.
/// </summary>
public sealed class FakeProcessor : IShardProcessor
{
    private readonly TaskCompletionSource _unhang = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public static FakeProcessor Current { get; set; } = new();

    public TimeSpan PerImage { get; init; } = TimeSpan.FromMilliseconds(2);

    public Exception? Failure { get; init; }

    /// <summary>The first this many calls throw what a call to a grain on a silo that just died throws.</summary>
    public int ClusterFaults { get; init; }

    private int _calls;

    /// <summary>A silo whose shards hang, deaf to cancellation, like a node that stopped answering.</summary>
    public Orleans.Runtime.SiloAddress? HungSilo { get; set; }

    public void Unhang() => _unhang.TrySetResult();

    public Task<ShardResult> ProcessAsync(ShardLease lease, ShardInput input, CancellationToken cancellationToken) =>
        ProcessAsync(null, lease, input, cancellationToken);

    public ConcurrentBag<(int Shard, int Attempt)> Started { get; } = [];

    public ConcurrentBag<(int Shard, int Attempt)> Finished { get; } = [];

    public ConcurrentBag<(int Shard, int Attempt)> Cancelled { get; } = [];

    public async Task<ShardResult> ProcessAsync(Orleans.Runtime.SiloAddress? silo, ShardLease lease, ShardInput input, CancellationToken cancellationToken)
    {
        Started.Add((lease.Shard, lease.Attempt));
        if (silo is not null && silo.Equals(HungSilo))
        {
            await _unhang.Task;
            throw new OperationCanceledException("the hung silo was let go");
        }
        if (Failure is not null)
            throw Failure;
        if (Interlocked.Increment(ref _calls) <= ClusterFaults)
            throw new Orleans.Runtime.SiloUnavailableException("Exception while sending message: Unable to connect to S127.0.0.1:11191");
        try
        {
            var rows = new List<FeaturePartRow>();
            foreach (var path in input.Paths)
            {
                await Task.Delay(PerImage, cancellationToken);
                rows.Add(new FeaturePartRow { Path = path, Features = [float.Parse(Path.GetFileNameWithoutExtension(path))] });
            }
            PartFiles.Write(ShardKeys.Part(lease.Spec.OutputDirectory, lease.Shard), rows);
            Finished.Add((lease.Shard, lease.Attempt));
            return new ShardResult { Images = rows.Count };
        }
        catch (OperationCanceledException)
        {
            Cancelled.Add((lease.Shard, lease.Attempt));
            throw;
        }
    }
}
