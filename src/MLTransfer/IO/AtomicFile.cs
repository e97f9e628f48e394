namespace MLTransfer;

/// <summary>
/// Writes files so that readers see either the old content or the complete new content, never a half-written
/// file: data goes to a temporary file in the same folder, is flushed to disk, then renamed over the target.
/// </summary>
public static class AtomicFile
{
    /// <summary>Writes a file atomically through a callback that fills a stream (readable and seekable, so the callback may read back what it wrote).</summary>
    /// <param name="path">Destination path; its folder is created if missing.</param>
    /// <param name="write">Writes the content to the stream.</param>
    /// <exception cref="IOException">Writing failed (for example a full disk); the destination is untouched.</exception>
    public static void Write(string path, Action<Stream> write)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        ArgumentNullException.ThrowIfNull(write);
        var full = Path.GetFullPath(path);
        var folder = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(folder);
        var temp = Path.Combine(folder, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch (Exception e)
        {
            TryDelete(temp);
            if (e is IOException io)
                throw new IOException($"Could not write '{full}': {io.Message} The previous file, if any, is unchanged.", io);
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
        WriteAllBytes(path, System.Text.Encoding.UTF8.GetBytes(text));

    private static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
