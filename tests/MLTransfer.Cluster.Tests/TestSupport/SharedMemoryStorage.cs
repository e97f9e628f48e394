using System.Collections.Concurrent;
using System.Text.Json;
using Orleans.Runtime;
using Orleans.Storage;

namespace MLTransfer.Cluster.Tests.TestSupport;

/// <summary>
/// Grain storage for the in-process test clusters: JSON copies in one dictionary outside every silo, so (like Redis) it
/// survives a killed silo. Each test cluster gets its own instance through <see cref="TestClusters"/>.
/// </summary>
public sealed class SharedMemoryStorage : IGrainStorage
{
    private readonly ConcurrentDictionary<string, (string Json, string ETag)> _entries = new();

    public static SharedMemoryStorage Current { get; set; } = new();

    public int Count => _entries.Count;

    public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        if (_entries.TryGetValue(Key(stateName, grainId), out var entry))
        {
            grainState.State = JsonSerializer.Deserialize<T>(entry.Json)!;
            grainState.ETag = entry.ETag;
            grainState.RecordExists = true;
        }
        return Task.CompletedTask;
    }

    public Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        var etag = Guid.NewGuid().ToString("N");
        _entries[Key(stateName, grainId)] = (JsonSerializer.Serialize(grainState.State), etag);
        grainState.ETag = etag;
        grainState.RecordExists = true;
        return Task.CompletedTask;
    }

    public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        _entries.TryRemove(Key(stateName, grainId), out _);
        grainState.RecordExists = false;
        grainState.ETag = null;
        return Task.CompletedTask;
    }

    private static string Key(string stateName, GrainId grainId) => stateName + "|" + grainId;
}
