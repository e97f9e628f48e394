using Microsoft.ML;
using MLTransfer.Evaluation;
using MLTransfer.Explain;
using NUnit.Framework;

namespace MLTransfer.Tests.TestSupport;

/// <summary>The checks every explained model passes: the explainer scores like the ML.NET model, and exact maps reproduce the scores.</summary>
public static class ExplainChecks
{
    /// <summary>
    /// Explains the probes and asserts that the explainer's probabilities are the model's own (its ML.NET chain) and, for
    /// class-activation maps, that the softmax of the maps' spatial means reproduces them.
    /// </summary>
    public static List<Explanation> Run(MLContext ml, ITransformer model, ImageExplainer explainer, IReadOnlyList<string> probes, string scoreColumn = "Score")
    {
        var expected = ModelEvaluator.Predict(ml, model, probes, scoreColumn);
        var explanations = explainer.ExplainAll(probes).Select(o => o.Explanation ?? throw new AssertionException($"{o.ImagePath}: {o.Problem}")).ToList();
        Assert.That(explanations.Select(e => e.ImagePath), Is.EqualTo(probes));
        for (var i = 0; i < probes.Count; i++)
        {
            Assert.That(TestData.MaxAbsDifference(explanations[i].Probabilities, expected[i]), Is.LessThan(1e-4), "the explainer scores like the ML.NET model");
            if (explainer.Method == ExplanationMethod.ClassActivationMap)
                Assert.That(explanations[i].ReconstructionError, Is.LessThan(1e-4), "softmax of the maps' means reproduces the scores");
            else
                Assert.That(double.IsNaN(explanations[i].ReconstructionError));
        }
        return explanations;
    }
}
