using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Serialization;
using static TorchSharp.torch;

namespace MLTransfer.Torch.Training;

/// <summary>The resumable state of a training run after an epoch (everything but the tensors).</summary>
internal sealed class CheckpointState
{
    /// <summary>Identifies the run (technique, classes or tasks, image size, seed, split, mode); a checkpoint of another run is refused.</summary>
    public string RunKey { get; set; } = string.Empty;

    public int CompletedEpochs { get; set; }

    public double BestScore { get; set; } = double.NegativeInfinity;

    public int EpochsWithoutImprovement { get; set; }

    public bool Stopped { get; set; }

    public List<TrainingEpochMetrics> History { get; set; } = [];

    /// <summary>The optimiser's step count per parameter.</summary>
    public Dictionary<string, long> OptimizerSteps { get; set; } = [];

    /// <summary>Updates of the weight average (0 when the run keeps none).</summary>
    public long WeightAverageUpdates { get; set; }
}

/// <summary>What an existing checkpoint says, for a caller deciding how to resume (e.g. the CLI's message).</summary>
/// <param name="Path">The checkpoint file.</param>
/// <param name="CompletedEpochs">Epochs it holds.</param>
/// <param name="Stopped">Whether the run had already stopped early.</param>
public sealed record CheckpointInfo(string Path, int CompletedEpochs, bool Stopped);

/// <summary>
/// The single checkpoint file of a training run, one format for every TorchSharp technique: the state (run key, epochs
/// done, best score, early-stopping count, history, optimiser step counts) as JSON first, then the network's tensors, the
/// best epoch's tensors, the optimiser's moment buffers and the weight average's tensors (none without one). It is written atomically (<see cref="AtomicFile"/>), so a
/// run killed while saving leaves the previous complete checkpoint, and its run key is checked before any tensor is read,
/// so another run's checkpoint is refused with a clear message whatever its shapes.
/// </summary>
public static class TrainingCheckpoint
{
    /// <summary>The checkpoint's file name inside its folder.</summary>
    public const string FileName = "training.checkpoint";

    private const string Magic = "MLTransfer.Training.Checkpoint/2";

    private static readonly JsonSerializerOptions Json = new() { NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals };

    /// <summary>The checkpoint file in a folder.</summary>
    /// <param name="directory">The checkpoint folder.</param>
    public static string PathIn(string directory) => Path.Combine(directory, FileName);

    /// <summary>Describes the checkpoint in <paramref name="directory"/>, or returns null when there is none (or it is unreadable).</summary>
    /// <param name="directory">The checkpoint folder.</param>
    public static CheckpointInfo? Find(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        var path = PathIn(directory);
        if (!File.Exists(path))
            return null;
        try
        {
            using var stream = File.OpenRead(path);
            using var reader = new BinaryReader(stream);
            var state = ReadState(reader, path);
            return new CheckpointInfo(path, state.CompletedEpochs, state.Stopped);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or JsonException)
        {
            return null;
        }
    }

    internal static void Save(string directory, CheckpointState state, IEnumerable<(string Name, Tensor Tensor)> network,
        IReadOnlyDictionary<string, Tensor>? best, IEnumerable<(string Name, Tensor Tensor)> optimizer, IEnumerable<(string Name, Tensor Tensor)> average)
    {
        AtomicFile.Write(PathIn(directory), stream =>
        {
            using var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true);
            writer.Write(Magic);
            writer.Write(JsonSerializer.Serialize(state, Json));
            WriteTensors(writer, network.ToList());
            WriteTensors(writer, best?.Select(kv => (kv.Key, kv.Value)).ToList() ?? []);
            WriteTensors(writer, optimizer.ToList());
            WriteTensors(writer, average.ToList());
        });
    }

    /// <summary>
    /// Loads the checkpoint of the run <paramref name="runKey"/>; throws before reading any tensor when it belongs to another
    /// run. The caller disposes the returned tensors.
    /// </summary>
    internal static (CheckpointState State, Dictionary<string, Tensor> Network, Dictionary<string, Tensor> Best, Dictionary<string, Tensor> Optimizer, Dictionary<string, Tensor> Average) Load(string directory, string runKey)
    {
        var path = PathIn(directory);
        using var stream = File.OpenRead(path);
        using var reader = new BinaryReader(stream);
        var state = ReadState(reader, path);
        if (state.RunKey != runKey)
            throw new InvalidOperationException(
                $"The checkpoint in {directory} belongs to another run ({state.RunKey}), not to this one ({runKey}); delete it or train without resuming.");
        try
        {
            return (state, ReadTensors(reader), ReadTensors(reader), ReadTensors(reader), ReadTensors(reader));
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidDataException($"The checkpoint {path} is truncated.", e);
        }
    }

    private static CheckpointState ReadState(BinaryReader reader, string path)
    {
        string magic;
        try
        {
            magic = reader.ReadString();
        }
        catch (Exception e) when (e is EndOfStreamException or IOException)
        {
            throw new InvalidDataException($"{path} is not an MLTransfer training checkpoint.", e);
        }
        if (magic != Magic)
            throw new InvalidDataException($"{path} is not an MLTransfer training checkpoint of this version; delete it or train without resuming.");
        return JsonSerializer.Deserialize<CheckpointState>(reader.ReadString(), Json)
            ?? throw new InvalidDataException($"{path} has an empty state.");
    }

    private static void WriteTensors(BinaryWriter writer, IReadOnlyList<(string Name, Tensor Tensor)> tensors)
    {
        writer.Write(tensors.Count);
        foreach (var (name, tensor) in tensors)
        {
            using var cpu = tensor.detach().cpu().contiguous();
            writer.Write(name);
            writer.Write(cpu.shape.Length);
            foreach (var d in cpu.shape)
                writer.Write(d);
            var values = cpu.data<float>().ToArray();
            writer.Write(values.Length);
            writer.Write(MemoryMarshal.AsBytes(values.AsSpan()));
        }
    }

    private static Dictionary<string, Tensor> ReadTensors(BinaryReader reader)
    {
        var count = reader.ReadInt32();
        var result = new Dictionary<string, Tensor>(count, StringComparer.Ordinal);
        for (var i = 0; i < count; i++)
        {
            var name = reader.ReadString();
            var shape = new long[reader.ReadInt32()];
            for (var d = 0; d < shape.Length; d++)
                shape[d] = reader.ReadInt64();
            var values = new float[reader.ReadInt32()];
            reader.BaseStream.ReadExactly(MemoryMarshal.AsBytes(values.AsSpan()));
            result[name] = tensor(values, shape).DetachFromDisposeScope();
        }
        return result;
    }
}
