using MLTransfer.Data;

namespace MLTransfer.Tests.TestSupport;

/// <summary>
/// A small domain-adaptation pair made of the bundled sample: the colour photos (<see cref="Source"/>) and the same
/// classes as another camera gives them (<see cref="Target"/>, grey, slightly blurred, 64×64). Each class has
/// 20 images; tests take disjoint ranges of them (<c>skip</c>) for source training, unlabelled target and target test.
/// </summary>
public static class Domains
{
    /// <summary>The source domain's folder (the bundled colour sample).</summary>
    public static string Source => TestData.Sample;

    /// <summary>The target domain's folder (<c>tests/data/sign-language-shifted</c>).</summary>
    public static string Target => TestData.ShiftedSample;

    /// <summary>Images <paramref name="skip"/> .. <paramref name="skip"/>+<paramref name="perClass"/>-1 of each class of the source domain.</summary>
    public static List<ImageExample> SourceImages(int perClass, int skip, params string[] classes) =>
        TestData.Subset(Source, perClass, skip, classes);

    /// <summary>Images <paramref name="skip"/> .. <paramref name="skip"/>+<paramref name="perClass"/>-1 of each class of the target domain, with their true labels.</summary>
    public static List<ImageExample> TargetImages(int perClass, int skip, params string[] classes) =>
        TestData.Subset(Target, perClass, skip, classes);

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
            var name = scramble ? $"img{i:D4}{Path.GetExtension(images[i].ImagePath)}" : Path.GetFileName(images[i].ImagePath);
            File.Copy(images[i].ImagePath, Path.Combine(dir, sub, name));
        }
        return dir;
    }
}
