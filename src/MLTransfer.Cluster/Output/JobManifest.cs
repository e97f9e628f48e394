using System.Text.Json;
using MLTransfer.Cluster.Jobs;

namespace MLTransfer.Cluster.Output;

/// <summary>
/// <c>_job.json</c> in a job's output folder: which job wrote the parts and how (backbone, image size, model and its
/// classes), so that <c>train --features</c> can rebuild the same model and a rerun resumes the same job. Its leading
/// underscore keeps it out of the table that pyarrow and DuckDB read.
/// </summary>
public sealed record JobManifest
{
    /// <summary>The manifest's file name.</summary>
    public const string FileName = "_job.json";

    /// <summary>The job id.</summary>
    public string JobId { get; init; } = "";

    /// <summary>Features or predictions.</summary>
    public JobKind Kind { get; init; }

    /// <summary>The backbone as given (name or spec path).</summary>
    public string Backbone { get; init; } = "";

    /// <summary>The backbone's identity (<see cref="Backbones.Backbone.Identity"/>): the features belong to it.</summary>
    public string BackboneIdentity { get; init; } = "";

    /// <summary>The image size the images were resized to.</summary>
    public int ImageSize { get; init; }

    /// <summary>Length of the feature vectors.</summary>
    public int FeatureSize { get; init; }

    /// <summary>Whether the engine ran its optimised graph.</summary>
    public bool OptimizeGraph { get; init; }

    /// <summary>The model of a predict job.</summary>
    public string? ModelPath { get; init; }

    /// <summary>The model's classes, in <c>Score</c> order (predict jobs).</summary>
    public IReadOnlyList<string>? Classes { get; init; }

    /// <summary>Images in the job.</summary>
    public int Images { get; init; }

    /// <summary>Shards (and so parts) in the job.</summary>
    public int Shards { get; init; }

    /// <summary>Images per shard (the last may have fewer).</summary>
    public int ShardSize { get; init; }

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    /// <summary>The manifest's path in an output folder.</summary>
    /// <param name="outputDirectory">The folder.</param>
    public static string PathIn(string outputDirectory) => Path.Combine(outputDirectory, FileName);

    /// <summary>Writes the manifest atomically.</summary>
    /// <param name="outputDirectory">The folder.</param>
    public void Write(string outputDirectory) => AtomicFile.WriteAllText(PathIn(outputDirectory), JsonSerializer.Serialize(this, Json));

    /// <summary>Reads the manifest of a folder, or null when it has none.</summary>
    /// <param name="outputDirectory">The folder.</param>
    /// <exception cref="InvalidDataException">The manifest is not valid.</exception>
    public static JobManifest? Read(string outputDirectory)
    {
        var path = PathIn(outputDirectory);
        if (!File.Exists(path))
            return null;
        try
        {
            return JsonSerializer.Deserialize<JobManifest>(File.ReadAllText(path), Json)
                ?? throw new InvalidDataException($"'{path}' is empty.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"'{path}' is not a job manifest: {e.Message}", e);
        }
    }
}
