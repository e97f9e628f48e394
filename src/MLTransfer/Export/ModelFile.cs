using System.Buffers.Binary;
using System.IO.Compression;
using System.Text.Json;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLTransfer.Data;
using MLTransfer.Techniques;

namespace MLTransfer.Export;

/// <summary>Saves and loads MLTransfer models as ML.NET <c>.zip</c> files.</summary>
public static class ModelFile
{
    /// <summary>
    /// Name of the entry in the <c>.zip</c> where <see cref="Save"/> records which technique trained the model. ML.NET ignores
    /// entries it does not know, so the file still loads with ML.NET packages only.
    /// </summary>
    public const string InfoEntryName = "MLTransfer/Model.json";

    // ML.NET's OnnxTransformer keeps its graph in an entry of this name, as a 32-bit length followed by the ONNX bytes.
    private const string OnnxEntryName = "OnnxModel";

    /// <summary>
    /// Saves a model whose only input is <c>ImagePath</c>, atomically: the <c>.zip</c> is written to a temporary file
    /// in the same folder and renamed over the destination, so a crash or a full disk never leaves a half-written model.
    /// A <see cref="TransferModel"/> also records its technique (<see cref="ReadTechnique"/>).
    /// </summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="model">The model.</param>
    /// <param name="path">Destination <c>.zip</c>.</param>
    public static void Save(MLContext mlContext, ITransformer model, string path)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentNullException.ThrowIfNull(model);
        var schema = mlContext.Data.LoadFromEnumerable(Array.Empty<ImagePathOnly>()).Schema;
        var technique = (model as TransferModel)?.Report.Technique;
        AtomicFile.Write(path, stream =>
        {
            mlContext.Model.Save(model, schema, stream);
            if (string.IsNullOrEmpty(technique))
                return;
            stream.Position = 0;
            using var zip = new ZipArchive(stream, ZipArchiveMode.Update, leaveOpen: true);
            using var entry = zip.CreateEntry(InfoEntryName, CompressionLevel.Optimal).Open();
            JsonSerializer.Serialize(entry, new SavedInfo { Technique = technique });
        });
    }

    /// <summary>Loads a model, with a clear error when the file is missing or not an ML.NET model.</summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="path">The <c>.zip</c>.</param>
    public static ITransformer Load(MLContext mlContext, string path)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        if (!File.Exists(path))
            throw new FileNotFoundException($"Model file '{path}' does not exist.", path);
        try
        {
            return mlContext.Model.Load(path, out _);
        }
        catch (Exception e) when (e is not OutOfMemoryException and not IOException)
        {
            throw new InvalidDataException($"'{path}' is not an ML.NET model: {e.Message}", e);
        }
    }

    /// <summary>The technique that trained a saved model (e.g. <c>feature-extraction</c>), or null when the file does not say.</summary>
    /// <param name="path">The <c>.zip</c>.</param>
    public static string? ReadTechnique(string path)
    {
        using var zip = OpenZip(path);
        var entry = zip.GetEntry(InfoEntryName);
        if (entry is null)
            return null;
        try
        {
            using var stream = entry.Open();
            return JsonSerializer.Deserialize<SavedInfo>(stream)?.Technique;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>The bytes of the one ONNX graph an MLTransfer <c>.zip</c> embeds (the graph of its <c>ApplyOnnxModel</c> transform).</summary>
    /// <param name="path">The <c>.zip</c>.</param>
    /// <exception cref="InvalidDataException">The file is not a zip, or holds no graph or more than one.</exception>
    internal static byte[] ReadOnnxGraph(string path)
    {
        using var zip = OpenZip(path);
        var entries = zip.Entries.Where(e => e.Name == OnnxEntryName).ToList();
        if (entries.Count != 1)
            throw new InvalidDataException(
                $"'{path}' holds {entries.Count} ONNX graphs; an MLTransfer model has exactly one (its backbone, applied with ApplyOnnxModel).");
        using var stream = entries[0].Open();
        var prefix = new byte[4];
        stream.ReadExactly(prefix);
        var length = BinaryPrimitives.ReadInt32LittleEndian(prefix);
        if (length <= 0 || length != entries[0].Length - 4)
            throw new InvalidDataException($"'{path}': the ONNX graph entry '{entries[0].FullName}' is not in ML.NET's format.");
        var bytes = new byte[length];
        stream.ReadExactly(bytes);
        return bytes;
    }

    private static ZipArchive OpenZip(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"Model file '{path}' does not exist.", path);
        try
        {
            return ZipFile.OpenRead(path);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"'{path}' is not an ML.NET model: {e.Message}", e);
        }
    }

    private sealed class ImagePathOnly
    {
        public string ImagePath { get; set; } = "";
    }

    private sealed class SavedInfo
    {
        public string? Technique { get; set; }
    }
}
