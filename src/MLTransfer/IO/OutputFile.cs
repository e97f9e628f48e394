using System.Text;

namespace MLTransfer.IO;

/// <summary>An input folder that outputs must not be written into, with the role it plays in messages.</summary>
/// <param name="Role">What the folder is, e.g. <c>training folder</c>.</param>
/// <param name="Path">The folder.</param>
public sealed record ProtectedFolder(string Role, string Path);

/// <summary>What a file about to be written must satisfy (see <see cref="OutputFile.Check"/>).</summary>
public sealed class OutputFileRules
{
    /// <summary>What the file is, used in messages (e.g. <c>MLTransfer model</c>). The default value is <c>output</c>.</summary>
    public string Kind { get; init; } = "output";

    /// <summary>Accepted extensions, lower-case with the dot (e.g. <c>.zip</c>); empty accepts any. The default value is empty.</summary>
    public IReadOnlyList<string> Extensions { get; init; } = [];

    /// <summary>
    /// Recognises an existing file of <see cref="Kind"/>, which may be replaced; any other existing file is refused unless
    /// <see cref="Overwrite"/>. Null lets any file be replaced. The default value is null.
    /// </summary>
    public Func<string, bool>? IsReplaceable { get; init; }

    /// <summary>Replace an existing file even when <see cref="IsReplaceable"/> does not recognise it. The default value is false.</summary>
    public bool Overwrite { get; init; }

    /// <summary>How a user allows overwriting, appended to the refusal (e.g. <c>add --force</c>). The default value is <c>set Overwrite</c>.</summary>
    public string OverwriteHint { get; init; } = "set Overwrite";

    /// <summary>Folders the file must not be inside (the inputs of the run). The default value is empty.</summary>
    public IReadOnlyList<ProtectedFolder> ProtectedFolders { get; init; } = [];
}

/// <summary>
/// Checks, before any work, that a file can be written where asked, so a run never fails at its end (or damages an
/// input) because of its output path; and turns write errors into one line that names the user's path.
/// </summary>
public static class OutputFile
{
    /// <summary>Longest file name, in UTF-8 bytes, that common file systems (ext4, XFS, NTFS in UTF-16 units) accept: 255.</summary>
    public const int MaxNameBytes = 255;

    /// <summary>Longest path, in UTF-8 bytes, that Linux accepts in one system call: 4,095 (PATH_MAX less the terminating zero).</summary>
    public const int MaxPathBytes = 4095;

    /// <summary>
    /// Checks an output path: extension, name and path length, not a folder, not inside a protected folder, an existing file
    /// only when replaceable, every existing parent a folder, and the folder writable (a probe file, named like the temporary
    /// file <see cref="AtomicFile"/> will use, is created and deleted at once). Creates nothing. Returns the full path.
    /// </summary>
    /// <param name="path">The path the user gave.</param>
    /// <param name="rules">What the file must satisfy; null means no extension, kind or folder rules.</param>
    /// <exception cref="ArgumentException">The extension is not accepted.</exception>
    /// <exception cref="IOException">The file cannot or must not be written there; the message names <paramref name="path"/>.</exception>
    public static string Check(string path, OutputFileRules? rules = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        rules ??= new OutputFileRules();
        string full;
        try
        {
            full = Path.GetFullPath(path);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        {
            throw new IOException($"Cannot write '{path}': {e.Message}", e);
        }
        var extension = Path.GetExtension(full).ToLowerInvariant();
        if (rules.Extensions.Count > 0 && !rules.Extensions.Contains(extension))
            throw new ArgumentException($"'{path}' must end with {string.Join(" or ", rules.Extensions)} ({rules.Kind}).", nameof(path));
        var nameBytes = Encoding.UTF8.GetByteCount(Path.GetFileName(full));
        if (nameBytes > MaxNameBytes)
            throw new IOException($"Cannot write '{path}': its file name is {nameBytes} bytes long; file systems allow {MaxNameBytes}.");
        if (Encoding.UTF8.GetByteCount(full) > MaxPathBytes)
            throw new IOException($"Cannot write '{path}': the full path is longer than the system allows ({MaxPathBytes} bytes).");
        if (Directory.Exists(full))
            throw new IOException($"Cannot write '{path}': it is a folder; give a file name ({rules.Kind}).");
        foreach (var folder in rules.ProtectedFolders)
            if (IsInside(full, folder.Path))
                throw new IOException(
                    $"Cannot write '{path}': it is inside the {folder.Role} '{Path.GetFullPath(folder.Path)}', where it would be read as input next time; write it elsewhere.");
        if (File.Exists(full) && !rules.Overwrite && rules.IsReplaceable is { } replaceable && !replaceable(full))
            throw new IOException($"Refusing to overwrite '{path}': it exists and is not an {rules.Kind}. Choose another path or {rules.OverwriteHint} to replace it.");

        var existing = Path.GetDirectoryName(full)!;
        var missing = new List<string>();
        while (!Directory.Exists(existing))
        {
            if (File.Exists(existing))
                throw new IOException($"Cannot write '{path}': '{existing}' is a file, not a folder.");
            missing.Add(Path.GetFileName(existing));
            existing = Path.GetDirectoryName(existing)
                ?? throw new IOException($"Cannot write '{path}': none of its folders exists.");
        }
        if (missing.FirstOrDefault(m => Encoding.UTF8.GetByteCount(m) > MaxNameBytes) is { } longFolder)
            throw new IOException($"Cannot write '{path}': the folder name '{longFolder}' is longer than {MaxNameBytes} bytes.");
        Probe(path, existing, missing.Count == 0 ? AtomicFile.TemporaryPath(full) : null);
        return full;
    }

    /// <summary>
    /// A one-line <see cref="IOException"/> for a failed write of <paramref name="fullPath"/>: the reason in plain words, the
    /// user's path instead of any temporary file, and that the previous file is unchanged.
    /// </summary>
    /// <param name="fullPath">The destination.</param>
    /// <param name="error">What went wrong.</param>
    /// <param name="temporaryPath">The temporary file involved, hidden from the message.</param>
    public static IOException WriteError(string fullPath, Exception error, string? temporaryPath = null)
    {
        ArgumentNullException.ThrowIfNull(error);
        var reason = Reason(error, temporaryPath, fullPath);
        var unchanged = File.Exists(fullPath) ? " The previous file is unchanged." : "";
        return new IOException($"Could not write '{fullPath}': {reason}.{unchanged}", error);
    }

    /// <summary>
    /// The path of a file written beside <paramref name="mainPath"/>: its name without extension plus <paramref name="suffix"/>
    /// (e.g. <c>model.confusion.png</c>), the name part shortened when the whole would pass <see cref="MaxNameBytes"/>.
    /// </summary>
    /// <param name="mainPath">The main output, e.g. the model.</param>
    /// <param name="suffix">What follows the name, e.g. <c>.confusion.png</c>.</param>
    public static string Companion(string mainPath, string suffix)
    {
        ArgumentNullException.ThrowIfNull(suffix);
        var full = Path.GetFullPath(mainPath);
        var stem = Path.GetFileNameWithoutExtension(full);
        var room = MaxNameBytes - Encoding.UTF8.GetByteCount(suffix);
        while (stem.Length > 1 && Encoding.UTF8.GetByteCount(stem) > room)
            stem = stem[..^(char.IsLowSurrogate(stem[^1]) ? 2 : 1)];
        return Path.Combine(Path.GetDirectoryName(full)!, stem + suffix);
    }

    /// <summary>True when the file starts with the PNG signature.</summary>
    /// <param name="path">A file.</param>
    public static bool IsPng(string path) => StartsWith(path, [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);

    /// <summary>True when the file looks like an ONNX model (a protobuf whose first field is the IR version).</summary>
    /// <param name="path">A file.</param>
    public static bool IsOnnx(string path) => StartsWith(path, [0x08]) && new FileInfo(path).Length > 16;

    /// <summary>True when a file starts with the given bytes.</summary>
    /// <param name="path">A file.</param>
    /// <param name="prefix">The expected first bytes.</param>
    public static bool StartsWith(string path, ReadOnlySpan<byte> prefix)
    {
        try
        {
            using var stream = File.OpenRead(path);
            Span<byte> head = stackalloc byte[prefix.Length];
            return stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false) == head.Length && head.SequenceEqual(prefix);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>True when <paramref name="path"/> is <paramref name="folder"/> or lies under it (after resolving links of existing parts).</summary>
    /// <param name="path">A path.</param>
    /// <param name="folder">A folder.</param>
    public static bool IsInside(string path, string folder)
    {
        var a = RealPath(path);
        var b = RealPath(folder).TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar;
        return (a + Path.DirectorySeparatorChar).StartsWith(b, StringComparison.Ordinal);
    }

    /// <summary>The full path with links resolved in its longest existing part.</summary>
    /// <param name="path">A path.</param>
    public static string RealPath(string path)
    {
        var full = Path.GetFullPath(path).TrimEnd(Path.DirectorySeparatorChar);
        var tail = new Stack<string>();
        var current = full;
        while (current.Length > 0 && !Directory.Exists(current) && !File.Exists(current))
        {
            tail.Push(Path.GetFileName(current));
            current = Path.GetDirectoryName(current) ?? "";
        }
        if (current.Length == 0)
            return full;
        try
        {
            var info = Directory.Exists(current) ? (FileSystemInfo)new DirectoryInfo(current) : new FileInfo(current);
            var resolved = ResolveAll(info.FullName);
            return tail.Count == 0 ? resolved : Path.Combine([resolved, .. tail]);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return full;
        }
    }

    private static string ResolveAll(string full)
    {
        var root = Path.GetPathRoot(full)!;
        var result = root;
        foreach (var part in full[root.Length..].Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries))
        {
            var next = Path.Combine(result, part);
            FileSystemInfo info = Directory.Exists(next) ? new DirectoryInfo(next) : new FileInfo(next);
            if (info.LinkTarget is not null)
                next = info.ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? next;
            result = next;
        }
        return result;
    }

    private static void Probe(string path, string folder, string? temporaryPath)
    {
        var probe = temporaryPath ?? AtomicFile.TemporaryPath(Path.Combine(folder, "probe"));
        try
        {
            using (new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose))
            {
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"Cannot write '{path}': {Reason(e, probe, Path.GetFullPath(path))} (checked before starting).", e);
        }
        finally
        {
            try
            {
                File.Delete(probe);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Already gone (delete on close).
            }
        }
    }

    /// <summary>The reason of a file-system error in plain words, with <paramref name="temporaryPath"/> replaced by <paramref name="fullPath"/>.</summary>
    /// <param name="error">The error.</param>
    /// <param name="temporaryPath">A temporary file to hide, or null.</param>
    /// <param name="fullPath">The path to name instead.</param>
    public static string Reason(Exception error, string? temporaryPath = null, string? fullPath = null)
    {
        ArgumentNullException.ThrowIfNull(error);
        const int DiskFull = 28, ReadOnly = 30, NameTooLong = 36;
        var code = error.HResult & 0xFFFF;
        if (error is UnauthorizedAccessException)
            return "permission denied";
        if (error is PathTooLongException || (OperatingSystem.IsLinux() && code == NameTooLong))
            return "the name or path is too long for the file system";
        if (error is DirectoryNotFoundException)
            return "its folder does not exist";
        if (error is FileNotFoundException)
            return "new files cannot be created in that folder";
        if (OperatingSystem.IsLinux() && code == DiskFull)
            return "the disk is full";
        if (OperatingSystem.IsLinux() && code == ReadOnly)
            return "the file system is read-only";
        var message = error.Message.ReplaceLineEndings(" ").TrimEnd('.');
        if (temporaryPath is not null && fullPath is not null)
            message = message.Replace(temporaryPath, fullPath, StringComparison.Ordinal);
        return message;
    }
}
