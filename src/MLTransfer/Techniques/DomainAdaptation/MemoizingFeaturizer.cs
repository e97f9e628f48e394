using System.Collections.Concurrent;
using MLTransfer.Backbones;
using MLTransfer.Data;
using MLTransfer.Featurization;

namespace MLTransfer.Techniques.DomainAdaptation;

/// <summary>
/// Wraps a featuriser and remembers every vector it produced (in memory by path, and optionally in a file named
/// after the graph), so several methods trained on the same images (a benchmark) featurise each image once.
/// Disposing it disposes the inner featuriser.
/// </summary>
public sealed class MemoizingFeaturizer : IImageFeaturizer
{
    private readonly IImageFeaturizer _inner;
    private readonly ConcurrentDictionary<string, float[]> _memory = new(StringComparer.Ordinal);

    private readonly string? _file;

    /// <summary>Wraps a featuriser.</summary>
    /// <param name="inner">The featuriser doing the work.</param>
    /// <param name="folder">Folder of the persistent vector file; null keeps vectors in memory only.</param>
    public MemoizingFeaturizer(IImageFeaturizer inner, string? folder = null)
    {
        _inner = inner ?? throw new ArgumentNullException(nameof(inner));
        if (folder is null)
            return;
        _file = Path.Combine(folder, Path.GetFileNameWithoutExtension(inner.GraphPath) + ".vectors");
        if (!File.Exists(_file))
            return;
        using var reader = new BinaryReader(File.OpenRead(_file));
        var count = reader.ReadInt32();
        for (var i = 0; i < count; i++)
        {
            var path = reader.ReadString();
            var vector = new float[reader.ReadInt32()];
            for (var j = 0; j < vector.Length; j++)
                vector[j] = reader.ReadSingle();
            var ticks = reader.ReadInt64();
            if (File.Exists(path) && File.GetLastWriteTimeUtc(path).Ticks == ticks)
                _memory[path] = vector;
        }
    }

    private void Persist()
    {
        if (_file is null)
            return;
        AtomicFile.Write(_file, stream =>
        {
            using var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true);
            var items = _memory.ToArray();
            writer.Write(items.Length);
            foreach (var (path, vector) in items)
            {
                writer.Write(path);
                writer.Write(vector.Length);
                foreach (var v in vector)
                    writer.Write(v);
                writer.Write(File.GetLastWriteTimeUtc(path).Ticks);
            }
        });
    }

    /// <inheritdoc />
    public Backbone Backbone => _inner.Backbone;

    /// <inheritdoc />
    public int ImageSize => _inner.ImageSize;

    /// <inheritdoc />
    public int FeatureSize => _inner.FeatureSize;

    /// <inheritdoc />
    public string GraphPath => _inner.GraphPath;

    /// <inheritdoc />
    public FeaturizationResult Featurize(IReadOnlyList<string> imagePaths, IProgress<FeaturizationProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(imagePaths);
        var missing = imagePaths.Where(p => !_memory.ContainsKey(p)).Distinct(StringComparer.Ordinal).ToList();
        var failed = new List<RejectedImage>();
        if (missing.Count > 0)
        {
            var result = _inner.Featurize(missing, progress, cancellationToken);
            for (var i = 0; i < missing.Count; i++)
                if (result.Features[i] is { } f)
                    _memory[missing[i]] = f;
            failed.AddRange(result.Failed);
            Persist();
        }
        var features = imagePaths.Select(p => _memory.TryGetValue(p, out var f) ? f : null).ToArray();
        var fromCache = imagePaths.Count - missing.Count;
        progress?.Report(new FeaturizationProgress(imagePaths.Count, imagePaths.Count, fromCache));
        return new FeaturizationResult(features, failed, fromCache);
    }

    /// <inheritdoc />
    public void Dispose() => _inner.Dispose();
}
