namespace MLTransfer.Techniques.DomainAdaptation;

/// <summary>Two-dimensional PCA projections of feature vectors, for plotting source and target domains before and after adaptation.</summary>
public static class FeatureProjection
{
    /// <summary>
    /// Projects each group of rows onto the two leading principal components of all rows together (the top
    /// eigenvectors of their covariance, from <see cref="CoralMath.SymmetricEigen"/>).
    /// </summary>
    /// <param name="groups">Groups of row vectors of one length (e.g. source and target).</param>
    /// <returns>Per group, per row, the (x, y) coordinates.</returns>
    public static (double X, double Y)[][] Pca2(params IReadOnlyList<float[]>[] groups)
    {
        ArgumentNullException.ThrowIfNull(groups);
        var all = groups.SelectMany(g => g).ToList();
        if (all.Count < 2)
            throw new ArgumentException("PCA needs at least 2 vectors.", nameof(groups));
        var mean = CoralMath.Mean(all);
        var (values, vectors) = CoralMath.SymmetricEigen(CoralMath.Covariance(all, mean));
        var order = Enumerable.Range(0, values.Length).OrderByDescending(i => values[i]).Take(2).ToArray();
        return groups.Select(g => g.Select(row =>
        {
            double x = 0, y = 0;
            for (var j = 0; j < mean.Length; j++)
            {
                var centred = row[j] - mean[j];
                x += centred * vectors[j, order[0]];
                y += centred * vectors[j, order.Length > 1 ? order[1] : order[0]];
            }
            return (x, y);
        }).ToArray()).ToArray();
    }
}
