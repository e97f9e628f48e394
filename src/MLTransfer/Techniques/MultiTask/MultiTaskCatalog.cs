using MLTransfer.Data;

namespace MLTransfer.Techniques.MultiTask;

/// <summary>Adds multi-task learning to <see cref="TransferCatalog"/>: <c>mlContext.Transfer().MultiTask(...)</c>.</summary>
public static class MultiTaskCatalog
{
    /// <summary>
    /// Multi-task learning on a frozen backbone: one backbone pass per image, one head per task. Fit it on a data view
    /// with <c>ImagePath</c> and one column per task, such as <see cref="ImageManifest.ToDataView"/>.
    /// </summary>
    /// <param name="catalog">The catalog.</param>
    /// <param name="tasks">Task columns; null means every column except <c>ImagePath</c>.</param>
    /// <param name="imageSize">Square input size; null means the backbone's native size.</param>
    /// <param name="seed">Seed of the split and training.</param>
    public static MultiTaskEstimator MultiTask(this TransferCatalog catalog, IReadOnlyList<string>? tasks = null, int? imageSize = null, int seed = 0) =>
        catalog.MultiTask(new MultiTaskOptions { Tasks = tasks, Engine = { ImageSize = imageSize }, Seed = seed });

    /// <summary>Multi-task learning with full options.</summary>
    /// <param name="catalog">The catalog.</param>
    /// <param name="options">The options.</param>
    public static MultiTaskEstimator MultiTask(this TransferCatalog catalog, MultiTaskOptions options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new MultiTaskEstimator(catalog.Context, options ?? throw new ArgumentNullException(nameof(options)));
    }
}
