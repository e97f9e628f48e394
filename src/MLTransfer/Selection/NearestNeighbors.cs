using System.Numerics.Tensors;

namespace MLTransfer.Selection;

/// <summary>
/// Leave-one-out accuracy of a k-nearest-neighbour classifier on frozen features (cosine similarity, majority vote): a cheap,
/// model-free second opinion on how well features separate the classes (as in Wu et al. 2018 and DINO's k-NN evaluation).
/// </summary>
public static class NearestNeighbors
{
    /// <summary>Neighbours that vote when none are given: 10.</summary>
    public const int DefaultNeighbors = 10;

    /// <summary>
    /// The share of images whose class is the majority class of their <paramref name="neighbors"/> most similar other images
    /// (cosine similarity of the feature vectors); a tie goes to the class whose tied neighbours are more similar in sum.
    /// </summary>
    /// <param name="features">One vector per image, all the same length.</param>
    /// <param name="labels">Class index of each image.</param>
    /// <param name="neighbors">k; the default value is <see cref="DefaultNeighbors"/> (10).</param>
    /// <exception cref="ArgumentException">Fewer than 2 images, or lengths that do not match.</exception>
    public static double LeaveOneOutAccuracy(IReadOnlyList<float[]> features, IReadOnlyList<int> labels, int neighbors = DefaultNeighbors)
    {
        ArgumentNullException.ThrowIfNull(features);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentOutOfRangeException.ThrowIfLessThan(neighbors, 1);
        var n = features.Count;
        if (n < 2 || labels.Count != n)
            throw new ArgumentException($"k-NN needs at least 2 images with one label each ({n} vectors, {labels.Count} labels).");
        var d = features[0].Length;
        if (features.Any(f => f is null || f.Length != d))
            throw new ArgumentException("Feature vectors must all be the same length.", nameof(features));
        var k = Math.Min(neighbors, n - 1);
        var unit = new float[n * d];
        for (var i = 0; i < n; i++)
        {
            var row = unit.AsSpan(i * d, d);
            features[i].CopyTo(row);
            var norm = TensorPrimitives.Norm(row);
            if (norm > 0)
                TensorPrimitives.Divide(row, norm, row);
        }
        var classes = labels.Max() + 1;
        var correct = 0;
        Parallel.For(0, n, () => new Scratch(n, k, classes), (query, _, scratch) =>
        {
            var q = unit.AsSpan(query * d, d);
            for (var j = 0; j < n; j++)
                scratch.Similarities[j] = j == query ? float.NegativeInfinity : TensorPrimitives.Dot(q, unit.AsSpan(j * d, d));
            if (scratch.Vote(labels) == labels[query])
                scratch.Correct++;
            return scratch;
        }, scratch => Interlocked.Add(ref correct, scratch.Correct));
        return (double)correct / n;
    }

    private sealed class Scratch(int n, int k, int classes)
    {
        public float[] Similarities { get; } = new float[n];
        private readonly int[] _best = new int[k];
        private readonly int[] _votes = new int[classes];
        private readonly double[] _weights = new double[classes];
        public int Correct;

        // The k most similar (ties by lower index, so the vote does not depend on thread timing), then the majority class.
        public int Vote(IReadOnlyList<int> labels)
        {
            var count = 0;
            for (var j = 0; j < Similarities.Length; j++)
            {
                var s = Similarities[j];
                if (float.IsNegativeInfinity(s) || (count == _best.Length && s <= Similarities[_best[count - 1]]))
                    continue;
                var position = count < _best.Length ? count++ : count - 1;
                while (position > 0 && Similarities[_best[position - 1]] < s)
                {
                    _best[position] = _best[position - 1];
                    position--;
                }
                _best[position] = j;
            }
            Array.Clear(_votes);
            Array.Clear(_weights);
            for (var i = 0; i < count; i++)
            {
                _votes[labels[_best[i]]]++;
                _weights[labels[_best[i]]] += Similarities[_best[i]];
            }
            var winner = 0;
            for (var c = 1; c < _votes.Length; c++)
                if (_votes[c] > _votes[winner] || (_votes[c] == _votes[winner] && _weights[c] > _weights[winner]))
                    winner = c;
            return winner;
        }
    }
}
