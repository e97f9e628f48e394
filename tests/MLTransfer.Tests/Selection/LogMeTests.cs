using MLTransfer.Selection;
using NUnit.Framework;

namespace MLTransfer.Tests.Selection;

public class LogMeTests
{
    // The evidence by its definition: y ~ N(0, β⁻¹I + α⁻¹FFᵀ), the Gaussian log density through an n×n Cholesky factor.
    private static double DirectEvidence(float[][] f, double[] y, double alpha, double beta) => DirectEvidence(Gram(f), y, alpha, beta);

    private static double[,] Gram(float[][] f)
    {
        var g = new double[f.Length, f.Length];
        for (var a = 0; a < f.Length; a++)
            for (var b = 0; b < f.Length; b++)
                g[a, b] = f[a].Zip(f[b], (x, z) => (double)x * z).Sum();
        return g;
    }

    private static double DirectEvidence(double[,] gram, double[] y, double alpha, double beta)
    {
        var n = y.Length;
        var c = new double[n, n];
        for (var a = 0; a < n; a++)
            for (var b = 0; b < n; b++)
                c[a, b] = gram[a, b] / alpha + (a == b ? 1 / beta : 0);
        var l = new double[n, n];
        for (var i = 0; i < n; i++)
            for (var j = 0; j <= i; j++)
            {
                var sum = c[i, j];
                for (var k = 0; k < j; k++)
                    sum -= l[i, k] * l[j, k];
                l[i, j] = i == j ? Math.Sqrt(sum) : sum / l[j, j];
            }
        var u = new double[n];
        double logDet = 0, quadratic = 0;
        for (var i = 0; i < n; i++)
        {
            var sum = y[i];
            for (var k = 0; k < i; k++)
                sum -= l[i, k] * u[k];
            u[i] = sum / l[i, i];
            logDet += 2 * Math.Log(l[i, i]);
            quadratic += u[i] * u[i];
        }
        return -0.5 * (n * Math.Log(2 * Math.PI) + logDet + quadratic);
    }

    private static (float[][] Features, int[] Labels) Data(int n, int d, int classes, double signal, int seed)
    {
        var random = new Random(seed);
        double Gaussian() => Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
        var directions = Enumerable.Range(0, classes).Select(_ => Enumerable.Range(0, d).Select(_ => Gaussian()).ToArray()).ToArray();
        var labels = Enumerable.Range(0, n).Select(i => i % classes).ToArray();
        var features = labels.Select(label => Enumerable.Range(0, d)
            .Select(j => (float)Math.Max(0, 1 + signal * directions[label][j] + Gaussian())).ToArray()).ToArray();
        return (features, labels);
    }

    private static double[] OneHot(int[] labels, int k) => labels.Select(l => l == k ? 1.0 : 0.0).ToArray();

    [TestCase(40, 6)]
    [TestCase(12, 30)]
    public void Should_equal_the_gaussian_marginal_likelihood_at_any_precisions(int n, int d)
    {
        var (features, labels) = Data(n, d, 3, 1.5, seed: n);
        var y = OneHot(labels, 1);
        foreach (var (alpha, beta) in new[] { (0.1, 2.0), (3.0, 0.5), (1e-3, 10.0), (50.0, 0.05) })
        {
            var direct = DirectEvidence(features, y, alpha, beta);
            Assert.That(LogMe.Evidence(features, y, alpha, beta), Is.EqualTo(direct).Within(1e-9 * Math.Abs(direct)), $"α={alpha}, β={beta}");
        }
    }

    [TestCase(30, 5, 1)]
    [TestCase(30, 5, 2)]
    [TestCase(10, 25, 3)]
    public void Should_reach_the_maximum_a_grid_search_over_both_precisions_finds(int n, int d, int seed)
    {
        var (features, labels) = Data(n, d, 2, 1.0, seed);
        var y = OneHot(labels, 0);
        var found = LogMe.Maximize(features, y);

        // Brute force: a coarse grid of log10 α, log10 β over [−6, 6], then a fine grid around its best point.
        var gram = Gram(features);
        var (best, bestAlpha, bestBeta) = (double.NegativeInfinity, 0.0, 0.0);
        void Search(double fromAlpha, double fromBeta, double width, double step)
        {
            for (var logAlpha = fromAlpha; logAlpha <= fromAlpha + width + 1e-9; logAlpha += step)
                for (var logBeta = fromBeta; logBeta <= fromBeta + width + 1e-9; logBeta += step)
                {
                    var value = DirectEvidence(gram, y, Math.Pow(10, logAlpha), Math.Pow(10, logBeta));
                    if (value > best)
                        (best, bestAlpha, bestBeta) = (value, logAlpha, logBeta);
                }
        }
        Search(-6, -6, 12, 0.25);
        Search(bestAlpha - 0.15, bestBeta - 0.15, 0.3, 0.006);

        TestContext.Out.WriteLine($"fixed point {found.Evidence:F6} after {found.Iterations} iterations (α={found.Alpha:G4}, β={found.Beta:G4}); grid {best:F6}");
        Assert.That(found.Evidence, Is.EqualTo(DirectEvidence(features, y, found.Alpha, found.Beta)).Within(1e-9 * Math.Abs(found.Evidence)));
        Assert.That(found.Evidence, Is.GreaterThanOrEqualTo(best - 1e-9), "no grid point beats the fixed point");
        Assert.That(found.Evidence - best, Is.LessThan(1e-3), "and the grid comes close to it");
        foreach (var step in new[] { Math.Exp(0.01), Math.Exp(-0.01) })
        {
            Assert.That(DirectEvidence(features, y, found.Alpha * step, found.Beta), Is.LessThanOrEqualTo(found.Evidence + 1e-9));
            Assert.That(DirectEvidence(features, y, found.Alpha, found.Beta * step), Is.LessThanOrEqualTo(found.Evidence + 1e-9));
        }
    }

    [Test]
    public void Should_score_features_that_carry_the_labels_above_features_that_do_not()
    {
        var (informative, labels) = Data(120, 16, 4, 2.0, seed: 4);
        var (noise, _) = Data(120, 16, 4, 0.0, seed: 5);
        var scoreInformative = LogMe.Score(informative, labels);
        var scoreNoise = LogMe.Score(noise, labels);
        Assert.That(scoreInformative, Is.GreaterThan(scoreNoise));
        var mean = Enumerable.Range(0, 4).Average(k => LogMe.Maximize(informative, OneHot(labels, k)).Evidence / 120);
        Assert.That(scoreInformative, Is.EqualTo(mean).Within(1e-12), "the score is the mean over classes of the evidence per image");
    }

    [Test]
    public void Should_be_unchanged_when_every_feature_is_scaled_by_the_same_factor()
    {
        var (features, labels) = Data(60, 8, 3, 1.0, seed: 6);
        var scaled = features.Select(f => f.Select(v => v * 40f).ToArray()).ToArray();
        Assert.That(LogMe.Score(scaled, labels), Is.EqualTo(LogMe.Score(features, labels)).Within(1e-6));
    }

    [Test]
    public void Should_refuse_one_class_or_mismatched_lengths()
    {
        var (features, _) = Data(10, 4, 2, 1.0, seed: 7);
        Assert.That(() => LogMe.Score(features, new int[10]), Throws.ArgumentException.With.Message.Contains("2 classes"));
        Assert.That(() => LogMe.Score(features, new int[9]), Throws.ArgumentException);
        Assert.That(() => LogMe.Score([features[0]], [0]), Throws.ArgumentException);
    }
}
