using MLTransfer.Techniques.DomainAdaptation;

namespace MLTransfer.Torch.DomainAdaptation;

/// <summary>The gradient domain-adaptation methods of <see cref="TorchDomainAdaptationCatalog.DomainAdaptation(TransferCatalog, string, GradientDomainAdaptationMethod, int?, int)"/>.</summary>
public enum GradientDomainAdaptationMethod
{
    /// <summary>Domain-adversarial training (<see cref="Dann"/>).</summary>
    Dann,
    /// <summary>Multi-kernel MMD (<see cref="Mmd"/>).</summary>
    Mmd,
    /// <summary>Deep CORAL loss (<see cref="Mmd"/> with <see cref="DiscrepancyLoss.DeepCoral"/>).</summary>
    DeepCoral,
}

/// <summary>Adds the TorchSharp domain-adaptation methods to <c>mlContext.Transfer()</c>.</summary>
public static class TorchDomainAdaptationCatalog
{
    /// <summary>Domain adaptation with a gradient method on cached frozen-backbone features.</summary>
    /// <param name="catalog">The catalog.</param>
    /// <param name="targetFolder">Folder of unlabelled target images (searched recursively; labels ignored).</param>
    /// <param name="method">The method.</param>
    /// <param name="imageSize">Square input size; null means the backbone's native size.</param>
    /// <param name="seed">Seed of the split, initialisation and shuffles.</param>
    public static DomainAdaptationEstimator DomainAdaptation(this TransferCatalog catalog, string targetFolder, GradientDomainAdaptationMethod method,
        int? imageSize = null, int seed = 0)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(targetFolder);
        return method switch
        {
            GradientDomainAdaptationMethod.Dann => catalog.DomainAdaptation(new DannOptions { TargetFolder = targetFolder, Engine = { ImageSize = imageSize }, Seed = seed }),
            GradientDomainAdaptationMethod.Mmd => catalog.DomainAdaptation(new MmdOptions { TargetFolder = targetFolder, Engine = { ImageSize = imageSize }, Seed = seed }),
            GradientDomainAdaptationMethod.DeepCoral => catalog.DomainAdaptation(new MmdOptions { TargetFolder = targetFolder, Loss = DiscrepancyLoss.DeepCoral, Engine = { ImageSize = imageSize }, Seed = seed }),
            _ => throw new ArgumentOutOfRangeException(nameof(method), method, "Unknown gradient domain-adaptation method."),
        };
    }

    /// <summary>DANN (Ganin et al. 2016) with full options.</summary>
    /// <param name="catalog">The catalog.</param>
    /// <param name="options">The options; a target folder or image list is required.</param>
    public static DomainAdaptationEstimator DomainAdaptation(this TransferCatalog catalog, DannOptions options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new DannEstimator(catalog.Context, options ?? throw new ArgumentNullException(nameof(options)));
    }

    /// <summary>MMD / Deep CORAL (Long et al. 2015; Sun and Saenko 2016) with full options.</summary>
    /// <param name="catalog">The catalog.</param>
    /// <param name="options">The options; a target folder or image list is required.</param>
    public static DomainAdaptationEstimator DomainAdaptation(this TransferCatalog catalog, MmdOptions options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new MmdEstimator(catalog.Context, options ?? throw new ArgumentNullException(nameof(options)));
    }

    /// <summary>The gradient methods for <see cref="DomainAdaptationBenchmark"/>: their source-only peer (the same network without adaptation loss), DANN, MMD and Deep CORAL.</summary>
    public static IReadOnlyList<BenchmarkMethod> BenchmarkMethods { get; } =
    [
        new("adapter-source-only", true, "adapter-source-only", (ml, s) => ml.Transfer().DomainAdaptation(s.Fill(new MmdOptions { AdaptationWeight = 0 }))),
        new("dann", true, "adapter-source-only", (ml, s) => ml.Transfer().DomainAdaptation(s.Fill(new DannOptions()))),
        new("mmd", true, "adapter-source-only", (ml, s) => ml.Transfer().DomainAdaptation(s.Fill(new MmdOptions()))),
        new("deep-coral", true, "adapter-source-only", (ml, s) => ml.Transfer().DomainAdaptation(s.Fill(new MmdOptions { Loss = DiscrepancyLoss.DeepCoral }))),
    ];
}
