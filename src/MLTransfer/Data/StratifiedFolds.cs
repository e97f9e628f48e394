namespace MLTransfer.Data;

/// <summary>Stratified K-fold assignment: within each class, a seeded shuffle dealt round-robin over the folds.</summary>
public static class StratifiedFolds
{
    /// <summary>Assigns each item a fold in [0, <paramref name="folds"/>); every class is spread evenly (counts differ by at most one).</summary>
    /// <param name="labels">The class of each item.</param>
    /// <param name="folds">Number of folds (at least 2).</param>
    /// <param name="seed">Seed of the shuffle.</param>
    public static int[] Assign(IReadOnlyList<string> labels, int folds, int seed)
    {
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentOutOfRangeException.ThrowIfLessThan(folds, 2);
        var fold = new int[labels.Count];
        var random = new Random(seed);
        foreach (var group in Enumerable.Range(0, labels.Count).GroupBy(i => labels[i]).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var members = group.ToArray();
            random.Shuffle(members);
            for (var j = 0; j < members.Length; j++)
                fold[members[j]] = j % folds;
        }
        return fold;
    }
}
