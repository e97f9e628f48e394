using MLTransfer.Techniques.DomainAdaptation;

namespace MLTransfer.Selection;

/// <summary>The maximum of a Bayesian linear model's evidence over its prior and noise precisions.</summary>
/// <param name="Evidence">The log evidence <c>log p(y | F, α, β)</c> at the maximum (not divided by the number of images).</param>
/// <param name="Alpha">The prior precision α at the maximum.</param>
/// <param name="Beta">The noise precision β at the maximum.</param>
/// <param name="Iterations">Fixed-point iterations run.</param>
public readonly record struct EvidenceMaximum(double Evidence, double Alpha, double Beta, int Iterations);

/// <summary>
/// LogME (You, Liu, Wang and Long 2021, "LogME: Practical Assessment of Pre-trained Models for Transfer Learning", ICML): how
/// well frozen features suit a labelled task, without training a head. For each class the one-hot target is explained by a
/// Bayesian linear model on the features, its evidence (marginal likelihood) is maximised over the model's two precisions,
/// and the score is the mean over classes of that maximum divided by the number of images. Higher is better; scores of
/// different layers, image sizes and backbones on the same images are comparable.
/// </summary>
/// <remarks>
/// <para>For features F (n×D) and a target y (n), with prior w ~ N(0, α⁻¹I) and noise y | F, w ~ N(Fw, β⁻¹I), the evidence is</para>
/// <para><c>L(α, β) = D/2·log α + n/2·log β − n/2·log 2π − β/2·‖Fm − y‖² − α/2·‖m‖² − 1/2·log |A|</c>,
/// with <c>A = αI + βFᵀF</c> and <c>m = βA⁻¹Fᵀy</c>.</para>
/// <para>With the eigendecomposition <c>FᵀF = V·diag(σ)·Vᵀ</c> and <c>z = VᵀFᵀy</c> every term is a sum over the σᵢ:
/// <c>‖m‖² = Σ (βzᵢ/(α+βσᵢ))²</c>, <c>‖Fm − y‖² = ‖y⊥‖² + Σ (zᵢ²/σᵢ)·(α/(α+βσᵢ))²</c> (y⊥: the part of y outside F's
/// column space) and <c>log |A| = Σ log(α+βσᵢ)</c> (over all D eigenvalues). One decomposition per feature set (of the
/// D×D matrix FᵀF, or of the n×n Gram matrix FFᵀ when n &lt; D, which has the same non-zero σᵢ) serves every class, and
/// each class then costs O(min(n, D)) per iteration of MacKay's fixed point (the paper's Algorithm 1):
/// <c>γ = Σ βσᵢ/(α+βσᵢ)</c>, <c>α ← γ/‖m‖²</c>, <c>β ← (n − γ)/‖Fm − y‖²</c>, from α = β = 1 until both change by less than
/// <see cref="Tolerance"/> (relative).</para>
/// </remarks>
public static class LogMe
{
    /// <summary>Relative change of α and β below which the fixed point has converged: 1e-10.</summary>
    public const double Tolerance = 1e-10;

    /// <summary>Most fixed-point iterations per target: 1,000 (each costs O(min(n, D)); convergence usually takes tens).</summary>
    public const int MaxIterations = 1000;

    /// <summary>
    /// Eigenvalues below this share of the largest are treated as zero (double rounding makes them unreliable): 1e-10.
    /// </summary>
    public const double RelativeEigenvalueFloor = 1e-10;

    /// <summary>The LogME score of features for class labels: the mean over the classes present of the maximum evidence / n.</summary>
    /// <param name="features">One vector per image, all the same length.</param>
    /// <param name="labels">Class index of each image.</param>
    /// <exception cref="ArgumentException">Fewer than 2 images, fewer than 2 classes, or lengths that do not match.</exception>
    public static double Score(IReadOnlyList<float[]> features, IReadOnlyList<int> labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        var spectrum = Spectrum.Of(features);
        if (labels.Count != features.Count)
            throw new ArgumentException($"{labels.Count} labels for {features.Count} feature vectors.", nameof(labels));
        var classes = labels.Distinct().Order().ToArray();
        if (classes.Length < 2)
            throw new ArgumentException("LogME needs images of at least 2 classes.", nameof(labels));
        var total = 0.0;
        var target = new double[labels.Count];
        foreach (var k in classes)
        {
            for (var i = 0; i < target.Length; i++)
                target[i] = labels[i] == k ? 1 : 0;
            total += spectrum.Maximize(target).Evidence / features.Count;
        }
        return total / classes.Length;
    }

    /// <summary>Maximises the evidence of one target over α and β by the fixed point.</summary>
    /// <param name="features">One vector per image.</param>
    /// <param name="target">The target value of each image.</param>
    public static EvidenceMaximum Maximize(IReadOnlyList<float[]> features, IReadOnlyList<double> target) =>
        Spectrum.Of(features).Maximize(Checked(features, target));

    /// <summary>The log evidence <c>log p(y | F, α, β)</c> of one target at given precisions.</summary>
    /// <param name="features">One vector per image.</param>
    /// <param name="target">The target value of each image.</param>
    /// <param name="alpha">Prior precision α &gt; 0.</param>
    /// <param name="beta">Noise precision β &gt; 0.</param>
    public static double Evidence(IReadOnlyList<float[]> features, IReadOnlyList<double> target, double alpha, double beta)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(alpha);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(beta);
        var spectrum = Spectrum.Of(features);
        return spectrum.Evidence(spectrum.Project(Checked(features, target)), alpha, beta);
    }

    private static IReadOnlyList<double> Checked(IReadOnlyList<float[]> features, IReadOnlyList<double> target)
    {
        ArgumentNullException.ThrowIfNull(target);
        if (target.Count != features.Count)
            throw new ArgumentException($"{target.Count} targets for {features.Count} feature vectors.", nameof(target));
        return target;
    }

    /// <summary>A target projected on the features' eigenvectors: zᵢ, ‖y⊥‖².</summary>
    private readonly record struct Projection(double[] Z, double Outside);

    /// <summary>The non-zero eigenvalues σᵢ of FᵀF and what is needed to project targets on their eigenvectors.</summary>
    private sealed class Spectrum
    {
        private readonly IReadOnlyList<float[]> _features;
        private readonly double[] _values;
        private readonly double[,] _vectors;
        private readonly int[] _kept;
        private readonly bool _gram;

        private Spectrum(IReadOnlyList<float[]> features, double[] values, double[,] vectors, bool gram)
        {
            _features = features;
            _gram = gram;
            _vectors = vectors;
            var floor = values.DefaultIfEmpty(0).Max() * RelativeEigenvalueFloor;
            _kept = Enumerable.Range(0, values.Length).Where(i => values[i] > floor && values[i] > 0).ToArray();
            _values = _kept.Select(i => values[i]).ToArray();
        }

        private int Count => _features.Count;

        private int Dimension => _features[0].Length;

        public static Spectrum Of(IReadOnlyList<float[]> features)
        {
            ArgumentNullException.ThrowIfNull(features);
            if (features.Count < 2)
                throw new ArgumentException("LogME needs at least 2 feature vectors.", nameof(features));
            var d = features[0].Length;
            if (d == 0 || features.Any(f => f is null || f.Length != d))
                throw new ArgumentException("Feature vectors must be non-empty and all the same length.", nameof(features));
            var gram = features.Count < d;
            var (values, vectors) = CoralMath.SymmetricEigen(gram ? OuterGram(features) : InnerGram(features));
            return new Spectrum(features, values, vectors, gram);
        }

        // FᵀF, D×D.
        private static double[,] InnerGram(IReadOnlyList<float[]> features)
        {
            var d = features[0].Length;
            var g = new double[d, d];
            foreach (var row in features)
                for (var i = 0; i < d; i++)
                {
                    double fi = row[i];
                    if (fi == 0)
                        continue;
                    for (var j = i; j < d; j++)
                        g[i, j] += fi * row[j];
                }
            for (var i = 0; i < d; i++)
                for (var j = 0; j < i; j++)
                    g[i, j] = g[j, i];
            return g;
        }

        // FFᵀ, n×n.
        private static double[,] OuterGram(IReadOnlyList<float[]> features)
        {
            var n = features.Count;
            var g = new double[n, n];
            for (var a = 0; a < n; a++)
                for (var b = a; b < n; b++)
                {
                    double sum = 0;
                    var (fa, fb) = (features[a], features[b]);
                    for (var j = 0; j < fa.Length; j++)
                        sum += (double)fa[j] * fb[j];
                    g[a, b] = g[b, a] = sum;
                }
            return g;
        }

        public Projection Project(IReadOnlyList<double> y)
        {
            var z = new double[_kept.Length];
            if (_gram)
            {
                // vᵢ = Fᵀuᵢ/√σᵢ, so zᵢ = vᵢᵀFᵀy = √σᵢ·uᵢᵀy.
                for (var k = 0; k < _kept.Length; k++)
                {
                    double dot = 0;
                    for (var j = 0; j < Count; j++)
                        dot += _vectors[j, _kept[k]] * y[j];
                    z[k] = Math.Sqrt(_values[k]) * dot;
                }
            }
            else
            {
                var fty = new double[Dimension];
                for (var j = 0; j < Count; j++)
                {
                    if (y[j] == 0)
                        continue;
                    var row = _features[j];
                    for (var a = 0; a < fty.Length; a++)
                        fty[a] += y[j] * row[a];
                }
                for (var k = 0; k < _kept.Length; k++)
                {
                    double dot = 0;
                    for (var a = 0; a < fty.Length; a++)
                        dot += _vectors[a, _kept[k]] * fty[a];
                    z[k] = dot;
                }
            }
            double yy = 0, inside = 0;
            foreach (var value in y)
                yy += value * value;
            for (var k = 0; k < z.Length; k++)
                inside += z[k] * z[k] / _values[k];
            return new Projection(z, Math.Max(0, yy - inside));
        }

        public EvidenceMaximum Maximize(IReadOnlyList<double> y)
        {
            var p = Project(y);
            double alpha = 1, beta = 1;
            var iterations = 0;
            while (iterations < MaxIterations)
            {
                iterations++;
                var (gamma, weights, residual) = Terms(p, alpha, beta);
                if (weights <= 0 || residual <= 0 || Count - gamma <= 0)
                    break;
                var nextAlpha = gamma / weights;
                var nextBeta = (Count - gamma) / residual;
                if (!double.IsFinite(nextAlpha) || !double.IsFinite(nextBeta) || nextAlpha <= 0 || nextBeta <= 0)
                    break;
                var converged = Math.Abs(nextAlpha - alpha) <= Tolerance * alpha && Math.Abs(nextBeta - beta) <= Tolerance * beta;
                (alpha, beta) = (nextAlpha, nextBeta);
                if (converged)
                    break;
            }
            return new EvidenceMaximum(Evidence(p, alpha, beta), alpha, beta, iterations);
        }

        // γ, ‖m‖², ‖Fm − y‖² at (α, β).
        private (double Gamma, double Weights, double Residual) Terms(Projection p, double alpha, double beta)
        {
            double gamma = 0, weights = 0, residual = p.Outside;
            for (var k = 0; k < _values.Length; k++)
            {
                var s = _values[k];
                var denominator = alpha + beta * s;
                gamma += beta * s / denominator;
                var m = beta * p.Z[k] / denominator;
                weights += m * m;
                var shrink = alpha / denominator;
                residual += p.Z[k] * p.Z[k] / s * shrink * shrink;
            }
            return (gamma, weights, residual);
        }

        public double Evidence(Projection p, double alpha, double beta)
        {
            var (_, weights, residual) = Terms(p, alpha, beta);
            var logDet = (Dimension - _values.Length) * Math.Log(alpha);
            foreach (var s in _values)
                logDet += Math.Log(alpha + beta * s);
            return Dimension / 2.0 * Math.Log(alpha) + Count / 2.0 * Math.Log(beta) - Count / 2.0 * Math.Log(2 * Math.PI)
                - beta / 2 * residual - alpha / 2 * weights - logDet / 2;
        }
    }
}
