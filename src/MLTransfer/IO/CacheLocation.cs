namespace MLTransfer.IO;

/// <summary>
/// The one place MLTransfer keeps what outlives a run: the bottleneck (feature) cache and the fused backbone graphs.
/// Nothing long-lived goes to <c>$TMPDIR</c>.
/// </summary>
/// <remarks>
/// <para>The folder is, in order: the <see cref="EnvironmentVariable"/> environment variable; on Windows
/// <c>%LOCALAPPDATA%\mltransfer\cache</c>; on macOS <c>~/Library/Caches/mltransfer</c>; elsewhere
/// <c>$XDG_CACHE_HOME/mltransfer</c>, or <c>~/.cache/mltransfer</c>. A cache folder given to a run
/// (<see cref="Featurization.FeaturizerOptions.CacheDirectory"/>, <c>--cache-dir</c>) takes its place for that run.</para>
/// <para>Layout and bounds: feature entries in context folders directly inside it (<see cref="Featurization.BottleneckCache"/>,
/// least recently used entries evicted beyond <see cref="Featurization.BottleneckCache.DefaultMaxBytes"/>, 2 GiB), fused graphs
/// in <c>graphs/</c> (oldest deleted beyond <see cref="Backbones.FeaturizerGraph.DefaultMaxFolderBytes"/>, 1 GiB). Deleting the
/// folder is always safe: everything in it is recomputed when needed.</para>
/// </remarks>
public static class CacheLocation
{
    /// <summary>Environment variable that moves the cache folder: <c>MLTRANSFER_CACHE_DIR</c>.</summary>
    public const string EnvironmentVariable = "MLTRANSFER_CACHE_DIR";

    /// <summary>The cache folder in use when a run names none (see the remarks for how it is chosen).</summary>
    public static string Default
    {
        get
        {
            var configured = Environment.GetEnvironmentVariable(EnvironmentVariable);
            if (!string.IsNullOrWhiteSpace(configured))
                return Path.GetFullPath(configured);
            if (OperatingSystem.IsWindows())
                return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData), "mltransfer", "cache");
            var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
            if (OperatingSystem.IsMacOS())
                return Path.Combine(home, "Library", "Caches", "mltransfer");
            var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
            return Path.Combine(string.IsNullOrWhiteSpace(xdg) || !Path.IsPathRooted(xdg) ? Path.Combine(home, ".cache") : xdg, "mltransfer");
        }
    }

    /// <summary>The folder of fused graphs for a cache folder: <c>&lt;cache&gt;/graphs</c>.</summary>
    /// <param name="cacheDirectory">A cache folder; null means <see cref="Default"/>.</param>
    public static string Graphs(string? cacheDirectory = null) => Path.Combine(string.IsNullOrWhiteSpace(cacheDirectory) ? Default : Path.GetFullPath(cacheDirectory), "graphs");

    /// <summary>
    /// Checks before any work that a cache folder can be used (created if missing, a probe file written and deleted).
    /// </summary>
    /// <param name="folder">The folder.</param>
    /// <exception cref="IOException">The folder is a file, read-only, not permitted, or cannot be created; the message names it.</exception>
    public static void CheckUsable(string folder)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        var full = Path.GetFullPath(folder);
        try
        {
            if (File.Exists(full))
                throw new IOException("it is a file, not a folder");
            Directory.CreateDirectory(full);
            var probe = AtomicFile.TemporaryPath(Path.Combine(full, "probe"));
            using (new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose))
            {
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            var reason = OutputFile.Reason(e);
            throw new IOException($"Cache folder '{full}' cannot be used: {reason}. Give a writable cache folder, or run without the cache.", e);
        }
    }
}
