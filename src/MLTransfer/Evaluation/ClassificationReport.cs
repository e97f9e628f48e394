namespace MLTransfer.Evaluation;

/// <summary>Precision, recall and F1 of one class.</summary>
/// <param name="Class">Class name.</param>
/// <param name="Precision">Share of predictions of this class that were right.</param>
/// <param name="Recall">Share of this class's images predicted as it.</param>
/// <param name="F1">Harmonic mean of precision and recall.</param>
/// <param name="Support">Images of this class.</param>
public sealed record ClassMetrics(string Class, double Precision, double Recall, double F1, int Support);

/// <summary>The model's probabilities for one labelled image.</summary>
/// <param name="ImagePath">The image file.</param>
/// <param name="Label">Its true class.</param>
/// <param name="Probabilities">The model's probabilities, in the model's class order.</param>
public sealed record ImagePrediction(string ImagePath, string Label, float[] Probabilities);

/// <summary>Multiclass metrics: micro/macro accuracy, log-loss, per-class precision/recall/F1 and the confusion matrix.</summary>
public sealed class ClassificationReport
{
    /// <summary>Class names, the order of <see cref="ConfusionMatrix"/> rows (truth) and columns (prediction).</summary>
    public required IReadOnlyList<string> Classes { get; init; }

    /// <summary>Number of images evaluated.</summary>
    public int Count { get; init; }

    /// <summary>Share of all images classified correctly.</summary>
    public double MicroAccuracy { get; init; }

    /// <summary>Mean over classes of each class's accuracy (recall).</summary>
    public double MacroAccuracy { get; init; }

    /// <summary>Mean negative log of the probability given to the true class (probabilities clipped at 1e-15).</summary>
    public double LogLoss { get; init; }

    /// <summary>Per-class metrics.</summary>
    public required IReadOnlyList<ClassMetrics> PerClass { get; init; }

    /// <summary>Counts, [true class][predicted class].</summary>
    public required int[][] ConfusionMatrix { get; init; }

    /// <summary>Computes the report from true labels and predicted probabilities.</summary>
    /// <param name="classes">Class names in score order.</param>
    /// <param name="truth">True class index of each image.</param>
    /// <param name="probabilities">Predicted probabilities of each image, in class order.</param>
    public static ClassificationReport Compute(IReadOnlyList<string> classes, IReadOnlyList<int> truth, IReadOnlyList<float[]> probabilities)
    {
        ArgumentNullException.ThrowIfNull(classes);
        if (truth.Count != probabilities.Count)
            throw new ArgumentException("One probability vector per label is needed.");
        var k = classes.Count;
        var confusion = Enumerable.Range(0, k).Select(_ => new int[k]).ToArray();
        double logLoss = 0;
        for (var i = 0; i < truth.Count; i++)
        {
            var p = probabilities[i];
            var predicted = 0;
            for (var c = 1; c < k; c++)
                if (p[c] > p[predicted])
                    predicted = c;
            confusion[truth[i]][predicted]++;
            logLoss -= Math.Log(Math.Max(p[truth[i]], 1e-15));
        }
        var perClass = new List<ClassMetrics>();
        for (var c = 0; c < k; c++)
        {
            var support = confusion[c].Sum();
            var predictedAs = confusion.Sum(row => row[c]);
            var precision = predictedAs == 0 ? 0 : (double)confusion[c][c] / predictedAs;
            var recall = support == 0 ? 0 : (double)confusion[c][c] / support;
            var f1 = precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall);
            perClass.Add(new ClassMetrics(classes[c], precision, recall, f1, support));
        }
        var present = perClass.Where(m => m.Support > 0).ToList();
        var n = truth.Count;
        return new ClassificationReport
        {
            Classes = classes.ToArray(),
            Count = n,
            MicroAccuracy = n == 0 ? 0 : (double)Enumerable.Range(0, k).Sum(c => confusion[c][c]) / n,
            MacroAccuracy = present.Count == 0 ? 0 : present.Average(m => m.Recall),
            LogLoss = n == 0 ? 0 : logLoss / n,
            PerClass = perClass,
            ConfusionMatrix = confusion,
        };
    }
}
