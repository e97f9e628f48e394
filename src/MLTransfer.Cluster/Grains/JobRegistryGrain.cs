using MLTransfer.Cluster.Hosting;

namespace MLTransfer.Cluster.Grains;

/// <summary>The list of running jobs; see <see cref="IJobRegistryGrain"/>.</summary>
internal sealed class JobRegistryGrain(
    [PersistentState("registry", WorkerOptions.StorageName)] IPersistentState<JobRegistryGrain.Stored> state) : Grain, IJobRegistryGrain
{
    /// <summary>The persisted form.</summary>
    [GenerateSerializer]
    public sealed class Stored
    {
        /// <summary>Running jobs, oldest first.</summary>
        [Id(0)] public List<string> Jobs { get; set; } = [];
    }

    public async Task Add(string jobId)
    {
        if (state.State.Jobs.Contains(jobId))
            return;
        state.State.Jobs.Add(jobId);
        await state.WriteStateAsync();
    }

    public async Task Remove(string jobId)
    {
        if (state.State.Jobs.Remove(jobId))
            await state.WriteStateAsync();
    }

    public Task<string[]> Active() => Task.FromResult(state.State.Jobs.ToArray());
}
