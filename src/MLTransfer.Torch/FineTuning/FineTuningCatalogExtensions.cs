namespace MLTransfer.Torch.FineTuning;

/// <summary>Adds fine-tuning to <c>mlContext.Transfer()</c>.</summary>
public static class FineTuningCatalogExtensions
{
    /// <summary>
    /// Fine-tuning: the whole pretrained backbone (ResNet18 by default) trains with a new head; see <see cref="T:MLTransfer.Torch.FineTuning.FineTuning"/>.
    /// Fit it on a data view with <c>ImagePath</c> and <c>Label</c> text columns.
    /// </summary>
    /// <param name="catalog">The transfer catalog.</param>
    /// <param name="epochs">Passes over the training images. The default value is 6.</param>
    /// <param name="imageSize">Square input size in pixels. The default value is 224.</param>
    /// <param name="seed">Seed of everything random. The default value is 0.</param>
    public static FineTuningEstimator FineTuning(this TransferCatalog catalog, int epochs = 6, int imageSize = 224, int seed = 0) =>
        FineTuning(catalog, new FineTuningOptions { Epochs = epochs, ImageSize = imageSize, Seed = seed });

    /// <summary>Fine-tuning with full options.</summary>
    /// <param name="catalog">The transfer catalog.</param>
    /// <param name="options">The options.</param>
    public static FineTuningEstimator FineTuning(this TransferCatalog catalog, FineTuningOptions options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(options);
        return new FineTuningEstimator(catalog.Context, options);
    }
}
