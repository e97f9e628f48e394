using Microsoft.ML;
using Microsoft.ML.Data;
using MLTransfer.Heads;
using NUnit.Framework;

namespace MLTransfer.Tests.Heads;

public class LinearHeadTests
{
    private sealed class FeatureRow
    {
        [VectorType(1, 4)]
        public float[] Features { get; set; } = [];
    }

    private sealed class Prediction
    {
        public string PredictedLabel { get; set; } = "";
        public float[] Score { get; set; } = [];
    }

    private static LinearHead Head() => new(
        [[1, 0, 0, 0], [0, 2, 0, 0], [0, 0, -1, 3]],
        [0.1f, -0.2f, 0.05f],
        ["cat", "dog", "eel"]);

    [Test]
    public void Should_score_like_its_own_softmax_inside_mlnet_and_after_reload()
    {
        var ml = new MLContext(seed: 1);
        var head = Head();
        var rows = new[] { new FeatureRow { Features = [3, 0, 0, 0] }, new FeatureRow { Features = [0, 1, 0, 0] }, new FeatureRow { Features = [0, 0, 0, 1] } };
        var data = ml.Data.LoadFromEnumerable(rows);
        var transformer = head.ToMLNet(ml, "Features");

        var path = Path.Combine(Path.GetTempPath(), $"head-{Guid.NewGuid():N}.zip");
        ml.Model.Save(transformer, data.Schema, path);
        var reloaded = new MLContext().Model.Load(path, out _);
        File.Delete(path);

        foreach (var model in new[] { transformer, reloaded })
        {
            var predictions = ml.Data.CreateEnumerable<Prediction>(model.Transform(data), reuseRowObject: false).ToArray();
            Assert.That(predictions.Select(p => p.PredictedLabel), Is.EqualTo(new[] { "cat", "dog", "eel" }));
            for (var i = 0; i < rows.Length; i++)
            {
                var expected = head.Predict(rows[i].Features);
                Assert.That(predictions[i].Score, Is.EqualTo(expected).Within(1e-5f));
                Assert.That(predictions[i].Score.Sum(), Is.EqualTo(1f).Within(1e-5f));
            }
        }
    }

    [Test]
    public void Should_name_output_columns_for_multi_task_models()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(new[] { new FeatureRow { Features = [0, 0, 0, 1] } });
        var output = Head().ToMLNet(ml, "Features", "Score_kind", "PredictedLabel_kind").Transform(data);
        Assert.That(output.Schema.GetColumnOrNull("PredictedLabel_kind")?.Type, Is.EqualTo(TextDataViewType.Instance));
        Assert.That(output.GetColumn<VBuffer<float>>("Score_kind").Single().Length, Is.EqualTo(3));
    }

    [Test]
    public void Should_reject_mismatched_shapes()
    {
        Assert.Throws<ArgumentException>(() => new LinearHead([[1, 2]], [0, 0], ["a", "b"]));
    }
}
