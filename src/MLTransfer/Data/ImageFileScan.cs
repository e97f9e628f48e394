namespace MLTransfer.Data;

/// <summary>
/// The image files under a folder, found the same way everywhere MLTransfer reads folders: recursively, in ordinal path
/// order, hidden (dot) folders skipped, links to folders not followed unless asked (then each real folder is visited
/// once, so a link loop cannot repeat images), and every real file counted once however many links reach it. A folder
/// that cannot be listed (permission, a path longer than the system allows) is reported, not fatal.
/// </summary>
public sealed class ImageFileScan
{
    private ImageFileScan(string root)
    {
        Root = root;
    }

    /// <summary>Full path of the scanned folder.</summary>
    public string Root { get; }

    /// <summary>Image files (<see cref="ImageFileCheck.Extensions"/>), full paths in ordinal order, each real file once.</summary>
    public IReadOnlyList<string> Images => _images;

    /// <summary>Files without an image extension.</summary>
    public int IgnoredFiles { get; private set; }

    /// <summary>Sub-folders (relative to <see cref="Root"/>) whose images are included.</summary>
    public IReadOnlyList<string> SubFolders => _subFolders;

    /// <summary>Hidden folders (relative to <see cref="Root"/>) that were skipped.</summary>
    public IReadOnlyList<string> HiddenFolders => _hidden;

    /// <summary>Links to folders (relative to <see cref="Root"/>) that were not followed, or that lead back into a folder already visited.</summary>
    public IReadOnlyList<string> SkippedLinks => _links;

    /// <summary>Image paths that lead to a file already counted (through links).</summary>
    public IReadOnlyList<string> Duplicates => _duplicates;

    /// <summary>Folders that could not be listed, with the reason.</summary>
    public IReadOnlyList<RejectedImage> Unreadable => _unreadable;

    private readonly List<string> _images = [];
    private readonly List<string> _subFolders = [];
    private readonly List<string> _hidden = [];
    private readonly List<string> _links = [];
    private readonly List<string> _duplicates = [];
    private readonly List<RejectedImage> _unreadable = [];

    /// <summary>Scans a folder.</summary>
    /// <param name="folder">The folder.</param>
    /// <param name="followFolderLinks">Follow links to folders (each real folder at most once). The default value is false.</param>
    /// <param name="seen">Real paths of files already counted by an earlier scan of the same dataset; the scan adds to it.</param>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    public static ImageFileScan Run(string folder, bool followFolderLinks = false, ISet<string>? seen = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        var root = Path.GetFullPath(folder);
        if (!Directory.Exists(root))
            throw new DirectoryNotFoundException($"Image folder '{root}' does not exist.");
        var scan = new ImageFileScan(root);
        seen ??= new HashSet<string>(StringComparer.Ordinal);
        var real = RealPath(root);
        var visited = new HashSet<string>(StringComparer.Ordinal) { real };
        scan.Walk(root, real, followFolderLinks, seen, visited);
        scan._images.Sort(StringComparer.Ordinal);
        return scan;
    }

    private void Walk(string folder, string realFolder, bool followLinks, ISet<string> seen, HashSet<string> visited)
    {
        List<FileSystemInfo> entries;
        try
        {
            entries = new DirectoryInfo(folder).EnumerateFileSystemInfos().OrderBy(e => e.Name, StringComparer.Ordinal).ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            _unreadable.Add(new RejectedImage(folder, e is PathTooLongException or ArgumentException || (e.HResult & 0xFFFF) == 36 || Encoding(folder) > IO.OutputFile.MaxPathBytes
                ? $"folder path is longer than the system allows ({Encoding(folder)} bytes); its images cannot be opened"
                : $"folder cannot be read: {e.Message}"));
            return;
        }
        foreach (var entry in entries)
        {
            var path = Path.Combine(folder, entry.Name);
            if (entry is DirectoryInfo directory)
            {
                var relative = Relative(path);
                if (directory.Name.StartsWith('.'))
                {
                    _hidden.Add(relative);
                    continue;
                }
                var isLink = directory.LinkTarget is not null;
                var realChild = isLink ? RealPath(path) : Path.Combine(realFolder, directory.Name);
                if ((isLink && !followLinks) || !visited.Add(realChild))
                {
                    _links.Add(relative);
                    continue;
                }
                _subFolders.Add(relative);
                Walk(path, realChild, followLinks, seen, visited);
            }
            else if (!ImageFileCheck.HasImageExtension(entry.Name))
                IgnoredFiles++;
            else if (!seen.Add(entry.LinkTarget is null ? Path.Combine(realFolder, entry.Name) : RealPath(path)))
                _duplicates.Add(path);
            else
                _images.Add(path);
        }
    }

    private string Relative(string path) =>
        path.StartsWith(Root + Path.DirectorySeparatorChar, StringComparison.Ordinal) ? path[(Root.Length + 1)..] : path;

    private static int Encoding(string path) => System.Text.Encoding.UTF8.GetByteCount(path);

    /// <summary>The path with every link resolved (the path itself when it cannot be resolved).</summary>
    /// <param name="path">A file or folder.</param>
    public static string RealPath(string path) => IO.OutputFile.RealPath(path);
}
