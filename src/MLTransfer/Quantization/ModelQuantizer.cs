using System.IO.Compression;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using MLTransfer.Featurization;
using Onnx;

namespace MLTransfer.Quantization;

/// <summary>What <see cref="ModelQuantizer.Quantize"/> did.</summary>
/// <param name="InputPath">The float model.</param>
/// <param name="OutputPath">The int8 model written.</param>
/// <param name="InputBytes">Size of the float <c>.zip</c>.</param>
/// <param name="OutputBytes">Size of the int8 <c>.zip</c>.</param>
/// <param name="Graphs">One summary per ONNX graph quantised (one for every MLTransfer model).</param>
/// <param name="CalibrationImages">The calibration images selected.</param>
public sealed record ModelQuantizationReport(string InputPath, string OutputPath, long InputBytes, long OutputBytes,
    IReadOnlyList<QuantizationSummary> Graphs, IReadOnlyList<string> CalibrationImages);

/// <summary>
/// Quantises the backbone of a saved MLTransfer model (<c>.zip</c>) to int8 with <see cref="QdqQuantizer"/> and writes a
/// new <c>.zip</c> in which only the ONNX graph of ML.NET's <c>ApplyOnnxModel</c> transform is replaced; the image
/// transforms, the head and every other part are copied byte for byte, so the result still loads with ML.NET packages
/// only (<c>mlContext.Model.Load</c>) and ONNX Runtime runs its convolutions on int8 kernels.
/// </summary>
public static class ModelQuantizer
{
    /// <summary>Name of the stream in which ML.NET's ONNX transform stores its graph (a 32-bit length, then the bytes).</summary>
    public const string OnnxEntryName = "OnnxModel";

    /// <summary>Quantises a model file.</summary>
    /// <param name="modelPath">A float MLTransfer <c>.zip</c>.</param>
    /// <param name="outputPath">Where to write the int8 <c>.zip</c> (atomically; may equal <paramref name="modelPath"/>).</param>
    /// <param name="options">Calibration images and settings; <see cref="QuantizationOptions.CalibrationFolder"/> or <see cref="QuantizationOptions.CalibrationImages"/> is required.</param>
    /// <param name="progress">Receives (calibration images done, total); may be null.</param>
    /// <exception cref="FileNotFoundException">The model does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not an ML.NET model, holds no MLTransfer image graph, is already quantised, or no calibration image could be read.</exception>
    public static ModelQuantizationReport Quantize(string modelPath, string outputPath, QuantizationOptions options,
        IProgress<(int Done, int Total)>? progress = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(modelPath);
        ArgumentException.ThrowIfNullOrWhiteSpace(outputPath);
        ArgumentNullException.ThrowIfNull(options);
        if (!File.Exists(modelPath))
            throw new FileNotFoundException($"Model file '{modelPath}' does not exist.", modelPath);
        var images = QdqQuantizer.SelectCalibrationImages(options);
        var inputBytes = new FileInfo(modelPath).Length;
        var replaced = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        var summaries = new List<QuantizationSummary>();
        using (var archive = OpenArchive(modelPath))
        {
            var entries = archive.Entries.Where(e => e.Name == OnnxEntryName).ToList();
            if (entries.Count == 0)
                throw new InvalidDataException($"'{modelPath}' has no ONNX graph (no ApplyOnnxModel transform): it is not an MLTransfer image model.");
            foreach (var entry in entries)
            {
                var graph = ReadGraph(entry, modelPath);
                if (QdqQuantizer.IsQuantized(graph))
                    throw new InvalidDataException($"'{modelPath}' is already quantised.");
                var quantized = QuantizedGraphStore.GetOrQuantize(options.GraphStoreDirectory, graph, images, options, out var summary, progress);
                var bytes = quantized.ToByteArray();
                CheckLoads(bytes, modelPath);
                replaced[entry.FullName] = bytes;
                summaries.Add(summary);
            }
        }
        AtomicFile.Write(outputPath, stream => CopyReplacing(modelPath, stream, replaced));
        return new ModelQuantizationReport(modelPath, outputPath, inputBytes, new FileInfo(outputPath).Length, summaries, images);
    }

    /// <summary>Reads the ONNX graphs stored in a model <c>.zip</c>, keyed by their entry name.</summary>
    /// <param name="modelPath">An ML.NET model file.</param>
    /// <exception cref="InvalidDataException">The file is not an ML.NET model or an entry is not ONNX.</exception>
    public static IReadOnlyDictionary<string, ModelProto> ReadGraphs(string modelPath)
    {
        if (!File.Exists(modelPath))
            throw new FileNotFoundException($"Model file '{modelPath}' does not exist.", modelPath);
        using var archive = OpenArchive(modelPath);
        return archive.Entries.Where(e => e.Name == OnnxEntryName).ToDictionary(e => e.FullName, e => ReadGraph(e, modelPath), StringComparer.Ordinal);
    }

    private static ZipArchive OpenArchive(string path)
    {
        try
        {
            return ZipFile.OpenRead(path);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"'{path}' is not an ML.NET model: {e.Message}", e);
        }
    }

    private static ModelProto ReadGraph(ZipArchiveEntry entry, string modelPath)
    {
        using var stream = entry.Open();
        using var reader = new BinaryReader(stream);
        try
        {
            var length = reader.ReadInt32();
            var bytes = reader.ReadBytes(length);
            if (length <= 0 || bytes.Length != length)
                throw new InvalidDataException($"'{modelPath}': the ONNX graph in '{entry.FullName}' is truncated.");
            var parser = new MessageParser<ModelProto>(() => new ModelProto());
            return parser.ParseFrom(CodedInputStream.CreateWithLimits(new MemoryStream(bytes), int.MaxValue, 100));
        }
        catch (Exception e) when (e is EndOfStreamException or InvalidProtocolBufferException)
        {
            throw new InvalidDataException($"'{modelPath}': '{entry.FullName}' is not an ONNX graph: {e.Message}", e);
        }
    }

    private static void CheckLoads(byte[] graph, string modelPath)
    {
        try
        {
            using var options = OnnxImageFeaturizer.CreateSessionOptions(1);
            using var session = new InferenceSession(graph, options);
        }
        catch (OnnxRuntimeException e)
        {
            throw new InvalidDataException($"The quantised graph of '{modelPath}' does not load in ONNX Runtime: {e.Message}", e);
        }
    }

    private static void CopyReplacing(string sourcePath, Stream destination, IReadOnlyDictionary<string, byte[]> replaced)
    {
        using var source = ZipFile.OpenRead(sourcePath);
        using var target = new ZipArchive(destination, ZipArchiveMode.Create, leaveOpen: true);
        foreach (var entry in source.Entries)
        {
            var copy = target.CreateEntry(entry.FullName, CompressionLevel.Optimal);
            copy.LastWriteTime = entry.LastWriteTime;
            using var output = copy.Open();
            if (replaced.TryGetValue(entry.FullName, out var graph))
            {
                using var writer = new BinaryWriter(output, System.Text.Encoding.UTF8, leaveOpen: true);
                writer.Write(graph.Length);
                writer.Write(graph);
            }
            else
            {
                using var input = entry.Open();
                input.CopyTo(output);
            }
        }
    }
}
