using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Google.Protobuf;
using MLTransfer.IO;
using Onnx;

namespace MLTransfer.Quantization;

/// <summary>
/// A folder of quantised graphs keyed by content: the float graph's bytes, the options that change the result
/// (<see cref="QuantizationOptions.Key"/>) and the bytes of every calibration image. Quantising the same graph the same way
/// twice (the int8 engine of <c>train --int8</c>, then the <c>.zip</c> it saves) then calibrates once. Each entry is a JSON
/// file naming the quantised graph's file and holding its <see cref="QuantizationSummary"/>; both are written atomically,
/// and an entry whose graph file is gone or unreadable counts as missing.
/// </summary>
public static class QuantizedGraphStore
{
    /// <summary>The entry key of a quantisation: a hash of the graph, the options and the calibration images' content.</summary>
    /// <param name="graph">The float graph.</param>
    /// <param name="calibrationImages">The calibration image files.</param>
    /// <param name="options">The options.</param>
    public static string Key(ModelProto graph, IReadOnlyList<string> calibrationImages, QuantizationOptions options)
    {
        ArgumentNullException.ThrowIfNull(graph);
        ArgumentNullException.ThrowIfNull(calibrationImages);
        ArgumentNullException.ThrowIfNull(options);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(Encoding.UTF8.GetBytes($"int8v{QdqQuantizer.Version}|{options.Key}|"));
        hash.AppendData(SHA256.HashData(graph.ToByteArray()));
        QdqQuantizer.AppendContent(hash, calibrationImages);
        return $"int8v{QdqQuantizer.Version}-{Convert.ToHexStringLower(hash.GetHashAndReset())[..16]}";
    }

    /// <summary>Reads a stored quantisation; false when the folder has none for <paramref name="key"/>.</summary>
    /// <param name="folder">The store folder.</param>
    /// <param name="key">From <see cref="Key"/>.</param>
    /// <param name="graph">The quantised graph.</param>
    /// <param name="summary">What the quantisation did.</param>
    public static bool TryRead(string folder, string key, out ModelProto graph, out QuantizationSummary summary)
    {
        graph = null!;
        summary = null!;
        var entry = EntryPath(folder, key);
        try
        {
            if (!File.Exists(entry))
                return false;
            var stored = JsonSerializer.Deserialize<Entry>(File.ReadAllText(entry));
            if (stored?.Summary is null || string.IsNullOrEmpty(stored.Graph))
                return false;
            var path = Path.Combine(folder, Path.GetFileName(stored.Graph));
            if (!File.Exists(path))
                return false;
            graph = ModelProto.Parser.ParseFrom(File.ReadAllBytes(path));
            summary = stored.Summary;
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException or InvalidProtocolBufferException)
        {
            return false;
        }
    }

    /// <summary>
    /// Records a quantisation whose graph is already written at <paramref name="graphPath"/> (inside <paramref name="folder"/>).
    /// Best effort: a store that cannot be written only costs a later recalibration.
    /// </summary>
    /// <param name="folder">The store folder.</param>
    /// <param name="key">From <see cref="Key"/>.</param>
    /// <param name="graphPath">The quantised graph's file, in <paramref name="folder"/>.</param>
    /// <param name="summary">What the quantisation did.</param>
    public static void Record(string folder, string key, string graphPath, QuantizationSummary summary)
    {
        ArgumentNullException.ThrowIfNull(summary);
        try
        {
            Directory.CreateDirectory(folder);
            var json = JsonSerializer.Serialize(new Entry { Graph = Path.GetFileName(graphPath), Summary = summary });
            AtomicFile.Write(EntryPath(folder, key), s => s.Write(Encoding.UTF8.GetBytes(json)));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Nothing lost: the next identical quantisation calibrates again.
        }
    }

    /// <summary>
    /// Returns the stored quantisation of <paramref name="graph"/> with these images and options, or quantises it and stores the
    /// result. <paramref name="reused"/> says which happened.
    /// </summary>
    /// <param name="folder">The store folder (created if missing).</param>
    /// <param name="graph">The float graph.</param>
    /// <param name="calibrationImages">The calibration image files.</param>
    /// <param name="options">The options.</param>
    /// <param name="summary">What the quantisation did (when it ran).</param>
    /// <param name="reused">True when the result came from the store.</param>
    /// <param name="progress">Receives calibration progress when it runs; may be null.</param>
    public static ModelProto GetOrQuantize(string folder, ModelProto graph, IReadOnlyList<string> calibrationImages, QuantizationOptions options,
        out QuantizationSummary summary, out bool reused, IProgress<(int Done, int Total)>? progress = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        var key = Key(graph, calibrationImages, options);
        if (TryRead(folder, key, out var stored, out summary))
        {
            reused = true;
            return stored;
        }
        var quantized = QdqQuantizer.Quantize(graph, calibrationImages, options, out summary, progress);
        reused = false;
        try
        {
            Directory.CreateDirectory(folder);
            var path = Path.Combine(folder, key + ".onnx");
            AtomicFile.Write(path, s => quantized.WriteTo(s));
            Record(folder, key, path, summary);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The quantised graph is returned all the same; only the reuse is lost.
        }
        return quantized;
    }

    private static string EntryPath(string folder, string key) => Path.Combine(folder, key + ".json");

    private sealed class Entry
    {
        public string? Graph { get; set; }

        public QuantizationSummary? Summary { get; set; }
    }
}
