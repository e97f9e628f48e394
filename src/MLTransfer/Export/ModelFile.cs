using System.IO.Compression;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLTransfer.Data;
using MLTransfer.IO;

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

    /// <summary>The extension of model files: <c>.zip</c>.</summary>
    public const string Extension = ".zip";

    /// <summary>
    /// Loads a model, with a clear error when the path is missing, a folder, or not an ML.NET model. ML.NET extracts the
    /// model's ONNX graph to <see cref="MLContext.TempFilePath"/>; dispose the returned transformer to delete that copy, or
    /// use <see cref="Open"/>, which does both.
    /// </summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="path">The <c>.zip</c>.</param>
    public static ITransformer Load(MLContext mlContext, string path)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (Directory.Exists(path))
            throw new FileNotFoundException($"'{path}' is a folder, not a model file: give the .zip that 'mltransfer train' wrote.", path);
        if (!File.Exists(path))
            throw new FileNotFoundException($"Model file '{path}' does not exist.", path);
        Featurization.OnnxRuntimeEnvironment.EnsureConfigured();
        try
        {
            return mlContext.Model.Load(path, out _);
        }
        catch (Exception e) when (e is not OutOfMemoryException and not IOException)
        {
            throw new InvalidDataException($"'{path}' is not an ML.NET model: {e.Message}", e);
        }
    }

    /// <summary>
    /// Loads a model with its own ML.NET context whose temporary files go to a private scratch folder; disposing the result
    /// disposes the model and deletes the folder, so nothing is left in <c>$TMPDIR</c>, on success or on error.
    /// </summary>
    /// <param name="path">The <c>.zip</c>.</param>
    /// <param name="seed">Seed of the ML.NET context. The default value is 0.</param>
    public static LoadedModel Open(string path, int seed = 0)
    {
        var scratch = ScratchFolder.Create();
        try
        {
            var mlContext = new MLContext(seed) { TempFilePath = scratch.Path };
            return new LoadedModel(mlContext, Load(mlContext, path), scratch);
        }
        catch
        {
            scratch.Dispose();
            throw;
        }
    }

    /// <summary>True when the file is an ML.NET model archive (a zip with ML.NET's <c>Model.key</c> entries), which MLTransfer may replace.</summary>
    /// <param name="path">A file.</param>
    public static bool IsModelFile(string path)
    {
        try
        {
            using var zip = ZipFile.OpenRead(path);
            return zip.Entries.Any(e => e.FullName is "TransformerChain/Model.key" or "Model.key");
        }
        catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>
    /// Checks a model destination before any training (see <see cref="OutputFile.Check"/>): it ends with <c>.zip</c>, an existing
    /// file there is an ML.NET model (or <paramref name="overwrite"/>), it is not inside an input folder, and its folder is
    /// writable. Returns the full path.
    /// </summary>
    /// <param name="path">The destination.</param>
    /// <param name="overwrite">Replace an existing file that is not a model.</param>
    /// <param name="inputs">The run's input folders.</param>
    /// <param name="overwriteHint">How the user allows overwriting, for the message.</param>
    public static string CheckDestination(string path, bool overwrite = false, IReadOnlyList<ProtectedFolder>? inputs = null, string overwriteHint = "set overwrite") =>
        OutputFile.Check(path, new OutputFileRules
        {
            Kind = "MLTransfer model (.zip)",
            Extensions = [Extension],
            IsReplaceable = IsModelFile,
            Overwrite = overwrite,
            OverwriteHint = overwriteHint,
            ProtectedFolders = inputs ?? [],
        });

    private sealed class ImagePathOnly
    {
        public string ImagePath { get; set; } = "";
    }

}

/// <summary>A model loaded by <see cref="ModelFile.Open"/>, with its own ML.NET context and scratch folder.</summary>
public sealed class LoadedModel : IDisposable
{
    private readonly ScratchFolder _scratch;

    internal LoadedModel(MLContext context, ITransformer model, ScratchFolder scratch)
    {
        Context = context;
        Model = model;
        _scratch = scratch;
    }

    /// <summary>The ML.NET context the model was loaded with.</summary>
    public MLContext Context { get; }

    /// <summary>The model.</summary>
    public ITransformer Model { get; }

    /// <summary>Disposes the model (ML.NET then deletes its extracted graph) and deletes the scratch folder.</summary>
    public void Dispose()
    {
        (Model as IDisposable)?.Dispose();
        _scratch.Dispose();
    }
}
