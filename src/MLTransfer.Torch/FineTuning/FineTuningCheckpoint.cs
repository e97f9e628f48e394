using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Serialization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLTransfer.Torch.FineTuning;

/// <summary>The resumable state of a fine-tuning run after an epoch.</summary>
internal sealed class FineTuningCheckpointState
{
    public int CompletedEpochs { get; set; }

    public double BestAccuracy { get; set; } = double.NegativeInfinity;

    public int EpochsWithoutImprovement { get; set; }

    public bool Stopped { get; set; }

    /// <summary>Identifies the run (classes, image size, seed, split); a checkpoint of another run is refused.</summary>
    public string RunKey { get; set; } = string.Empty;

    public List<FineTuningEpochMetrics> History { get; set; } = [];
}

/// <summary>
/// Reads and writes the single checkpoint file of a run: state, network tensors, best-epoch tensors and optimiser
/// state. It is written to a temporary file in the same folder and renamed over the previous one, so a run killed
/// while saving leaves the last complete checkpoint.
/// </summary>
internal static class FineTuningCheckpoint
{
    public const string FileName = "fine-tuning.checkpoint";
    private const string Magic = "MLTransfer.FineTuning.Checkpoint/1";

    private static readonly JsonSerializerOptions Json = new() { NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals };

    public static string PathIn(string directory) => Path.Combine(directory, FileName);

    public static void Save(
        string directory,
        FineTuningCheckpointState state,
        IEnumerable<(string Name, Tensor Tensor)> network,
        IReadOnlyDictionary<string, Tensor>? best,
        OptimizerHelper optimizer)
    {
        Directory.CreateDirectory(directory);
        string final = PathIn(directory);
        string temp = final + ".tmp";
        using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
        using (var writer = new BinaryWriter(stream))
        {
            writer.Write(Magic);
            writer.Write(JsonSerializer.Serialize(state, Json));
            WriteTensors(writer, network.ToList());
            WriteTensors(writer, best?.Select(kv => (kv.Key, kv.Value)).ToList() ?? []);
            optimizer.save_state_dict(writer);
            writer.Flush();
            stream.Flush(flushToDisk: true);
        }

        File.Move(temp, final, overwrite: true);
    }

    /// <summary>Loads a checkpoint; returns the state, the network tensors and the best-epoch tensors (caller disposes the tensors).</summary>
    public static (FineTuningCheckpointState State, Dictionary<string, Tensor> Network, Dictionary<string, Tensor> Best) Load(string directory, OptimizerHelper optimizer)
    {
        using var stream = File.OpenRead(PathIn(directory));
        using var reader = new BinaryReader(stream);
        if (reader.ReadString() != Magic)
        {
            throw new InvalidDataException($"{PathIn(directory)} is not a fine-tuning checkpoint.");
        }

        var state = JsonSerializer.Deserialize<FineTuningCheckpointState>(reader.ReadString(), Json)
            ?? throw new InvalidDataException("Empty checkpoint state.");
        var network = ReadTensors(reader);
        var best = ReadTensors(reader);
        optimizer.load_state_dict(reader);
        return (state, network, best);
    }

    private static void WriteTensors(BinaryWriter writer, IReadOnlyList<(string Name, Tensor Tensor)> tensors)
    {
        writer.Write(tensors.Count);
        foreach (var (name, tensor) in tensors)
        {
            using var cpu = tensor.detach().cpu().contiguous();
            writer.Write(name);
            writer.Write(cpu.shape.Length);
            foreach (long d in cpu.shape)
            {
                writer.Write(d);
            }

            float[] values = cpu.data<float>().ToArray();
            writer.Write(values.Length);
            writer.Write(MemoryMarshal.AsBytes(values.AsSpan()));
        }
    }

    private static Dictionary<string, Tensor> ReadTensors(BinaryReader reader)
    {
        int count = reader.ReadInt32();
        var result = new Dictionary<string, Tensor>(count, StringComparer.Ordinal);
        for (int i = 0; i < count; i++)
        {
            string name = reader.ReadString();
            var shape = new long[reader.ReadInt32()];
            for (int d = 0; d < shape.Length; d++)
            {
                shape[d] = reader.ReadInt64();
            }

            var values = new float[reader.ReadInt32()];
            reader.BaseStream.ReadExactly(MemoryMarshal.AsBytes(values.AsSpan()));
            result[name] = torch.tensor(values, shape).DetachFromDisposeScope();
        }

        return result;
    }
}
