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

    /// <summary>
    /// The gradient methods for <see cref="DomainAdaptationBenchmark"/>: on cached frozen pooled features
    /// (<c>adapter-source-only</c>, <c>dann</c>, <c>mmd</c>, <c>deep-coral</c>) and end to end through the backbone's
    /// top block (the same names with <c>-top1</c>) or top two blocks (<c>-top2</c>); each compared with its
    /// source-only peer, the same network and budget with adaptation weight 0. <c>dann-top1-mixed-bn</c> and
    /// <c>dann-top1-frozen-bn</c> measure the other <see cref="DomainBatchNorm"/> policies.
    /// </summary>
    public static IReadOnlyList<BenchmarkMethod> BenchmarkMethods { get; } =
    [
        .. new[] { 0, 1, 2 }.SelectMany(BenchmarkMethodsTraining),
        new("dann-top1-mixed-bn", true, "adapter-source-only-top1", (ml, s) => ml.Transfer().DomainAdaptation(s.Fill(new DannOptions { TrainedBackboneBlocks = 1, BatchNorm = DomainBatchNorm.Mixed }))),
        new("dann-top1-frozen-bn", true, "adapter-source-only-top1", (ml, s) => ml.Transfer().DomainAdaptation(s.Fill(new DannOptions { TrainedBackboneBlocks = 1, BatchNorm = DomainBatchNorm.Frozen }))),
    ];

    private static IEnumerable<BenchmarkMethod> BenchmarkMethodsTraining(int blocks)
    {
        var suffix = blocks == 0 ? "" : $"-top{blocks}";
        var peer = "adapter-source-only" + suffix;
        T Set<T>(T options) where T : FeatureAdapterOptions
        {
            options.TrainedBackboneBlocks = blocks;
            return options;
        }
        yield return new(peer, true, peer, (ml, s) => ml.Transfer().DomainAdaptation(s.Fill(Set(new MmdOptions { AdaptationWeight = 0 }))));
        yield return new("dann" + suffix, true, peer, (ml, s) => ml.Transfer().DomainAdaptation(s.Fill(Set(new DannOptions()))));
        yield return new("mmd" + suffix, true, peer, (ml, s) => ml.Transfer().DomainAdaptation(s.Fill(Set(new MmdOptions()))));
        yield return new("deep-coral" + suffix, true, peer, (ml, s) => ml.Transfer().DomainAdaptation(s.Fill(Set(new MmdOptions { Loss = DiscrepancyLoss.DeepCoral }))));
    }
}
