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
    private static string Key(ModelProto graph, IReadOnlyList<string> calibrationImages, QuantizationOptions options)
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
    private static bool TryRead(string folder, string key, out ModelProto graph, out QuantizationSummary summary)
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
    private static void Record(string folder, string key, string graphPath, QuantizationSummary summary)
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
    /// result; <see cref="QuantizationSummary.Reused"/> says which happened. With a null <paramref name="folder"/> it only quantises.
    /// </summary>
    /// <param name="folder">The store folder (created if missing); null stores and reuses nothing.</param>
    /// <param name="graph">The float graph.</param>
    /// <param name="calibrationImages">The calibration image files.</param>
    /// <param name="options">The options.</param>
    /// <param name="summary">What the quantisation did, and whether it was reused.</param>
    /// <param name="progress">Receives calibration progress when it runs; may be null.</param>
    /// <param name="writeTo">
    /// A file the quantised graph must be written to (atomically; a failure throws), which the entry then names; null writes
    /// it into <paramref name="folder"/> as far as the disk allows.
    /// </param>
    public static ModelProto GetOrQuantize(string? folder, ModelProto graph, IReadOnlyList<string> calibrationImages, QuantizationOptions options,
        out QuantizationSummary summary, IProgress<(int Done, int Total)>? progress = null, string? writeTo = null)
    {
        ArgumentNullException.ThrowIfNull(graph);
        ArgumentNullException.ThrowIfNull(options);
        var key = folder is null ? null : Key(graph, calibrationImages, options);
        if (key is not null && TryRead(folder!, key, out var stored, out summary))
        {
            summary = summary with { Reused = true };
            if (writeTo is not null)
                AtomicFile.Write(writeTo, s => stored.WriteTo(s));
            return stored;
        }
        var quantized = QdqQuantizer.Quantize(graph, calibrationImages, options, out summary, progress);
        if (writeTo is not null)
            AtomicFile.Write(writeTo, s => quantized.WriteTo(s));
        if (key is null)
            return quantized;
        try
        {
            Directory.CreateDirectory(folder!);
            var path = writeTo ?? Path.Combine(folder!, key + ".onnx");
            if (writeTo is null)
                AtomicFile.Write(path, s => quantized.WriteTo(s));
            Record(folder!, key, path, summary);
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
