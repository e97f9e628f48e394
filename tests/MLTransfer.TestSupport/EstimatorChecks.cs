using Microsoft.ML;
using Microsoft.ML.Data;
using MLTransfer.Data;
using NUnit.Framework;

namespace MLTransfer.Tests.TestSupport;

/// <summary>
/// The four checks every MLTransfer estimator gets (as ML.NET's own test helper does): the output schema is
/// right, invalid input fails clearly, it fits, and a saved-then-reloaded model predicts identical numbers.
/// </summary>
public static class EstimatorChecks
{
    private sealed class PathOnly
    {
        public string ImagePath { get; set; } = "";
    }

    private sealed class NoPath
    {
        public string Label { get; set; } = "";
    }

    public static ITransformer Run<TModel>(MLContext ml, IEstimator<TModel> estimator, IReadOnlyList<ImageExample> train,
        IReadOnlyList<string> probePaths, string[]? scoreColumns = null, string[]? labelColumns = null)
        where TModel : class, ITransformer =>
        Run(ml, estimator, ml.Data.LoadFromEnumerable(train), probePaths, scoreColumns, labelColumns);

    /// <summary>The same checks on any training data view (e.g. one column per task for multi-task models).</summary>
    public static ITransformer Run<TModel>(MLContext ml, IEstimator<TModel> estimator, IDataView data,
        IReadOnlyList<string> probePaths, string[]? scoreColumns = null, string[]? labelColumns = null)
        where TModel : class, ITransformer
    {
        scoreColumns ??= ["Score"];
        labelColumns ??= ["PredictedLabel"];

        var shape = estimator.GetOutputSchema(ShapeOf(data.Schema));
        foreach (var column in scoreColumns)
            Assert.That(shape.Any(c => c.Name == column), $"schema shape lacks {column}");

        var bad = ml.Data.LoadFromEnumerable(new[] { new NoPath { Label = "x" } });
        Assert.That(() => estimator.Fit(bad), Throws.InstanceOf<ArgumentException>().With.Message.Contains("ImagePath"));

        var model = estimator.Fit(data);

        var probe = ml.Data.LoadFromEnumerable(probePaths.Select(p => new PathOnly { ImagePath = p }));
        var before = Outputs(model.Transform(probe), scoreColumns, labelColumns);

        var path = Path.Combine(TestData.TempFolder(), "model.zip");
        ml.Model.Save(model, probe.Schema, path);
        var fresh = new MLContext();
        var reloaded = fresh.Model.Load(path, out var inputSchema);
        Assert.That(inputSchema.Select(c => c.Name), Is.EqualTo(new[] { "ImagePath" }));
        var after = Outputs(reloaded.Transform(fresh.Data.LoadFromEnumerable(probePaths.Select(p => new PathOnly { ImagePath = p }))), scoreColumns, labelColumns);

        Assert.That(after.Labels, Is.EqualTo(before.Labels));
        for (var i = 0; i < before.Scores.Count; i++)
            Assert.That(after.Scores[i], Is.EqualTo(before.Scores[i]).Within(1e-5f));
        foreach (var scores in before.Scores)
            Assert.That(scores.Sum(), Is.EqualTo(1f).Within(1e-3f));
        return model;
    }

    /// <summary>ML.NET's SchemaShape.Create(DataViewSchema) is internal; the checks need it to probe GetOutputSchema.</summary>
    public static SchemaShape ShapeOf(DataViewSchema schema) =>
        (SchemaShape)typeof(SchemaShape).GetMethod("Create", System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic)!
            .Invoke(null, [schema])!;

    private static (List<string> Labels, List<float[]> Scores) Outputs(IDataView view, string[] scoreColumns, string[] labelColumns)
    {
        var labels = labelColumns.SelectMany(c => view.GetColumn<ReadOnlyMemory<char>>(c).Select(v => $"{c}={v}")).ToList();
        var scores = scoreColumns.SelectMany(c => view.GetColumn<VBuffer<float>>(c).Select(v => v.DenseValues().ToArray())).ToList();
        return (labels, scores);
    }
}
