using System.Collections.Concurrent;
using Orleans.Runtime;
using Orleans.Storage;

namespace MLTransfer.Cluster.Tests.TestSupport;

/// <summary>
/// Grain storage for the in-process test clusters: entries in one dictionary outside every silo, so (like Redis) it
/// survives a killed silo, serialised with each silo's own grain-storage serializer (the one the Redis provider uses),
/// so state that a real provider could not read back fails here too.
/// </summary>
public sealed class SharedMemoryStorage
{
    private readonly ConcurrentDictionary<string, (BinaryData Data, string ETag)> _entries = new();

    public static SharedMemoryStorage Current { get; set; } = new();

    public IGrainStorage For(IGrainStorageSerializer serializer) => new View(this, serializer);

    private sealed class View(SharedMemoryStorage store, IGrainStorageSerializer serializer) : IGrainStorage
    {
        public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
        {
            if (store._entries.TryGetValue(Key(stateName, grainId), out var entry))
            {
                grainState.State = serializer.Deserialize<T>(entry.Data);
                grainState.ETag = entry.ETag;
                grainState.RecordExists = true;
            }
            return Task.CompletedTask;
        }

        public Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
        {
            var etag = Guid.NewGuid().ToString("N");
            store._entries[Key(stateName, grainId)] = (serializer.Serialize(grainState.State), etag);
            grainState.ETag = etag;
            grainState.RecordExists = true;
            return Task.CompletedTask;
        }

        public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
        {
            store._entries.TryRemove(Key(stateName, grainId), out _);
            grainState.RecordExists = false;
            grainState.ETag = null;
            return Task.CompletedTask;
        }

        private static string Key(string stateName, GrainId grainId) => stateName + "|" + grainId;
    }
}
