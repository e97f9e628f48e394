using Microsoft.ML;

namespace MLTransfer;

/// <summary>
/// The entry point of MLTransfer: <c>mlContext.Transfer()</c> returns this catalog, with one method per
/// transfer-learning technique. Techniques living in other assemblies (fine-tuning, domain adaptation,
/// multi-task learning) add their methods as extension methods on this type.
/// </summary>
public sealed class TransferCatalog
{
    internal TransferCatalog(MLContext context) => Context = context;

    /// <summary>The ML.NET context every estimator built from this catalog uses.</summary>
    public MLContext Context { get; }
}

/// <summary>Extension methods that attach MLTransfer to <see cref="MLContext"/>.</summary>
public static class MLContextTransferExtensions
{
    /// <summary>Returns the transfer-learning catalog for this context.</summary>
    /// <param name="mlContext">The ML.NET context.</param>
    public static TransferCatalog Transfer(this MLContext mlContext)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        return new TransferCatalog(mlContext);
    }
}
