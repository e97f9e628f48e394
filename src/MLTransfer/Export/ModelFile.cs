using Microsoft.ML;
using Microsoft.ML.Data;
using MLTransfer.Data;

namespace MLTransfer.Export;

/// <summary>Saves and loads MLTransfer models as ML.NET <c>.zip</c> files.</summary>
public static class ModelFile
{
    /// <summary>
    /// Saves a model whose only input is <c>ImagePath</c>, atomically: the <c>.zip</c> is written to a temporary file
    /// in the same folder and renamed over the destination, so a crash or a full disk never leaves a half-written model.
    /// </summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="model">The model.</param>
    /// <param name="path">Destination <c>.zip</c>.</param>
    public static void Save(MLContext mlContext, ITransformer model, string path)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentNullException.ThrowIfNull(model);
        var schema = mlContext.Data.LoadFromEnumerable(Array.Empty<ImagePathOnly>()).Schema;
        AtomicFile.Write(path, stream => mlContext.Model.Save(model, schema, stream));
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

    private sealed class ImagePathOnly
    {
        public string ImagePath { get; set; } = "";
    }
}
