namespace MLTransfer.Cluster.Jobs;

/// <summary>What a cluster job produces for each image.</summary>
public enum JobKind
{
    /// <summary>Backbone features (one vector per image), as <c>mltransfer featurize</c> writes them.</summary>
    Featurize,

    /// <summary>The predicted class and class probabilities of a saved ML.NET <c>.zip</c> model.</summary>
    Predict,
}

/// <summary>
/// What every node needs to run a shard of a job: what to produce, with which backbone or model, and where the output
/// goes. All paths must name the same files on every node (a shared folder). Every default is the type's default
/// (false, null, 0 for <see cref="BatchSize"/> meaning the engine's), so the spec reads back unchanged from grain
/// storage serializers that omit default values.
/// </summary>
[GenerateSerializer, Immutable]
public sealed record JobSpec
{
    /// <summary>Features or predictions. The default value is <see cref="JobKind.Featurize"/>.</summary>
    [Id(0)] public JobKind Kind { get; init; }

    /// <summary>Backbone name (<c>resnet18</c>) or the path of a backbone spec file; null means <c>resnet18</c>. The default value is null.</summary>
    [Id(1)] public string? Backbone { get; init; }

    /// <summary>The backbone a job runs: <see cref="Backbone"/> or <c>resnet18</c>.</summary>
    public string BackboneName => Backbone ?? "resnet18";

    /// <summary>Square image size; null means the backbone's native size. The default value is null.</summary>
    [Id(2)] public int? ImageSize { get; init; }

    /// <summary>Run the plain fused graph instead of the engine's optimised one (see <see cref="Featurization.FeaturizerOptions.OptimizeGraph"/>). The default value is false.</summary>
    [Id(3)] public bool PlainGraph { get; init; }

    /// <summary>Neither read nor write the bottleneck cache. The default value is false.</summary>
    [Id(4)] public bool NoCache { get; init; }

    /// <summary>The bottleneck cache folder (shared by the nodes for the cache to be shared); null means each node's default. The default value is null.</summary>
    [Id(5)] public string? CacheDirectory { get; init; }

    /// <summary>The model of a <see cref="JobKind.Predict"/> job. The default value is null.</summary>
    [Id(6)] public string? ModelPath { get; init; }

    /// <summary>The folder the Parquet parts are written to. The default value is empty (must be set).</summary>
    [Id(7)] public string OutputDirectory { get; init; } = "";

    /// <summary>Images per inference batch of the engine; 0 means the engine's default (8). The default value is 0.</summary>
    [Id(8)] public int BatchSize { get; init; }
}

/// <summary>The images of one shard: paths readable by every node, and their labels (empty when unlabelled).</summary>
[GenerateSerializer, Immutable]
public sealed record ShardInput
{
    /// <summary>Image paths.</summary>
    [Id(0)] public IReadOnlyList<string> Paths { get; init; } = [];

    /// <summary>One label per path; empty strings for unlabelled images.</summary>
    [Id(1)] public IReadOnlyList<string> Labels { get; init; } = [];
}

/// <summary>A shard handed to a worker slot: the job, the shard's number and the attempt it belongs to.</summary>
[GenerateSerializer, Immutable]
public sealed record ShardLease
{
    /// <summary>The job's id.</summary>
    [Id(0)] public string JobId { get; init; } = "";

    /// <summary>Zero-based shard number.</summary>
    [Id(1)] public int Shard { get; init; }

    /// <summary>Attempt number, starting at 1; a later attempt supersedes an earlier one.</summary>
    [Id(2)] public int Attempt { get; init; }

    /// <summary>The job's spec.</summary>
    [Id(3)] public JobSpec Spec { get; init; } = new();
}

/// <summary>What a finished shard reports.</summary>
[GenerateSerializer, Immutable]
public sealed record ShardResult
{
    /// <summary>Rows written (one per image of the shard).</summary>
    [Id(0)] public int Images { get; init; }

    /// <summary>Rows that are rejected images (unreadable, corrupt), with their reason in the <c>error</c> column.</summary>
    [Id(1)] public int Rejected { get; init; }

    /// <summary>Images served from the bottleneck cache.</summary>
    [Id(2)] public int FromCache { get; init; }
}
