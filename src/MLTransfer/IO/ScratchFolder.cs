using System.Globalization;

namespace MLTransfer.IO;

/// <summary>
/// A private temporary folder for one piece of work (<c>$TMPDIR/mltransfer-scratch-&lt;pid&gt;-&lt;id&gt;</c>), deleted with
/// everything in it on <see cref="Dispose"/>, on success and on error alike. Folders of processes that were killed before
/// they could clean up are deleted by the next <see cref="Create"/>.
/// </summary>
/// <example>
/// <code>
/// using var scratch = ScratchFolder.Create();
/// var graph = scratch.File("backbone.onnx");   // write, use; gone after the using block
/// </code>
/// </example>
public sealed class ScratchFolder : IDisposable
{
    /// <summary>Name prefix of every scratch folder.</summary>
    public const string Prefix = "mltransfer-scratch-";

    private ScratchFolder(string path) => Path = path;

    /// <summary>The folder (it exists until <see cref="Dispose"/>).</summary>
    public string Path { get; }

    /// <summary>Creates a scratch folder, after deleting the scratch folders of processes that no longer run.</summary>
    /// <param name="parent">Where to create it; null means <see cref="System.IO.Path.GetTempPath"/>.</param>
    public static ScratchFolder Create(string? parent = null)
    {
        parent = System.IO.Path.GetFullPath(parent ?? System.IO.Path.GetTempPath());
        DeleteStale(parent);
        var path = System.IO.Path.Combine(parent, $"{Prefix}{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..12]}");
        Directory.CreateDirectory(path);
        return new ScratchFolder(path);
    }

    /// <summary>A path inside the folder (nothing is created).</summary>
    /// <param name="name">File name.</param>
    public string File(string name) => System.IO.Path.Combine(Path, name);

    /// <summary>Deletes the folder and everything in it; errors (a file still open elsewhere) are ignored.</summary>
    public void Dispose() => TryDelete(Path);

    /// <summary>Deletes the scratch folders under <paramref name="parent"/> whose process no longer runs; returns how many.</summary>
    /// <param name="parent">The folder holding scratch folders; null means <see cref="System.IO.Path.GetTempPath"/>.</param>
    public static int DeleteStale(string? parent = null)
    {
        parent ??= System.IO.Path.GetTempPath();
        var deleted = 0;
        try
        {
            foreach (var folder in Directory.EnumerateDirectories(parent, Prefix + "*"))
            {
                var rest = System.IO.Path.GetFileName(folder)[Prefix.Length..];
                var dash = rest.IndexOf('-', StringComparison.Ordinal);
                if (dash > 0 && int.TryParse(rest[..dash], NumberStyles.None, CultureInfo.InvariantCulture, out var pid)
                    && pid != Environment.ProcessId && !AtomicFile.IsRunning(pid) && TryDelete(folder))
                    deleted++;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The temporary folder cannot be listed; nothing to clean.
        }
        return deleted;
    }

    private static bool TryDelete(string folder)
    {
        try
        {
            if (Directory.Exists(folder))
                Directory.Delete(folder, recursive: true);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
