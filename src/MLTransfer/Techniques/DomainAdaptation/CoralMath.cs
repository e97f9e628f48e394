namespace MLTransfer.Techniques.DomainAdaptation;

/// <summary>
/// The linear algebra of CORAL (Sun, Feng and Saenko 2016, "Return of Frustratingly Easy Domain Adaptation",
/// AAAI): feature means and covariances, a symmetric eigen-solver (cyclic Jacobi rotations, Golub and Van Loan,
/// "Matrix Computations", §8.5) and the affine map that gives one domain's features the other's second-order
/// statistics.
/// </summary>
public static class CoralMath
{
    /// <summary>Per-dimension mean of row vectors.</summary>
    /// <param name="rows">The vectors (all the same length).</param>
    public static double[] Mean(IReadOnlyList<float[]> rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        if (rows.Count == 0)
            throw new ArgumentException("No vectors.", nameof(rows));
        var d = rows[0].Length;
        var mean = new double[d];
        foreach (var row in rows)
            for (var j = 0; j < d; j++)
                mean[j] += row[j];
        for (var j = 0; j < d; j++)
            mean[j] /= rows.Count;
        return mean;
    }

    /// <summary>Covariance matrix (divided by n − 1) of row vectors, d×d row-major.</summary>
    /// <param name="rows">The vectors; at least 2.</param>
    /// <param name="mean">Their mean (from <see cref="Mean"/>).</param>
    public static double[,] Covariance(IReadOnlyList<float[]> rows, double[] mean)
    {
        ArgumentNullException.ThrowIfNull(rows);
        ArgumentNullException.ThrowIfNull(mean);
        if (rows.Count < 2)
            throw new ArgumentException("A covariance needs at least 2 vectors.", nameof(rows));
        var d = mean.Length;
        var cov = new double[d, d];
        var centred = new double[d];
        foreach (var row in rows)
        {
            for (var j = 0; j < d; j++)
                centred[j] = row[j] - mean[j];
            for (var i = 0; i < d; i++)
            {
                var ci = centred[i];
                if (ci == 0)
                    continue;
                for (var j = i; j < d; j++)
                    cov[i, j] += ci * centred[j];
            }
        }
        for (var i = 0; i < d; i++)
            for (var j = i; j < d; j++)
                cov[j, i] = cov[i, j] /= rows.Count - 1;
        return cov;
    }

    /// <summary>
    /// Adds <c>λ·mean(diag(C))·I</c> to a covariance. The paper adds λ·I (λ = 1) to covariances of standardised
    /// features; scaling λ by the mean variance makes the same λ mean the same on features of any scale.
    /// </summary>
    /// <param name="covariance">The covariance; modified in place and returned.</param>
    /// <param name="lambda">Relative regularisation, ≥ 0.</param>
    public static double[,] Regularize(double[,] covariance, double lambda)
    {
        ArgumentNullException.ThrowIfNull(covariance);
        ArgumentOutOfRangeException.ThrowIfNegative(lambda);
        var d = covariance.GetLength(0);
        double trace = 0;
        for (var i = 0; i < d; i++)
            trace += covariance[i, i];
        var add = lambda * Math.Max(trace / d, 1e-12);
        for (var i = 0; i < d; i++)
            covariance[i, i] += add;
        return covariance;
    }

    /// <summary>
    /// Eigen-decomposition of a symmetric matrix by cyclic Jacobi rotations: <c>A = V·diag(values)·Vᵀ</c>, with
    /// the eigenvectors in the columns of V. Accurate to working precision; O(d³) per sweep, a few seconds for d = 512.
    /// </summary>
    /// <param name="matrix">A symmetric d×d matrix (not modified).</param>
    /// <param name="maxSweeps">Upper bound on sweeps. The default value is 60.</param>
    public static (double[] Values, double[,] Vectors) SymmetricEigen(double[,] matrix, int maxSweeps = 60)
    {
        ArgumentNullException.ThrowIfNull(matrix);
        var n = matrix.GetLength(0);
        if (matrix.GetLength(1) != n)
            throw new ArgumentException("The matrix must be square.", nameof(matrix));
        var a = new double[n * n];
        var v = new double[n * n];
        double norm = 0;
        for (var i = 0; i < n; i++)
        {
            v[i * n + i] = 1;
            for (var j = 0; j < n; j++)
            {
                a[i * n + j] = 0.5 * (matrix[i, j] + matrix[j, i]);
                norm += a[i * n + j] * a[i * n + j];
            }
        }
        var tolerance = 1e-26 * Math.Max(norm, 1e-300);
        for (var sweep = 0; sweep < maxSweeps; sweep++)
        {
            double off = 0;
            for (var i = 0; i < n; i++)
                for (var j = i + 1; j < n; j++)
                    off += a[i * n + j] * a[i * n + j];
            if (off <= tolerance)
                break;
            for (var p = 0; p < n - 1; p++)
                for (var q = p + 1; q < n; q++)
                {
                    var apq = a[p * n + q];
                    if (Math.Abs(apq) < 1e-300 || Math.Abs(apq) <= 1e-18 * Math.Sqrt(Math.Abs(a[p * n + p] * a[q * n + q])))
                    {
                        a[p * n + q] = a[q * n + p] = 0;
                        continue;
                    }
                    Rotate(a, v, n, p, q, apq);
                }
        }
        var values = new double[n];
        var vectors = new double[n, n];
        for (var i = 0; i < n; i++)
        {
            values[i] = a[i * n + i];
            for (var j = 0; j < n; j++)
                vectors[i, j] = v[i * n + j];
        }
        return (values, vectors);
    }

    private static void Rotate(double[] a, double[] v, int n, int p, int q, double apq)
    {
        var theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
        var t = Math.Sign(theta == 0 ? 1 : theta) / (Math.Abs(theta) + Math.Sqrt(theta * theta + 1));
        var c = 1 / Math.Sqrt(t * t + 1);
        var s = t * c;
        for (var k = 0; k < n; k++)
        {
            var akp = a[k * n + p];
            var akq = a[k * n + q];
            a[k * n + p] = c * akp - s * akq;
            a[k * n + q] = s * akp + c * akq;
        }
        for (var k = 0; k < n; k++)
        {
            var apk = a[p * n + k];
            var aqk = a[q * n + k];
            a[p * n + k] = c * apk - s * aqk;
            a[q * n + k] = s * apk + c * aqk;
        }
        a[p * n + q] = a[q * n + p] = 0;
        for (var k = 0; k < n; k++)
        {
            var vkp = v[k * n + p];
            var vkq = v[k * n + q];
            v[k * n + p] = c * vkp - s * vkq;
            v[k * n + q] = s * vkp + c * vkq;
        }
    }

    /// <summary><c>V·diag(values^power)·Vᵀ</c> of a symmetric positive-definite matrix (eigenvalues clamped at 1e-12).</summary>
    /// <param name="values">Eigenvalues.</param>
    /// <param name="vectors">Eigenvectors in columns.</param>
    /// <param name="power">The power, e.g. 0.5 or −0.5.</param>
    public static double[,] Power(double[] values, double[,] vectors, double power)
    {
        ArgumentNullException.ThrowIfNull(values);
        ArgumentNullException.ThrowIfNull(vectors);
        var n = values.Length;
        var scaled = values.Select(x => Math.Pow(Math.Max(x, 1e-12), power)).ToArray();
        var result = new double[n, n];
        var row = new double[n];
        for (var i = 0; i < n; i++)
        {
            for (var k = 0; k < n; k++)
                row[k] = vectors[i, k] * scaled[k];
            for (var j = i; j < n; j++)
            {
                double sum = 0;
                for (var k = 0; k < n; k++)
                    sum += row[k] * vectors[j, k];
                result[i, j] = result[j, i] = sum;
            }
        }
        return result;
    }

    /// <summary>Matrix product of two d×d matrices.</summary>
    /// <param name="left">Left factor.</param>
    /// <param name="right">Right factor.</param>
    public static double[,] Multiply(double[,] left, double[,] right)
    {
        ArgumentNullException.ThrowIfNull(left);
        ArgumentNullException.ThrowIfNull(right);
        var n = left.GetLength(0);
        var m = left.GetLength(1);
        var p = right.GetLength(1);
        if (right.GetLength(0) != m)
            throw new ArgumentException("Inner dimensions differ.");
        var result = new double[n, p];
        for (var i = 0; i < n; i++)
            for (var k = 0; k < m; k++)
            {
                var lik = left[i, k];
                if (lik == 0)
                    continue;
                for (var j = 0; j < p; j++)
                    result[i, j] += lik * right[k, j];
            }
        return result;
    }

    /// <summary>
    /// The CORAL map from domain <c>from</c> to domain <c>to</c> as an affine transform on row vectors,
    /// <c>x' = x·A + b</c> with <c>A = C_from^{-1/2}·C_to^{1/2}</c> (regularised covariances) and
    /// <c>b = μ_to − μ_from·A</c>, so transformed vectors get the mean and (regularised) covariance of <c>to</c>.
    /// </summary>
    /// <param name="from">Vectors of the domain being transformed.</param>
    /// <param name="to">Vectors of the domain whose statistics are matched.</param>
    /// <param name="lambda">Relative covariance regularisation (see <see cref="Regularize"/>).</param>
    /// <param name="matchMean">Whether to re-centre on the mean of <paramref name="to"/> (b as above) or keep the
    /// mean-free original form of the paper (b = 0).</param>
    public static AffineMap Fit(IReadOnlyList<float[]> from, IReadOnlyList<float[]> to, double lambda, bool matchMean = true)
    {
        var meanFrom = Mean(from);
        var meanTo = Mean(to);
        if (meanFrom.Length != meanTo.Length)
            throw new ArgumentException("The two domains' vectors differ in length.");
        var (valuesFrom, vectorsFrom) = SymmetricEigen(Regularize(Covariance(from, meanFrom), lambda));
        var (valuesTo, vectorsTo) = SymmetricEigen(Regularize(Covariance(to, meanTo), lambda));
        var a = Multiply(Power(valuesFrom, vectorsFrom, -0.5), Power(valuesTo, vectorsTo, 0.5));
        var d = meanFrom.Length;
        var bias = new double[d];
        if (matchMean)
            for (var j = 0; j < d; j++)
            {
                double sum = meanTo[j];
                for (var i = 0; i < d; i++)
                    sum -= meanFrom[i] * a[i, j];
                bias[j] = sum;
            }
        return new AffineMap(a, bias);
    }
}

/// <summary>An affine map on row vectors, <c>x' = x·Matrix + Bias</c>.</summary>
/// <param name="Matrix">d×d matrix.</param>
/// <param name="Bias">d offsets.</param>
public sealed record AffineMap(double[,] Matrix, double[] Bias)
{
    /// <summary>Applies the map to one vector.</summary>
    /// <param name="x">The vector.</param>
    public float[] Apply(float[] x)
    {
        ArgumentNullException.ThrowIfNull(x);
        var d = Bias.Length;
        var result = new double[d];
        Array.Copy(Bias, result, d);
        for (var i = 0; i < d; i++)
        {
            var xi = (double)x[i];
            if (xi == 0)
                continue;
            for (var j = 0; j < d; j++)
                result[j] += xi * Matrix[i, j];
        }
        return result.Select(v => (float)v).ToArray();
    }

    /// <summary>Applies the map to every vector.</summary>
    /// <param name="rows">The vectors.</param>
    public float[][] Apply(IReadOnlyList<float[]> rows) => rows.Select(Apply).ToArray();
}
