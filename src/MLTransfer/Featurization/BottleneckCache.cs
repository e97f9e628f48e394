using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using MLTransfer.Backbones;

namespace MLTransfer.Featurization;

/// <summary>
/// An on-disk cache of backbone features ("bottlenecks"), so that a second run over the same (or a grown) image
/// folder only featurises new or changed images.
/// </summary>
/// <remarks>
/// <para>
/// An entry is keyed by the SHA-256 of the image file's content and by a <em>context</em> (see <see cref="ContextKey"/>):
/// the backbone's <see cref="Backbone.Identity"/>, the image size, the feature length, the stage whose pooled output the
/// features are (for features of an earlier layer than the backbone's output) and <see cref="GraphVersion"/>.
/// Renaming or moving an image keeps its entry; changing one byte of it makes a new one.
/// </para>
/// <para>
/// Layout: <c>{Directory}/{context}/{hh}/{hash}.bin</c>, one small file per image (about 2 KiB for 512 features),
/// sharded by the first two hex digits of the content hash. Each file holds a header (magic, format version, the full
/// content hash, the feature count), the little-endian float32 features and a SHA-256 checksum of all that.
/// </para>
/// <para>
/// Crash safety: an entry is written to a hidden temporary file in the same folder and renamed over its final name, so
/// a killed run leaves either no entry or a complete one (plus, at worst, a temporary file that lookups never read and
/// that <see cref="Clear"/> and eviction remove). An entry that is short, damaged or from another format (for example
/// after a power loss) fails its checksum, is deleted and reported as a miss, so the features are recomputed.
/// </para>
/// <para>
/// Bounded size: when the files under <see cref="Directory"/> exceed <see cref="MaxBytes"/>, the least recently used
/// entries (by file modification time, which a hit refreshes) are deleted until the cache is back under 80 % of the
/// limit. Several processes may share a cache; the size bound is then approximate.
/// </para>
/// </remarks>
public sealed partial class BottleneckCache
{
    /// <summary>Version of the fused graph and preprocessing; part of every key, bumped when features would change.</summary>
    public const int GraphVersion = 1;

    /// <summary>Default size limit: 2 GiB, about a million 512-float entries.</summary>
    public const long DefaultMaxBytes = 2L << 30;

    private const uint Magic = 0x4254_4C4D; // "MLTB" little-endian
    private const int FormatVersion = 1;
    private const int HalfFormatVersion = 2;
    private const int HashLength = 32;
    private const int HeaderLength = 4 + 4 + HashLength + 4;
    private const int ChecksumLength = 16;
    private const double LowWaterMark = 0.8;

    private readonly Lock _sizeLock = new();
    private long _approximateBytes = -1;
    private long _hits;
    private long _misses;
    private long _corrupt;

    /// <summary>Opens (or, on first write, creates) a cache in a folder.</summary>
    /// <param name="directory">The cache folder; null means <see cref="DefaultDirectory"/>.</param>
    /// <param name="maxBytes">Size limit in bytes; the default value is <see cref="DefaultMaxBytes"/> (2 GiB).</param>
    public BottleneckCache(string? directory = null, long maxBytes = DefaultMaxBytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBytes, 1);
        Directory = Path.GetFullPath(string.IsNullOrWhiteSpace(directory) ? DefaultDirectory : directory);
        MaxBytes = maxBytes;
    }

    /// <summary>The default cache folder: <see cref="IO.CacheLocation.Default"/> (never <c>$TMPDIR</c>).</summary>
    public static string DefaultDirectory => IO.CacheLocation.Default;

    /// <summary>The cache folder.</summary>
    public string Directory { get; }

    /// <summary>Size limit in bytes of all files under <see cref="Directory"/>.</summary>
    public long MaxBytes { get; }

    /// <summary>Lookups answered from the cache since this instance was created.</summary>
    public long Hits => Interlocked.Read(ref _hits);

    /// <summary>Lookups not answered (absent or damaged entry) since this instance was created.</summary>
    public long Misses => Interlocked.Read(ref _misses);

    /// <summary>Damaged entries found (and deleted) since this instance was created.</summary>
    public long CorruptEntries => Interlocked.Read(ref _corrupt);

    /// <summary>
    /// The context part of every key: a short hash of the backbone identity, image size, feature length, stage and
    /// <see cref="GraphVersion"/>. Features computed under different contexts never mix (layer3 features never come back for layer4).
    /// </summary>
    /// <param name="backbone">The backbone.</param>
    /// <param name="imageSize">Square image size fed to the backbone.</param>
    /// <param name="graphVariant">Names a rewritten form of the graph whose features differ by float rounding (e.g. the engine's
    /// optimised graph); null means the plain fused graph.</param>
    /// <param name="stage">The stage whose pooled output the features are (<see cref="BackboneStages"/>); null, or the stage whose
    /// pool is the backbone's output, means the backbone's output.</param>
    public static string ContextKey(Backbone backbone, int imageSize, string? graphVariant = null, BackboneStage? stage = null)
    {
        ArgumentNullException.ThrowIfNull(backbone);
        var text = $"graph-v{GraphVersion}|{backbone.Identity}|{imageSize}px|{backbone.FeatureSize}" + (graphVariant is null ? "" : "|" + graphVariant)
            + (stage is null or { IsOutput: true } ? "" : $"|stage:{stage.Tensor}:{stage.Channels}");
        var label = stage is null or { IsOutput: true } ? backbone.Name : $"{backbone.Name}-{stage.Name}";
        var name = new string(label.Select(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-' ? c : '_').ToArray());
        if (name.Length == 0)
            name = "backbone";
        return $"{name}-{imageSize}px-" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..16];
    }

    /// <summary>SHA-256 of an image file's content: the other part of a key.</summary>
    /// <param name="content">The file's bytes.</param>
    public static byte[] ContentHash(ReadOnlySpan<byte> content) => SHA256.HashData(content);

    /// <summary>Looks features up.</summary>
    /// <param name="context">A <see cref="ContextKey"/>.</param>
    /// <param name="contentHash">A <see cref="ContentHash"/> (32 bytes).</param>
    /// <param name="featureSize">Expected vector length; an entry of another length is treated as damaged.</param>
    /// <param name="features">The cached vector when found.</param>
    /// <returns>True on a hit.</returns>
    public bool TryGet(string context, ReadOnlySpan<byte> contentHash, int featureSize, [NotNullWhen(true)] out float[]? features)
    {
        features = null;
        var path = EntryPath(context, contentHash);
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            Interlocked.Increment(ref _misses);
            return false;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Interlocked.Increment(ref _misses);
            return false;
        }
        features = Decode(bytes, contentHash, featureSize);
        if (features is null)
        {
            Interlocked.Increment(ref _corrupt);
            Interlocked.Increment(ref _misses);
            TryDelete(path);
            return false;
        }
        Interlocked.Increment(ref _hits);
        Touch(path);
        return true;
    }

    /// <summary>
    /// Looks features up and writes them into <paramref name="destination"/> without allocating a vector (for large
    /// entries read many times, such as cached lower-block outputs of fine-tuning).
    /// </summary>
    /// <param name="context">A <see cref="ContextKey"/>.</param>
    /// <param name="contentHash">A <see cref="ContentHash"/> (32 bytes).</param>
    /// <param name="destination">Receives the vector; its length is the expected vector length.</param>
    /// <returns>True on a hit.</returns>
    public bool TryRead(string context, ReadOnlySpan<byte> contentHash, Span<float> destination)
    {
        var path = EntryPath(context, contentHash);
        byte[]? rented = null;
        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.SequentialScan);
            var length = checked((int)file.Length);
            rented = System.Buffers.ArrayPool<byte>.Shared.Rent(length);
            file.ReadExactly(rented, 0, length);
            if (!DecodeInto(rented.AsSpan(0, length), contentHash, destination))
            {
                Interlocked.Increment(ref _corrupt);
                Interlocked.Increment(ref _misses);
                file.Dispose();
                TryDelete(path);
                return false;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Interlocked.Increment(ref _misses);
            return false;
        }
        finally
        {
            if (rented is not null)
                System.Buffers.ArrayPool<byte>.Shared.Return(rented);
        }
        Interlocked.Increment(ref _hits);
        Touch(path);
        return true;
    }

    /// <summary>Whether an entry exists (it is not read, so it may still turn out damaged).</summary>
    /// <param name="context">A <see cref="ContextKey"/>.</param>
    /// <param name="contentHash">A <see cref="ContentHash"/> (32 bytes).</param>
    public bool Contains(string context, ReadOnlySpan<byte> contentHash) => File.Exists(EntryPath(context, contentHash));

    /// <summary>Stores features atomically (temporary file, then rename), then evicts old entries if the cache is over its limit.</summary>
    /// <param name="context">A <see cref="ContextKey"/>.</param>
    /// <param name="contentHash">A <see cref="ContentHash"/> (32 bytes).</param>
    /// <param name="features">The vector.</param>
    /// <param name="halfPrecision">Store the values as 16-bit floats (half the disk space and reading time, about three
    /// significant digits; a vector with a value beyond ±65,504 is stored at full precision); <see cref="TryGet"/> widens
    /// them back. The default value is false.</param>
    /// <exception cref="IOException">The entry could not be written (the cache is left without it).</exception>
    public void Put(string context, ReadOnlySpan<byte> contentHash, ReadOnlySpan<float> features, bool halfPrecision = false)
    {
        var bytes = Encode(contentHash, features, halfPrecision);
        var path = EntryPath(context, contentHash);
        var folder = Path.GetDirectoryName(path)!;
        System.IO.Directory.CreateDirectory(folder);
        var temp = Path.Combine(folder, $".{Path.GetFileName(path)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            // No fsync: a killed process cannot leave a half-renamed file; a power loss can leave a damaged entry,
            // which the checksum catches and the next run recomputes.
            File.WriteAllBytes(temp, bytes);
            File.Move(temp, path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(temp);
            throw new IOException($"Could not write cache entry '{path}': {e.Message}", e);
        }
        AddBytes(bytes.Length);
    }

    /// <summary>
    /// Deletes every entry and leftover temporary file under <see cref="Directory"/>, then the emptied folders.
    /// Only the cache's own layout is touched (context folders, their two-hex-digit shards, <c>.bin</c> and <c>.tmp</c>
    /// files), so pointing the cache at a folder that holds other files does not endanger them.
    /// </summary>
    public void Clear()
    {
        lock (_sizeLock)
        {
            foreach (var file in Files())
                TryDelete(file.FullName);
            foreach (var context in ContextFolders())
            {
                foreach (var shard in Subfolders(context).Where(d => IsShardName(d.Name)))
                    TryDeleteEmptyFolder(shard.FullName);
                TryDeleteEmptyFolder(context.FullName);
            }
            _approximateBytes = 0;
        }
    }

    /// <summary>Counts the entries and their bytes on disk (all contexts).</summary>
    public (int Entries, long Bytes) Measure()
    {
        var entries = 0;
        var bytes = 0L;
        foreach (var file in Files())
        {
            bytes += file.Length;
            if (file.Name.EndsWith(".bin", StringComparison.Ordinal) && !file.Name.StartsWith('.'))
                entries++;
        }
        return (entries, bytes);
    }

    /// <summary>
    /// Deletes the least recently used entries until the cache is under 80 % of <see cref="MaxBytes"/>, and
    /// temporary files older than an hour (left by killed runs). Called automatically by <see cref="Put"/>.
    /// </summary>
    /// <returns>Number of files deleted.</returns>
    public int Evict()
    {
        lock (_sizeLock)
        {
            var staleBefore = DateTime.UtcNow.AddHours(-1);
            var files = new List<FileInfo>();
            var total = 0L;
            var deleted = 0;
            foreach (var file in Files())
            {
                if (file.Name.EndsWith(".tmp", StringComparison.Ordinal))
                {
                    if (file.LastWriteTimeUtc < staleBefore && TryDelete(file.FullName))
                    {
                        deleted++;
                        continue;
                    }
                }
                else
                    files.Add(file);
                total += file.Length;
            }
            if (total > MaxBytes)
            {
                var target = (long)(MaxBytes * LowWaterMark);
                foreach (var file in files.OrderBy(f => f.LastWriteTimeUtc).ThenBy(f => f.Name, StringComparer.Ordinal))
                {
                    if (total <= target)
                        break;
                    if (TryDelete(file.FullName))
                    {
                        total -= file.Length;
                        deleted++;
                    }
                }
            }
            _approximateBytes = total;
            return deleted;
        }
    }

    internal string EntryPath(string context, ReadOnlySpan<byte> contentHash)
    {
        if (contentHash.Length != HashLength)
            throw new ArgumentException($"A content hash is {HashLength} bytes (SHA-256).", nameof(contentHash));
        ArgumentException.ThrowIfNullOrWhiteSpace(context);
        var hex = Convert.ToHexStringLower(contentHash);
        return Path.Combine(Directory, context, hex[..2], hex + ".bin");
    }

    private static byte[] Encode(ReadOnlySpan<byte> contentHash, ReadOnlySpan<float> features, bool halfPrecision)
    {
        halfPrecision = halfPrecision && FitsHalf(features);
        var elementSize = halfPrecision ? 2 : sizeof(float);
        var payload = HeaderLength + features.Length * elementSize;
        var bytes = new byte[payload + ChecksumLength];
        var span = bytes.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(span, Magic);
        BinaryPrimitives.WriteInt32LittleEndian(span[4..], halfPrecision ? HalfFormatVersion : FormatVersion);
        contentHash.CopyTo(span[8..]);
        BinaryPrimitives.WriteInt32LittleEndian(span[(8 + HashLength)..], features.Length);
        var body = span[HeaderLength..payload];
        if (halfPrecision)
            for (var i = 0; i < features.Length; i++)
                BinaryPrimitives.WriteHalfLittleEndian(body[(i * 2)..], (Half)features[i]);
        else if (BitConverter.IsLittleEndian)
            MemoryMarshal.AsBytes(features).CopyTo(body);
        else
            for (var i = 0; i < features.Length; i++)
                BinaryPrimitives.WriteSingleLittleEndian(body[(i * 4)..], features[i]);
        SHA256.HashData(span[..payload])[..ChecksumLength].CopyTo(span[payload..]);
        return bytes;
    }

    private static bool FitsHalf(ReadOnlySpan<float> values)
    {
        foreach (var v in values)
            if (!(Math.Abs(v) <= (float)Half.MaxValue))
                return false;
        return true;
    }

    private static float[]? Decode(ReadOnlySpan<byte> bytes, ReadOnlySpan<byte> contentHash, int featureSize)
    {
        var features = new float[featureSize];
        return DecodeInto(bytes, contentHash, features) ? features : null;
    }

    private static bool DecodeInto(ReadOnlySpan<byte> bytes, ReadOnlySpan<byte> contentHash, Span<float> features)
    {
        var featureSize = features.Length;
        if (bytes.Length < HeaderLength)
            return false;
        var version = BinaryPrimitives.ReadInt32LittleEndian(bytes[4..]);
        var halfPrecision = version == HalfFormatVersion;
        var payload = HeaderLength + featureSize * (halfPrecision ? 2 : sizeof(float));
        if (bytes.Length != payload + ChecksumLength)
            return false;
        if (BinaryPrimitives.ReadUInt32LittleEndian(bytes) != Magic
            || version is not (FormatVersion or HalfFormatVersion)
            || !bytes.Slice(8, HashLength).SequenceEqual(contentHash)
            || BinaryPrimitives.ReadInt32LittleEndian(bytes[(8 + HashLength)..]) != featureSize)
            return false;
        Span<byte> checksum = stackalloc byte[HashLength];
        SHA256.HashData(bytes[..payload], checksum);
        if (!checksum[..ChecksumLength].SequenceEqual(bytes[payload..]))
            return false;
        var body = bytes[HeaderLength..payload];
        if (halfPrecision)
            for (var i = 0; i < featureSize; i++)
                features[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(body[(i * 2)..]);
        else if (BitConverter.IsLittleEndian)
            body.CopyTo(MemoryMarshal.AsBytes(features));
        else
            for (var i = 0; i < featureSize; i++)
                features[i] = BinaryPrimitives.ReadSingleLittleEndian(body[(i * 4)..]);
        return true;
    }

    private void AddBytes(long bytes)
    {
        bool evict;
        lock (_sizeLock)
        {
            if (_approximateBytes < 0)
                _approximateBytes = Files().Sum(f => f.Length);
            else
                _approximateBytes += bytes;
            evict = _approximateBytes > MaxBytes;
        }
        if (evict)
            Evict();
    }

    private IEnumerable<FileInfo> Files()
    {
        foreach (var context in ContextFolders())
            foreach (var shard in Subfolders(context).Where(d => IsShardName(d.Name)))
                foreach (var file in FilesOf(shard))
                    if (file.Name.EndsWith(".bin", StringComparison.Ordinal) || file.Name.EndsWith(".tmp", StringComparison.Ordinal))
                        yield return file;
    }

    private IEnumerable<DirectoryInfo> ContextFolders()
    {
        var root = new DirectoryInfo(Directory);
        return root.Exists ? Subfolders(root).Where(d => ContextName().IsMatch(d.Name)) : [];
    }

    private static bool IsShardName(string name) => name.Length == 2 && name.All(char.IsAsciiHexDigitLower);

    private static List<DirectoryInfo> Subfolders(DirectoryInfo folder)
    {
        try
        {
            return folder.EnumerateDirectories().ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    private static List<FileInfo> FilesOf(DirectoryInfo folder)
    {
        try
        {
            return folder.EnumerateFiles().ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    private static void TryDeleteEmptyFolder(string path)
    {
        try
        {
            if (!System.IO.Directory.EnumerateFileSystemEntries(path).Any())
                System.IO.Directory.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Another process is writing into it; it stays.
        }
    }

    [GeneratedRegex("^[A-Za-z0-9_.-]+-[0-9]+px-[0-9a-f]{16}$")]
    private static partial Regex ContextName();

    private static void Touch(string path)
    {
        try
        {
            File.SetLastWriteTimeUtc(path, DateTime.UtcNow);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Recency is a hint for eviction only.
        }
    }

    private static bool TryDelete(string path)
    {
        try
        {
            File.Delete(path);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
