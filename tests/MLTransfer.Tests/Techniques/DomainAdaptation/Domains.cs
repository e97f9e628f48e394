using MLTransfer.Data;
using MLTransfer.Tests.TestSupport;

namespace MLTransfer.Tests.Techniques.DomainAdaptation;

/// <summary>Tiny, deterministic subsets of the shared MNIST/USPS domains (../shared/data/mnist-usps-domains).</summary>
internal static class Domains
{
    public static string Root => Path.Combine(TestData.Shared, "mnist-usps-domains");

    /// <summary>The first <paramref name="perClass"/> images (ordinal file order) of each class of a domain split.</summary>
    public static IReadOnlyList<ImageExample> Labelled(string domain, string split, int perClass, params string[] classes) =>
        classes.SelectMany(c => Directory.GetFiles(Path.Combine(Root, domain, split, c)).Order(StringComparer.Ordinal).Take(perClass)
            .Select(f => new ImageExample { ImagePath = f, Label = c })).ToList();

    /// <summary>
    /// Copies target images into a fresh folder: under their true class folders, or (<paramref name="scramble"/>)
    /// under misleading folder names that are not classes at all, with the files renamed so that nothing in a path
    /// carries the label. Returns the folder.
    /// </summary>
    public static string TargetFolder(IReadOnlyList<ImageExample> images, bool scramble)
    {
        var dir = TestData.TempFolder();
        for (var i = 0; i < images.Count; i++)
        {
            var sub = scramble ? $"batch-{i % 3}" : images[i].Label;
            Directory.CreateDirectory(Path.Combine(dir, sub));
            var name = scramble ? $"img{i:D4}.png" : Path.GetFileName(images[i].ImagePath);
            File.Copy(images[i].ImagePath, Path.Combine(dir, sub, name));
        }
        return dir;
    }
}
