using MLTransfer.Data;

namespace MLTransfer.Torch.Tests.DomainAdaptation;

/// <summary>Tiny, deterministic subsets of the shared MNIST/USPS domains (../shared/data/mnist-usps-domains).</summary>
internal static class Domains
{
    public static string Root => Path.Combine(TestData.SharedData, "mnist-usps-domains");

    /// <summary>The first <paramref name="perClass"/> images (ordinal file order) of each class of a domain split, classes in the given order.</summary>
    public static List<ImageExample> Labelled(string domain, string split, int perClass, IReadOnlyList<string> classes) =>
        classes.SelectMany(c => Directory.GetFiles(Path.Combine(Root, domain, split, c)).Order(StringComparer.Ordinal).Take(perClass)
            .Select(f => new ImageExample { ImagePath = f, Label = c })).ToList();
}
