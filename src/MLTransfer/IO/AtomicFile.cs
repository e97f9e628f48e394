using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using MLTransfer.IO;

namespace MLTransfer;

/// <summary>
/// Writes files so that readers see either the old content or the complete new content, never a half-written
/// file: data goes to a hidden temporary file in the same folder (<c>.&lt;name&gt;.&lt;pid&gt;.&lt;guid&gt;.tmp</c>, the
/// name shortened so the whole stays within 255 bytes), is flushed to disk, then renamed over the target. Temporary
/// files that killed processes left for the same target are deleted on the next write. Errors name the destination,
/// never the temporary file.
/// </summary>
public static partial class AtomicFile
{
    private const int GuidLength = 32;

    /// <summary>Writes a file atomically through a callback that fills a stream.</summary>
    /// <param name="path">Destination path; its folder is created if missing.</param>
    /// <param name="write">Writes the content to the stream.</param>
    /// <exception cref="IOException">Writing failed (for example a full disk or a read-only folder); the destination is untouched.</exception>
    public static void Write(string path, Action<Stream> write)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        ArgumentNullException.ThrowIfNull(write);
        var full = Path.GetFullPath(path);
        var folder = Path.GetDirectoryName(full)!;
        string temp;
        try
        {
            Directory.CreateDirectory(folder);
            DeleteStaleTemporaryFiles(full);
            temp = TemporaryPath(full);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw OutputFile.WriteError(full, e);
        }
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch (Exception e)
        {
            TryDelete(temp);
            if (e is IOException or UnauthorizedAccessException)
                throw OutputFile.WriteError(full, e, temp);
            throw;
        }
    }

    /// <summary>Writes bytes atomically.</summary>
    /// <param name="path">Destination path.</param>
    /// <param name="bytes">Content.</param>
    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        var copy = bytes.ToArray();
        Write(path, s => s.Write(copy));
    }

    /// <summary>Writes UTF-8 text atomically.</summary>
    /// <param name="path">Destination path.</param>
    /// <param name="text">Content.</param>
    public static void WriteAllText(string path, string text) =>
        WriteAllBytes(path, Encoding.UTF8.GetBytes(text));

    /// <summary>
    /// The temporary file a write of <paramref name="fullPath"/> goes through: hidden, in the same folder, with this
    /// process's id and a random part, its name at most <see cref="OutputFile.MaxNameBytes"/> bytes long.
    /// </summary>
    /// <param name="fullPath">The destination's full path.</param>
    public static string TemporaryPath(string fullPath)
    {
        var name = Path.GetFileName(fullPath);
        var suffix = $".{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        var room = OutputFile.MaxNameBytes - 1 - Encoding.UTF8.GetByteCount(suffix);
        return Path.Combine(Path.GetDirectoryName(fullPath)!, "." + Truncate(name, room) + suffix);
    }

    /// <summary>
    /// Deletes the temporary files earlier writes of <paramref name="fullPath"/> left behind when their process was
    /// killed (the process that made them no longer runs). Returns how many were deleted.
    /// </summary>
    /// <param name="fullPath">The destination's full path.</param>
    public static int DeleteStaleTemporaryFiles(string fullPath)
    {
        var folder = Path.GetDirectoryName(fullPath)!;
        var target = Path.GetFileName(fullPath);
        List<string> candidates;
        try
        {
            if (!Directory.Exists(folder))
                return 0;
            candidates = Directory.EnumerateFiles(folder, ".*.tmp").ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return 0;
        }
        var deleted = 0;
        foreach (var candidate in candidates)
        {
            var match = TemporaryName().Match(Path.GetFileName(candidate));
            if (!match.Success)
                continue;
            var pid = match.Groups["pid"].Value;
            var room = OutputFile.MaxNameBytes - 1 - Encoding.UTF8.GetByteCount($".{pid}.{new string('0', GuidLength)}.tmp");
            if (match.Groups["stem"].Value != Truncate(target, room)
                || !int.TryParse(pid, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var id))
                continue;
            if (id != Environment.ProcessId && !IsRunning(id) && TryDelete(candidate))
                deleted++;
        }
        return deleted;
    }

    /// <summary>True when a process with this id runs on this machine.</summary>
    /// <param name="pid">A process id.</param>
    internal static bool IsRunning(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    private static string Truncate(string name, int maxBytes)
    {
        if (Encoding.UTF8.GetByteCount(name) <= maxBytes)
            return name;
        var builder = new StringBuilder();
        var bytes = 0;
        foreach (var rune in name.EnumerateRunes())
        {
            bytes += rune.Utf8SequenceLength;
            if (bytes > maxBytes)
                break;
            builder.Append(rune.ToString());
        }
        return builder.ToString();
    }

    [GeneratedRegex(@"^\.(?<stem>.*)\.(?<pid>[0-9]{1,10})\.[0-9a-f]{32}\.tmp$", RegexOptions.CultureInvariant)]
    private static partial Regex TemporaryName();

    private static bool TryDelete(string path)
    {
        try
        {
            File.Delete(path);
            return true;
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }
}
