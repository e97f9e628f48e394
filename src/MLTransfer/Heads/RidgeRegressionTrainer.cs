namespace MLTransfer.Heads;

/// <summary>
/// Trains a <see cref="RegressionHead"/> by ridge regression (Hoerl and Kennard 1970, "Ridge Regression: Biased
/// Estimation for Nonorthogonal Problems") in closed form: features are standardised, the intercept is not
/// penalised, and <c>(XᵀX + λ·n·I) w = Xᵀy</c> is solved by a Cholesky factorisation in double precision. When no
/// λ is given it is chosen from <see cref="DefaultLambdas"/> by k-fold cross-validation (lowest mean squared error).
/// Deterministic for a given seed.
/// </summary>
public static class RidgeRegressionTrainer
{
    /// <summary>The λ values (relative to the number of examples) cross-validation picks from.</summary>
    public static IReadOnlyList<double> DefaultLambdas { get; } = [1e-4, 1e-3, 1e-2, 3e-2, 0.1, 0.3, 1, 3, 10];

    /// <summary>Trains the head.</summary>
    /// <param name="features">Feature vectors (all the same length).</param>
    /// <param name="targets">One target per vector.</param>
    /// <param name="lambda">Ridge penalty relative to the number of examples; null picks it by cross-validation. The default value is null.</param>
    /// <param name="folds">Cross-validation folds when <paramref name="lambda"/> is null. The default value is 5.</param>
    /// <param name="seed">Seed of the fold assignment. The default value is 0.</param>
    public static RegressionHead Train(IReadOnlyList<float[]> features, IReadOnlyList<double> targets, double? lambda = null, int folds = 5, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(features);
        ArgumentNullException.ThrowIfNull(targets);
        if (features.Count == 0 || features.Count != targets.Count)
            throw new ArgumentException("One target per feature vector is needed, and at least one vector.");
        if (lambda is < 0)
            throw new ArgumentOutOfRangeException(nameof(lambda), lambda, "The ridge penalty must be non-negative.");
        var d = features[0].Length;
        var n = features.Count;
        var mean = new double[d];
        var scale = new double[d];
        foreach (var f in features)
            for (var j = 0; j < d; j++)
                mean[j] += f[j];
        for (var j = 0; j < d; j++)
            mean[j] /= n;
        foreach (var f in features)
            for (var j = 0; j < d; j++)
                scale[j] += (f[j] - mean[j]) * (f[j] - mean[j]);
        for (var j = 0; j < d; j++)
            scale[j] = 1 / Math.Sqrt(scale[j] / n + 1e-8);
        var x = features.Select(f => Enumerable.Range(0, d).Select(j => (f[j] - mean[j]) * scale[j]).ToArray()).ToArray();

        var chosen = lambda ?? (n >= 2 * Math.Max(2, folds) ? CrossValidate(x, targets, folds, seed) : 1.0);
        var (w, b) = Solve(x, targets, Enumerable.Range(0, n).ToArray(), chosen);
        var weights = new float[d];
        var bias = b;
        for (var j = 0; j < d; j++)
        {
            weights[j] = (float)(w[j] * scale[j]);
            bias -= w[j] * scale[j] * mean[j];
        }
        return new RegressionHead(weights, (float)bias);
    }

    private static double CrossValidate(double[][] x, IReadOnlyList<double> y, int folds, int seed)
    {
        var n = x.Length;
        var order = Enumerable.Range(0, n).ToArray();
        new Random(seed).Shuffle(order);
        var errors = new double[DefaultLambdas.Count];
        for (var fold = 0; fold < folds; fold++)
        {
            var test = order.Where((_, i) => i % folds == fold).ToArray();
            var train = order.Where((_, i) => i % folds != fold).ToArray();
            var (gram, xty, ym, xm) = Moments(x, y, train);
            for (var l = 0; l < DefaultLambdas.Count; l++)
            {
                var w = SolveMoments(gram, xty, DefaultLambdas[l] * train.Length);
                var b = ym - Dot(w, xm);
                foreach (var i in test)
                {
                    var e = b + Dot(w, x[i]) - y[i];
                    errors[l] += e * e;
                }
            }
        }
        var best = 0;
        for (var l = 1; l < errors.Length; l++)
            if (errors[l] < errors[best])
                best = l;
        return DefaultLambdas[best];
    }

    private static (double[] W, double B) Solve(double[][] x, IReadOnlyList<double> y, int[] rows, double lambda)
    {
        var (gram, xty, ym, xm) = Moments(x, y, rows);
        var w = SolveMoments(gram, xty, lambda * rows.Length);
        return (w, ym - Dot(w, xm));
    }

    /// <summary>Centred moments of the rows: Gram matrix, Xᵀy, mean of y, mean of x.</summary>
    private static (double[,] Gram, double[] Xty, double YMean, double[] XMean) Moments(double[][] x, IReadOnlyList<double> y, int[] rows)
    {
        var d = x[0].Length;
        var xm = new double[d];
        double ym = 0;
        foreach (var i in rows)
        {
            ym += y[i];
            for (var j = 0; j < d; j++)
                xm[j] += x[i][j];
        }
        ym /= rows.Length;
        for (var j = 0; j < d; j++)
            xm[j] /= rows.Length;
        var gram = new double[d, d];
        var xty = new double[d];
        var centred = new double[d];
        foreach (var i in rows)
        {
            for (var j = 0; j < d; j++)
                centred[j] = x[i][j] - xm[j];
            var yc = y[i] - ym;
            for (var j = 0; j < d; j++)
            {
                var cj = centred[j];
                xty[j] += cj * yc;
                for (var k = j; k < d; k++)
                    gram[j, k] += cj * centred[k];
            }
        }
        for (var j = 0; j < d; j++)
            for (var k = 0; k < j; k++)
                gram[j, k] = gram[k, j];
        return (gram, xty, ym, xm);
    }

    /// <summary>Solves (G + penalty·I) w = r by Cholesky factorisation.</summary>
    private static double[] SolveMoments(double[,] gram, double[] rhs, double penalty)
    {
        var d = rhs.Length;
        var l = new double[d, d];
        var jitter = Math.Max(penalty, 1e-9);
        for (var i = 0; i < d; i++)
            for (var j = 0; j <= i; j++)
            {
                var sum = gram[i, j] + (i == j ? jitter : 0);
                for (var k = 0; k < j; k++)
                    sum -= l[i, k] * l[j, k];
                l[i, j] = i == j ? Math.Sqrt(Math.Max(sum, 1e-12)) : sum / l[j, j];
            }
        var z = new double[d];
        for (var i = 0; i < d; i++)
        {
            var sum = rhs[i];
            for (var k = 0; k < i; k++)
                sum -= l[i, k] * z[k];
            z[i] = sum / l[i, i];
        }
        var w = new double[d];
        for (var i = d - 1; i >= 0; i--)
        {
            var sum = z[i];
            for (var k = i + 1; k < d; k++)
                sum -= l[k, i] * w[k];
            w[i] = sum / l[i, i];
        }
        return w;
    }

    private static double Dot(double[] a, double[] b)
    {
        double sum = 0;
        for (var j = 0; j < a.Length; j++)
            sum += a[j] * b[j];
        return sum;
    }
}
