using Microsoft.ML;
using Microsoft.ML.Data;
using MLTransfer.Data;

namespace MLTransfer.Evaluation;

/// <summary>Runs a saved or trained image model over labelled images and computes its metrics.</summary>
public static class ModelEvaluator
{
    /// <summary>The class names of a model, in score order, read from the score column's slot names.</summary>
    /// <param name="model">A model with an <c>ImagePath</c> input.</param>
    /// <param name="scoreColumn">The probability column. The default value is <c>Score</c>.</param>
    public static IReadOnlyList<string> Classes(ITransformer model, string scoreColumn = "Score")
    {
        ArgumentNullException.ThrowIfNull(model);
        var builder = new DataViewSchema.Builder();
        builder.AddColumn(Export.ImagePipeline.ImagePathColumn, TextDataViewType.Instance);
        builder.AddColumn(Techniques.TransferData.LabelColumn, TextDataViewType.Instance);
        var output = model.GetOutputSchema(builder.ToSchema());
        var score = output.GetColumnOrNull(scoreColumn)
            ?? throw new InvalidDataException($"The model has no '{scoreColumn}' column; is it an MLTransfer image classifier?");
        var names = default(VBuffer<ReadOnlyMemory<char>>);
        if (!score.HasSlotNames())
            throw new InvalidDataException($"The model's '{scoreColumn}' column carries no class names.");
        score.GetSlotNames(ref names);
        return names.DenseValues().Select(n => n.ToString()).ToArray();
    }

    /// <summary>Predicts every image and compares with its label.</summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="model">The model (trained or loaded).</param>
    /// <param name="examples">Labelled images.</param>
    /// <param name="scoreColumn">The probability column. The default value is <c>Score</c>.</param>
    /// <exception cref="InvalidDataException">The images carry classes the model does not know.</exception>
    public static ClassificationReport Evaluate(MLContext mlContext, ITransformer model, IReadOnlyList<ImageExample> examples, string scoreColumn = "Score") =>
        EvaluateDetailed(mlContext, model, examples, scoreColumn).Report;

    /// <summary>Like <see cref="Evaluate"/>, and also returns the model's probabilities for each image.</summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="model">The model (trained or loaded).</param>
    /// <param name="examples">Labelled images.</param>
    /// <param name="scoreColumn">The probability column. The default value is <c>Score</c>.</param>
    /// <exception cref="InvalidDataException">The images carry classes the model does not know.</exception>
    public static (ClassificationReport Report, IReadOnlyList<ImagePrediction> Predictions) EvaluateDetailed(MLContext mlContext, ITransformer model,
        IReadOnlyList<ImageExample> examples, string scoreColumn = "Score")
    {
        ArgumentNullException.ThrowIfNull(examples);
        var classes = Classes(model, scoreColumn);
        CheckLabels(classes, examples.Select(e => e.Label));
        var scores = Predict(mlContext, model, examples.Select(e => e.ImagePath).ToList(), scoreColumn);
        var index = classes.Select((c, i) => (c, i)).ToDictionary(p => p.c, p => p.i, StringComparer.Ordinal);
        var report = ClassificationReport.Compute(classes, examples.Select(e => index[e.Label]).ToArray(), scores);
        return (report, examples.Select((e, i) => new ImagePrediction(e.ImagePath, e.Label, scores[i])).ToList());
    }

    /// <summary>Throws a clear error when labels include classes the model was not trained on.</summary>
    /// <param name="modelClasses">The model's classes.</param>
    /// <param name="labels">Labels of the evaluation images.</param>
    public static void CheckLabels(IReadOnlyList<string> modelClasses, IEnumerable<string> labels)
    {
        var unknown = labels.Distinct(StringComparer.Ordinal).Where(l => !modelClasses.Contains(l, StringComparer.Ordinal)).OrderBy(l => l, StringComparer.Ordinal).ToList();
        if (unknown.Count > 0)
            throw new InvalidDataException(
                $"The images have classes the model does not know: '{string.Join("', '", unknown)}'. Model classes: '{string.Join("', '", modelClasses)}'.");
    }

    /// <summary>Class probabilities for each image, in the model's class order.</summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="model">The model.</param>
    /// <param name="imagePaths">Image files.</param>
    /// <param name="scoreColumn">The probability column. The default value is <c>Score</c>.</param>
    public static float[][] Predict(MLContext mlContext, ITransformer model, IReadOnlyList<string> imagePaths, string scoreColumn = "Score")
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        var input = mlContext.Data.LoadFromEnumerable(imagePaths.Select(p => new ImageExample { ImagePath = p }));
        var output = model.Transform(input);
        return output.GetColumn<VBuffer<float>>(scoreColumn).Select(v => v.DenseValues().ToArray()).ToArray();
    }
}
