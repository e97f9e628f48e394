namespace MLTransfer.Torch.MultiTask;

/// <summary>Adds multi-task fine-tuning to <c>mlContext.Transfer()</c>.</summary>
public static class MultiTaskFineTuningCatalogExtensions
{
    /// <summary>
    /// Multi-task fine-tuning: a shared backbone trained jointly with one head per task. Fit it on a data view with
    /// <c>ImagePath</c> and one column per task.
    /// </summary>
    /// <param name="catalog">The transfer catalog.</param>
    /// <param name="options">The options.</param>
    public static MultiTaskFineTuningEstimator FineTunedMultiTask(this TransferCatalog catalog, MultiTaskFineTuningOptions options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new MultiTaskFineTuningEstimator(catalog.Context, options ?? throw new ArgumentNullException(nameof(options)));
    }
}
