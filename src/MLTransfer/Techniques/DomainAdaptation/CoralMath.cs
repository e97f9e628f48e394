namespace MLTransfer.Techniques.DomainAdaptation;

/// <summary>
/// The linear algebra of CORAL (Sun, Feng and Saenko 2016, "Return of Frustratingly Easy Domain Adaptation",
/// AAAI): feature means and covariances, a symmetric eigen-solver (Householder tridiagonalisation and implicit QL,
/// Golub and Van Loan, "Matrix Computations", §8.3) and the affine map that gives one domain's features the other's second-order
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
    /// Eigen-decomposition of a symmetric matrix, <c>A = V·diag(values)·Vᵀ</c> with the eigenvectors in the
    /// columns of V: Householder reduction to tridiagonal form, then the implicit-shift QL algorithm (the
    /// EISPACK tred2/tql2 pair; Golub and Van Loan, "Matrix Computations", §8.3). O(d³), well under a second for d = 512.
    /// </summary>
    /// <param name="matrix">A symmetric d×d matrix (not modified).</param>
    public static (double[] Values, double[,] Vectors) SymmetricEigen(double[,] matrix)
    {
        ArgumentNullException.ThrowIfNull(matrix);
        var n = matrix.GetLength(0);
        if (matrix.GetLength(1) != n)
            throw new ArgumentException("The matrix must be square.", nameof(matrix));
        var v = new double[n][];
        for (var i = 0; i < n; i++)
        {
            v[i] = new double[n];
            for (var j = 0; j < n; j++)
                v[i][j] = 0.5 * (matrix[i, j] + matrix[j, i]);
        }
        var d = new double[n];
        var e = new double[n];
        if (n > 0)
        {
            Tridiagonalize(v, d, e, n);
            DiagonalizeTridiagonal(v, d, e, n);
        }
        var vectors = new double[n, n];
        for (var i = 0; i < n; i++)
            for (var j = 0; j < n; j++)
                vectors[i, j] = v[i][j];
        return (d, vectors);
    }

    private static void Tridiagonalize(double[][] v, double[] d, double[] e, int n)
    {
        for (var j = 0; j < n; j++)
            d[j] = v[n - 1][j];
        for (var i = n - 1; i > 0; i--)
        {
            double scale = 0, h = 0;
            for (var k = 0; k < i; k++)
                scale += Math.Abs(d[k]);
            if (scale == 0)
            {
                e[i] = d[i - 1];
                for (var j = 0; j < i; j++)
                {
                    d[j] = v[i - 1][j];
                    v[i][j] = 0;
                    v[j][i] = 0;
                }
            }
            else
            {
                for (var k = 0; k < i; k++)
                {
                    d[k] /= scale;
                    h += d[k] * d[k];
                }
                var f = d[i - 1];
                var g = Math.Sqrt(h);
                if (f > 0)
                    g = -g;
                e[i] = scale * g;
                h -= f * g;
                d[i - 1] = f - g;
                for (var j = 0; j < i; j++)
                    e[j] = 0;
                for (var j = 0; j < i; j++)
                {
                    f = d[j];
                    v[j][i] = f;
                    g = e[j] + v[j][j] * f;
                    for (var k = j + 1; k <= i - 1; k++)
                    {
                        g += v[k][j] * d[k];
                        e[k] += v[k][j] * f;
                    }
                    e[j] = g;
                }
                f = 0;
                for (var j = 0; j < i; j++)
                {
                    e[j] /= h;
                    f += e[j] * d[j];
                }
                var hh = f / (h + h);
                for (var j = 0; j < i; j++)
                    e[j] -= hh * d[j];
                for (var j = 0; j < i; j++)
                {
                    f = d[j];
                    g = e[j];
                    for (var k = j; k <= i - 1; k++)
                        v[k][j] -= f * e[k] + g * d[k];
                    d[j] = v[i - 1][j];
                    v[i][j] = 0;
                }
            }
            d[i] = h;
        }
        for (var i = 0; i < n - 1; i++)
        {
            v[n - 1][i] = v[i][i];
            v[i][i] = 1;
            var h = d[i + 1];
            if (h != 0)
            {
                for (var k = 0; k <= i; k++)
                    d[k] = v[k][i + 1] / h;
                for (var j = 0; j <= i; j++)
                {
                    double g = 0;
                    for (var k = 0; k <= i; k++)
                        g += v[k][i + 1] * v[k][j];
                    for (var k = 0; k <= i; k++)
                        v[k][j] -= g * d[k];
                }
            }
            for (var k = 0; k <= i; k++)
                v[k][i + 1] = 0;
        }
        for (var j = 0; j < n; j++)
        {
            d[j] = v[n - 1][j];
            v[n - 1][j] = 0;
        }
        v[n - 1][n - 1] = 1;
        e[0] = 0;
    }

    private static void DiagonalizeTridiagonal(double[][] v, double[] d, double[] e, int n)
    {
        for (var i = 1; i < n; i++)
            e[i - 1] = e[i];
        e[n - 1] = 0;
        double f = 0, largest = 0;
        var eps = Math.Pow(2, -52);
        for (var l = 0; l < n; l++)
        {
            largest = Math.Max(largest, Math.Abs(d[l]) + Math.Abs(e[l]));
            var m = l;
            while (m < n - 1 && Math.Abs(e[m]) > eps * largest)
                m++;
            if (m > l)
            {
                var iterations = 0;
                do
                {
                    if (++iterations > 100)
                        throw new ArithmeticException("The QL eigenvalue iteration did not converge.");
                    var g = d[l];
                    var p = (d[l + 1] - g) / (2 * e[l]);
                    var r = Hypot(p, 1);
                    if (p < 0)
                        r = -r;
                    d[l] = e[l] / (p + r);
                    d[l + 1] = e[l] * (p + r);
                    var dl1 = d[l + 1];
                    var h = g - d[l];
                    for (var i = l + 2; i < n; i++)
                        d[i] -= h;
                    f += h;
                    p = d[m];
                    double c = 1, c2 = 1, c3 = 1, s = 0, s2 = 0;
                    var el1 = e[l + 1];
                    for (var i = m - 1; i >= l; i--)
                    {
                        c3 = c2;
                        c2 = c;
                        s2 = s;
                        g = c * e[i];
                        h = c * p;
                        r = Hypot(p, e[i]);
                        e[i + 1] = s * r;
                        s = e[i] / r;
                        c = p / r;
                        p = c * d[i] - s * g;
                        d[i + 1] = h + s * (c * g + s * d[i]);
                        for (var k = 0; k < n; k++)
                        {
                            var row = v[k];
                            h = row[i + 1];
                            row[i + 1] = s * row[i] + c * h;
                            row[i] = c * row[i] - s * h;
                        }
                    }
                    p = -s * s2 * c3 * el1 * e[l] / dl1;
                    e[l] = s * p;
                    d[l] = c * p;
                }
                while (Math.Abs(e[l]) > eps * largest);
            }
            d[l] += f;
            e[l] = 0;
        }
    }

    private static double Hypot(double a, double b)
    {
        double x = Math.Abs(a), y = Math.Abs(b);
        if (x < y)
            (x, y) = (y, x);
        if (x == 0)
            return 0;
        var ratio = y / x;
        return x * Math.Sqrt(1 + ratio * ratio);
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
