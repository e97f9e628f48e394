namespace MLTransfer.Evaluation;

/// <summary>Regression metrics: mean absolute error, root mean squared error and the coefficient of determination.</summary>
public sealed class RegressionReport
{
    /// <summary>Number of values evaluated.</summary>
    public int Count { get; init; }

    /// <summary>Mean absolute error.</summary>
    public double MeanAbsoluteError { get; init; }

    /// <summary>Root of the mean squared error.</summary>
    public double RootMeanSquaredError { get; init; }

    /// <summary>R² = 1 − SSE / SST (SST around the mean of the true values); NaN when there are fewer than 2 values.</summary>
    public double RSquared { get; init; }

    /// <summary>Computes the report.</summary>
    /// <param name="truth">True values.</param>
    /// <param name="predicted">Predicted values, in the same order.</param>
    public static RegressionReport Compute(IReadOnlyList<double> truth, IReadOnlyList<double> predicted)
    {
        ArgumentNullException.ThrowIfNull(truth);
        ArgumentNullException.ThrowIfNull(predicted);
        if (truth.Count != predicted.Count)
            throw new ArgumentException("One prediction per true value is needed.");
        var n = truth.Count;
        if (n == 0)
            return new RegressionReport { RSquared = double.NaN };
        var mean = truth.Average();
        double abs = 0, sse = 0, sst = 0;
        for (var i = 0; i < n; i++)
        {
            var e = predicted[i] - truth[i];
            abs += Math.Abs(e);
            sse += e * e;
            sst += (truth[i] - mean) * (truth[i] - mean);
        }
        return new RegressionReport
        {
            Count = n,
            MeanAbsoluteError = abs / n,
            RootMeanSquaredError = Math.Sqrt(sse / n),
            RSquared = n < 2 || sst == 0 ? double.NaN : 1 - sse / sst,
        };
    }
}
