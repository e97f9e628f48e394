using System.Collections.Concurrent;
using System.Security.Cryptography;

namespace MLTransfer.Backbones;

/// <summary>Finds the ONNX files that pretrained-model packages ship, without any download.</summary>
internal static class BackboneFiles
{
    private const string PackageId = "microsoft.ml.dnnimagefeaturizer.resnet18";
    private const string PackageVersion = "0.24.0";
    private static readonly ConcurrentDictionary<string, string> Hashes = new();

    public static string Locate(string relative)
    {
        var candidates = new List<string>
        {
            Path.Combine(AppContext.BaseDirectory, "DnnImageModels", relative),
        };
        var nugetRoot = Environment.GetEnvironmentVariable("NUGET_PACKAGES");
        if (string.IsNullOrEmpty(nugetRoot))
            nugetRoot = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        candidates.Add(Path.Combine(nugetRoot, PackageId, PackageVersion, "tools", "DnnImageModels", relative));
        foreach (var candidate in candidates)
            if (File.Exists(candidate))
                return candidate;
        throw new FileNotFoundException(
            $"The pretrained backbone file '{relative}' was not found (looked in: {string.Join(", ", candidates)}). " +
            $"Reference the NuGet package Microsoft.ML.DnnImageFeaturizer.ResNet18 {PackageVersion}, which copies it next to the app.");
    }

    public static string Identity(Backbone backbone)
    {
        var modelHash = Hashes.GetOrAdd(backbone.ModelPath, HashFile);
        var meanHash = backbone.MeanImagePath is null ? "-" : Hashes.GetOrAdd(backbone.MeanImagePath, HashFile);
        var norm = backbone.Normalization switch
        {
            NormalizationKind.MeanStd => $"ms[{string.Join(",", backbone.Mean!)}|{string.Join(",", backbone.Std!)}]",
            NormalizationKind.MeanImage => $"mi[{meanHash}:{backbone.MeanImageInitializer}]",
            _ => "none",
        };
        return $"{backbone.Name}:{modelHash}:{backbone.InputName}>{backbone.OutputName}:{backbone.ChannelOrder}:{backbone.PixelScale}:{norm}";
    }

    private static string HashFile(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"Backbone file '{path}' does not exist.", path);
        using var stream = File.OpenRead(path);
        return Convert.ToHexString(SHA256.HashData(stream))[..16].ToLowerInvariant();
    }
}
