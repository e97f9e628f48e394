using MLTransfer.Data;
using MLTransfer.Evaluation;
using MLTransfer.Reporting;
using MLTransfer.Techniques;
using NUnit.Framework;

namespace MLTransfer.Tests.Reporting;

public class HtmlReportTests
{
    private static readonly ClassificationReport Metrics = ClassificationReport.Compute(["cat", "dog"], [0, 0, 1, 1], [[0.9f, 0.1f], [0.4f, 0.6f], [0.2f, 0.8f], [0.3f, 0.7f]]);

    [Test]
    public void Domain_adaptation_adds_the_projection_and_multi_task_one_section_per_task()
    {
        var points = new[] { new[] { (0.0, 1.0), (1.0, 0.5) }, new[] { (2.0, 2.0), (3.0, 1.0) } };
        var report = new ModelReport
        {
            Title = "model <1> & co",
            Metrics = Metrics,
            Domains = new DomainProjection("coral", points, points),
            Tasks = new Dictionary<string, TaskReport>
            {
                ["species"] = new() { Task = "species", Kind = TaskKind.Classification, Classification = Metrics },
                ["age"] = new() { Task = "age", Kind = TaskKind.Regression, Regression = RegressionReport.Compute([1, 2, 3], [1.5, 2, 2]) },
            },
            Rejected = [new RejectedImage("/x/<bad>.jpg", "not a supported image")],
        };
        var html = HtmlReport.Render(report);
        foreach (var id in new[] { "summary", "confusion", "per-class", "worst", "domains", "task-species", "task-age", "rejected" })
            Assert.That(html, Does.Contain($"<section id=\"{id}\">"), id);
        Assert.That(html, Does.Not.Contain("<section id=\"curves\">"), "no epochs, no curves");
        Assert.That(html, Does.Contain("model &lt;1&gt; &amp; co").And.Contain("/x/&lt;bad&gt;.jpg"), "text is HTML-encoded");
        Assert.That(html.Split("<img ").Length - 1, Is.EqualTo(1), "the projection chart is the only picture");
        Assert.That(html, Does.Contain("MAE"));
    }

    [Test]
    public void The_worst_predictions_are_the_largest_losses_of_the_true_class()
    {
        var predictions = new[]
        {
            new ImagePrediction("a.jpg", "cat", [0.9f, 0.1f]),
            new ImagePrediction("b.jpg", "cat", [0.4f, 0.6f]),
            new ImagePrediction("c.jpg", "dog", [0.95f, 0.05f]),
            new ImagePrediction("d.jpg", "dog", [0.3f, 0.7f]),
        };
        var worst = ModelReport.TopLosses(predictions, ["cat", "dog"], 2);
        Assert.That(worst.Select(w => w.ImagePath), Is.EqualTo(new[] { "c.jpg", "b.jpg" }));
    }

    [Test]
    public void A_report_sits_beside_its_model()
    {
        Assert.That(HtmlReport.PathFor("/models/digits.zip"), Is.EqualTo("/models/digits.report.html"));
    }
}
