using MLTransfer.Techniques.DomainAdaptation;
using NUnit.Framework;

namespace MLTransfer.Tests.Techniques.DomainAdaptation;

public class CoralMathTests
{
    /// <summary>n rows of a d-dimensional Gaussian with mean <paramref name="mean"/> and covariance L·Lᵀ.</summary>
    private static float[][] Gaussian(Random random, int n, double[,] l, double[] mean)
    {
        var d = mean.Length;
        var rows = new float[n][];
        for (var i = 0; i < n; i++)
        {
            var z = Enumerable.Range(0, d).Select(_ => Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble())).ToArray();
            rows[i] = new float[d];
            for (var r = 0; r < d; r++)
            {
                var sum = mean[r];
                for (var c = 0; c < d; c++)
                    sum += l[r, c] * z[c];
                rows[i][r] = (float)sum;
            }
        }
        return rows;
    }

    private static double[,] RandomFactor(Random random, int d, double scale)
    {
        var l = new double[d, d];
        for (var r = 0; r < d; r++)
            for (var c = 0; c <= r; c++)
                l[r, c] = (random.NextDouble() - 0.5) * scale + (r == c ? scale : 0);
        return l;
    }

    [Test]
    public void Eigen_decomposition_reconstructs_a_symmetric_matrix_with_orthonormal_vectors()
    {
        var random = new Random(5);
        const int d = 24;
        var a = new double[d, d];
        for (var i = 0; i < d; i++)
            for (var j = 0; j <= i; j++)
                a[i, j] = a[j, i] = random.NextDouble() * 2 - 1;
        var (values, vectors) = CoralMath.SymmetricEigen(a);
        for (var i = 0; i < d; i++)
            for (var j = 0; j < d; j++)
            {
                double rebuilt = 0, dot = 0;
                for (var k = 0; k < d; k++)
                {
                    rebuilt += vectors[i, k] * values[k] * vectors[j, k];
                    dot += vectors[k, i] * vectors[k, j];
                }
                Assert.That(rebuilt, Is.EqualTo(a[i, j]).Within(1e-9), $"A[{i},{j}]");
                Assert.That(dot, Is.EqualTo(i == j ? 1 : 0).Within(1e-9), $"VᵀV[{i},{j}]");
            }
    }

    [Test]
    public void Matrix_powers_invert_each_other()
    {
        var random = new Random(2);
        var rows = Gaussian(random, 500, RandomFactor(random, 6, 1.5), new double[6]);
        var cov = CoralMath.Covariance(rows, CoralMath.Mean(rows));
        var (values, vectors) = CoralMath.SymmetricEigen(cov);
        var product = CoralMath.Multiply(CoralMath.Power(values, vectors, 0.5), CoralMath.Power(values, vectors, -0.5));
        for (var i = 0; i < 6; i++)
            for (var j = 0; j < 6; j++)
                Assert.That(product[i, j], Is.EqualTo(i == j ? 1 : 0).Within(1e-9));
    }

    [TestCase(0.0)]
    [TestCase(1e-4)]
    public void Coral_gives_transformed_source_the_target_mean_and_covariance(double lambda)
    {
        var random = new Random(11);
        const int d = 8;
        var source = Gaussian(random, 4000, RandomFactor(random, d, 1.0), Enumerable.Range(0, d).Select(i => (double)i).ToArray());
        var target = Gaussian(random, 3000, RandomFactor(random, d, 3.0), Enumerable.Range(0, d).Select(i => -2.0 * i).ToArray());
        var targetMean = CoralMath.Mean(target);
        var targetCov = CoralMath.Covariance(target, targetMean);
        var sourceCov = CoralMath.Covariance(source, CoralMath.Mean(source));

        var aligned = CoralMath.Fit(source, target, lambda).Apply(source);

        var alignedMean = CoralMath.Mean(aligned);
        var alignedCov = CoralMath.Covariance(aligned, alignedMean);
        double before = 0, after = 0, scale = 0;
        for (var i = 0; i < d; i++)
        {
            Assert.That(alignedMean[i], Is.EqualTo(targetMean[i]).Within(1e-3), $"mean[{i}]");
            for (var j = 0; j < d; j++)
            {
                before += Math.Pow(sourceCov[i, j] - targetCov[i, j], 2);
                after += Math.Pow(alignedCov[i, j] - targetCov[i, j], 2);
                scale += targetCov[i, j] * targetCov[i, j];
            }
        }
        TestContext.Out.WriteLine($"relative covariance gap: before {Math.Sqrt(before / scale):E2}, after {Math.Sqrt(after / scale):E2}");
        Assert.That(Math.Sqrt(before / scale), Is.GreaterThan(0.3), "the synthetic domains must differ");
        Assert.That(Math.Sqrt(after / scale), Is.LessThan(1e-3));
    }

    [Test]
    public void Regularisation_adds_lambda_times_the_mean_variance_to_the_diagonal()
    {
        var c = new double[,] { { 2, 1 }, { 1, 4 } };
        CoralMath.Regularize(c, 0.5);
        Assert.That(c, Is.EqualTo(new double[,] { { 3.5, 1 }, { 1, 5.5 } }));
    }

    [Test]
    public void The_mean_free_form_of_the_paper_keeps_no_offset()
    {
        var random = new Random(3);
        var a = Gaussian(random, 200, RandomFactor(random, 3, 1), [1, 2, 3]);
        var b = Gaussian(random, 200, RandomFactor(random, 3, 2), [0, 0, 0]);
        Assert.That(CoralMath.Fit(a, b, 1, matchMean: false).Bias, Is.All.EqualTo(0));
    }
}
