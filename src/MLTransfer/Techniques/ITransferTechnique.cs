using Microsoft.ML;

namespace MLTransfer.Techniques;

/// <summary>
/// A transfer-learning technique: turns its options into an ML.NET estimator whose <c>Fit</c> takes a data view
/// with an <c>ImagePath</c> column (and whatever label columns the technique needs) and returns a model that
/// uses only ML.NET's own saveable transforms: <c>ImagePath</c> in, <c>PredictedLabel</c> and <c>Score</c> out.
/// </summary>
/// <remarks>
/// Implement this interface to add a technique without touching the library, and run it through
/// <see cref="TransferCatalog.Use(ITransferTechnique)"/>. The built-in techniques are feature extraction (in this assembly),
/// fine-tuning, domain adaptation and multi-task learning.
/// </remarks>
public interface ITransferTechnique
{
    /// <summary>Short, stable name of the technique (as used by the command-line tool), e.g. <c>feature-extraction</c>.</summary>
    string Name { get; }

    /// <summary>Builds the estimator.</summary>
    /// <param name="mlContext">The ML.NET context the estimator and its model use.</param>
    IEstimator<ITransformer> CreateEstimator(MLContext mlContext);
}
