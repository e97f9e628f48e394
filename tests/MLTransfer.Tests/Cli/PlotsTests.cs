using MLTransfer.Cli.Rendering;
using MLTransfer.Evaluation;
using MLTransfer.Tests.TestSupport;
using NUnit.Framework;

namespace MLTransfer.Tests.Cli;

public class PlotsTests
{
    [Test]
    public void Should_draw_cjk_class_names_with_a_font_that_has_their_glyphs_or_number_them_with_a_warning()
    {
        string[] classes = ["猫", "犬", "東京タワー", "서울"];
        var labels = Plots.Labels(classes, 480);
        for (var i = 0; i < classes.Length; i++)
        {
            Assert.That(Plots.Covers(labels.FontName, [labels.Texts[i]]), $"'{labels.Texts[i]}' is drawable with {labels.FontName}");
            if (labels.Texts[i] != classes[i])
                Assert.That(labels.Texts[i], Is.EqualTo($"#{i}"));
        }
        if (labels.Texts.SequenceEqual(classes))
            Assert.That(labels.Warning, Is.Null);
        else
            Assert.That(labels.Warning, Does.Contain("no installed font").And.Contain("#0"));
        if (Plots.Covers(ScottPlot.Fonts.Detect(string.Concat(classes)), classes))
            Assert.That(labels.Texts, Is.EqualTo(classes), "an installed CJK font is used");
    }

    [Test]
    public void Should_shorten_and_rotate_long_class_names_so_they_do_not_overlap()
    {
        var classes = Enumerable.Range(0, 10).Select(i => $"a rather long class name number {i}").ToArray();
        var labels = Plots.Labels(classes, 480);
        Assert.That(labels.Texts.Max(t => t.Length), Is.LessThanOrEqualTo(Plots.MaxLabelLength));
        Assert.That(labels.Texts.Distinct().Count(), Is.EqualTo(10), "still tell the classes apart");
        Assert.That(labels.Rotation, Is.EqualTo(45));
        var spacing = 480f / classes.Length;
        Assert.That(spacing * MathF.Sin(labels.Rotation * MathF.PI / 180), Is.GreaterThan(12f), "rotated labels are a line height apart");
        Assert.That(Plots.Labels(["0", "1", "2"], 480).Rotation, Is.Zero, "short names stay horizontal");

        var report = ClassificationReport.Compute(classes, Enumerable.Range(0, 10).ToArray(),
            Enumerable.Range(0, 10).Select(i => Enumerable.Range(0, 10).Select(j => i == j ? 0.9f : 0.01f).ToArray()).ToArray());
        var path = Plots.ConfusionMatrix(report, Path.Combine(TestData.TempFolder(), "long.png"));
        Assert.That(MLTransfer.IO.OutputFile.IsPng(path));
    }
}
