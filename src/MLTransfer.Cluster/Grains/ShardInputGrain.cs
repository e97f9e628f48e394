using MLTransfer.Cluster.Hosting;
using MLTransfer.Cluster.Jobs;

namespace MLTransfer.Cluster.Grains;

/// <summary>The stored images of one shard; see <see cref="IShardInputGrain"/>.</summary>
internal sealed class ShardInputGrain(
    [PersistentState("input", WorkerOptions.StorageName)] IPersistentState<ShardInputGrain.Stored> state) : Grain, IShardInputGrain
{
    /// <summary>The persisted form (plain lists, for the JSON grain-state serializer).</summary>
    [GenerateSerializer]
    public sealed class Stored
    {
        /// <summary>Image paths.</summary>
        [Id(0)] public List<string> Paths { get; set; } = [];

        /// <summary>Labels, one per path.</summary>
        [Id(1)] public List<string> Labels { get; set; } = [];
    }

    public async Task Define(ShardInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.Paths.Count != input.Labels.Count)
            throw new ArgumentException("A shard needs one label per path.", nameof(input));
        if (state.RecordExists && state.State.Paths.SequenceEqual(input.Paths) && state.State.Labels.SequenceEqual(input.Labels))
            return;
        state.State = new Stored { Paths = [.. input.Paths], Labels = [.. input.Labels] };
        await state.WriteStateAsync();
    }

    public Task<ShardInput> Get()
    {
        if (!state.RecordExists)
            throw new InvalidOperationException($"Shard '{this.GetPrimaryKeyString()}' has no stored images.");
        return Task.FromResult(new ShardInput { Paths = state.State.Paths, Labels = state.State.Labels });
    }

    public async Task Clear()
    {
        if (state.RecordExists)
            await state.ClearStateAsync();
        DeactivateOnIdle();
    }
}
