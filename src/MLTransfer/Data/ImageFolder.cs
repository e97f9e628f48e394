namespace MLTransfer.Data;

/// <summary>
/// A labelled image dataset read from a folder with one sub-folder per class (the class name is the folder
/// name). Files with image extensions (<see cref="ImageFileCheck.Extensions"/>, case-insensitive) are read, in
/// nested sub-folders too (see <see cref="ImageFileScan"/>: hidden folders skipped, links to folders inside a class not
/// followed, each real file once); other files are counted and ignored. Images that cannot be decoded are listed in
/// <see cref="Rejected"/> (never silently dropped) or, in strict mode, fail the load. Whatever a user may not expect
/// (merged sub-folders, skipped hidden folders and links, images outside class folders, files reached twice) is
/// described in <see cref="Warnings"/>.
/// </summary>
public sealed class ImageFolder
{
    private ImageFolder(string root, IReadOnlyList<string> classes, IReadOnlyList<ImageExample> examples,
        IReadOnlyList<RejectedImage> rejected, int ignoredFiles, IReadOnlyList<string> warnings)
    {
        Warnings = warnings;
        Root = root;
        Classes = classes;
        Examples = examples;
        Rejected = rejected;
        IgnoredFiles = ignoredFiles;
    }

    /// <summary>Full path of the folder.</summary>
    public string Root { get; }

    /// <summary>Class names in ordinal order.</summary>
    public IReadOnlyList<string> Classes { get; }

    /// <summary>The usable images, ordered by class then file name.</summary>
    public IReadOnlyList<ImageExample> Examples { get; }

    /// <summary>Images that could not be used, with the reason.</summary>
    public IReadOnlyList<RejectedImage> Rejected { get; }

    /// <summary>Number of non-image files that were ignored.</summary>
    public int IgnoredFiles { get; }

    /// <summary>One line per surprise worth telling the user (e.g. "class '3': 2 sub-folders merged into the class").</summary>
    public IReadOnlyList<string> Warnings { get; }

    /// <summary>Reads a class-folder dataset.</summary>
    /// <param name="folder">The folder holding one sub-folder per class.</param>
    /// <param name="options">Reading options; null means the defaults.</param>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="InvalidDataException">No classes, too few classes, an empty class folder, or (strict) an unreadable image.</exception>
    public static ImageFolder Load(string folder, ImageFolderOptions? options = null)
    {
        options ??= new ImageFolderOptions();
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        var root = Path.GetFullPath(folder);
        if (!Directory.Exists(root))
            throw new DirectoryNotFoundException($"Image folder '{root}' does not exist.");
        var warnings = new List<string>();
        var classDirs = new List<string>();
        foreach (var dir in Directory.GetDirectories(root).OrderBy(d => Path.GetFileName(d), StringComparer.Ordinal))
        {
            var name = Path.GetFileName(dir);
            if (name.StartsWith('.'))
                continue;
            if (new DirectoryInfo(dir).LinkTarget is not null && IO.OutputFile.IsInside(root, ImageFileScan.RealPath(dir)))
            {
                warnings.Add($"'{name}' is a link back to '{root}' (or above it); it was not read as a class.");
                continue;
            }
            classDirs.Add(dir);
        }
        if (classDirs.Count == 0)
            throw new InvalidDataException($"Image folder '{root}' has no class sub-folders: put the images of each class in a sub-folder named after the class.");
        if (classDirs.Count < options.MinimumClasses)
            throw new InvalidDataException($"Image folder '{root}' has {classDirs.Count} class folder(s) ('{string.Join("', '", classDirs.Select(Path.GetFileName))}'); at least {options.MinimumClasses} are needed to train a classifier.");
        var loose = Directory.EnumerateFiles(root).Count(ImageFileCheck.HasImageExtension);
        if (loose > 0)
            warnings.Add($"{loose} image(s) directly in '{root}' are not in a class folder and were ignored.");

        var examples = new List<ImageExample>();
        var rejected = new List<RejectedImage>();
        var ignored = 0;
        var classes = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var dir in classDirs)
        {
            var label = Path.GetFileName(dir);
            var scan = ImageFileScan.Run(dir, options.FollowFolderLinks, seen);
            ignored += scan.IgnoredFiles;
            Describe(scan, label, warnings);
            foreach (var unreadable in scan.Unreadable)
            {
                if (options.Strict)
                    throw new InvalidDataException($"Unreadable folder '{unreadable.Path}': {unreadable.Reason} (strict mode).");
                rejected.Add(unreadable);
            }
            var images = scan.Images;
            var usable = 0;
            foreach (var path in images)
            {
                var problem = ImageFileCheck.Problem(path, options.MaxPixels, options.DecodeCheck);
                if (problem is not null)
                {
                    if (options.Strict)
                        throw new InvalidDataException($"Unreadable image '{path}': {problem} (strict mode).");
                    rejected.Add(new RejectedImage(path, problem));
                    continue;
                }
                examples.Add(new ImageExample { ImagePath = path, Label = label });
                usable++;
            }
            if (usable == 0)
                throw new InvalidDataException(images.Count == 0
                    ? $"Class folder '{dir}' has no images ({string.Join(", ", ImageFileCheck.Extensions)})."
                    : $"Class folder '{dir}' has no readable images: all {images.Count} were rejected (first: {rejected.Last().Reason}).");
            classes.Add(label);
        }
        return new ImageFolder(root, classes, examples, rejected, ignored, warnings);
    }

    private static void Describe(ImageFileScan scan, string label, List<string> warnings)
    {
        static string Some(IReadOnlyList<string> items) =>
            string.Join(", ", items.Take(3).Select(i => $"'{i}'")) + (items.Count > 3 ? $" and {items.Count - 3} more" : "");
        if (scan.SubFolders.Count > 0)
            warnings.Add($"class '{label}': the images of {scan.SubFolders.Count} sub-folder(s) ({Some(scan.SubFolders.Where(f => !f.Contains(Path.DirectorySeparatorChar)).ToList())}) are read as class '{label}'.");
        if (scan.HiddenFolders.Count > 0)
            warnings.Add($"class '{label}': {scan.HiddenFolders.Count} hidden folder(s) ({Some(scan.HiddenFolders)}) were skipped.");
        if (scan.SkippedLinks.Count > 0)
            warnings.Add($"class '{label}': {scan.SkippedLinks.Count} link(s) to folders ({Some(scan.SkippedLinks)}) were not followed.");
        if (scan.Duplicates.Count > 0)
            warnings.Add($"class '{label}': {scan.Duplicates.Count} path(s) lead to an image already counted (through links) and were counted once ({Some(scan.Duplicates)}).");
    }

    /// <summary>
    /// Splits the examples into train and validation sets, stratified by class, deterministically from a seed.
    /// Every class keeps at least one training image; a class with two or more images gets at least one validation image.
    /// </summary>
    /// <param name="validationFraction">Share of each class held out, in (0, 1).</param>
    /// <param name="seed">Seed of the shuffle.</param>
    public (IReadOnlyList<ImageExample> Train, IReadOnlyList<ImageExample> Validation) Split(double validationFraction, int seed)
        => StratifiedSplit(Examples, validationFraction, seed);

    /// <summary>
    /// Stratified, seeded train/validation split of labelled examples. Fold k holds out the k-th run of
    /// <paramref name="validationFraction"/> of each class in the same seeded shuffle (wrapping round a small class), so
    /// fold 0 is the plain split and folds 0 … ⌊1 / <paramref name="validationFraction"/>⌋ − 1 hold out disjoint images
    /// (cross-validation folds).
    /// </summary>
    /// <param name="examples">The examples.</param>
    /// <param name="validationFraction">Share of each class held out, in (0, 1).</param>
    /// <param name="seed">Seed of the shuffle.</param>
    /// <param name="fold">Which run of each class's shuffle is held out, from 0.</param>
    public static (IReadOnlyList<ImageExample> Train, IReadOnlyList<ImageExample> Validation) StratifiedSplit(
        IReadOnlyList<ImageExample> examples, double validationFraction, int seed, int fold = 0)
    {
        if (validationFraction is <= 0 or >= 1)
            throw new ArgumentOutOfRangeException(nameof(validationFraction), validationFraction, "The validation fraction must be between 0 and 1 (exclusive).");
        ArgumentOutOfRangeException.ThrowIfNegative(fold);
        var train = new List<ImageExample>();
        var validation = new List<ImageExample>();
        foreach (var group in examples.GroupBy(e => e.Label).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var items = group.ToArray();
            new Random(unchecked(seed * 397 ^ StableHash(group.Key))).Shuffle(items);
            var held = items.Length < 2 ? 0 : Math.Clamp((int)Math.Round(items.Length * validationFraction), 1, items.Length - 1);
            var start = items.Length == 0 ? 0 : (int)((long)fold * held % items.Length);
            for (var i = 0; i < items.Length; i++)
                ((i - start + items.Length) % items.Length < held ? validation : train).Add(items[i]);
        }
        return (train, validation);
    }

    internal static int StableHash(string text)
    {
        unchecked
        {
            var hash = (int)2166136261;
            foreach (var ch in text)
                hash = (hash ^ ch) * 16777619;
            return hash;
        }
    }
}
