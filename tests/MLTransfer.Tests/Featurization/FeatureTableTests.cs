using MLTransfer.IO;
using MLTransfer.Tests.TestSupport;
using NUnit.Framework;

namespace MLTransfer.Tests.Featurization;

public class FeatureTableTests
{
    private static List<FeatureRow> Rows() =>
    [
        new("/data/a/img 1.jpg", "a", [0f, 1.5f, -2.25e-7f, float.MaxValue]),
        new("/data/b,c/\"quoted\".png", "b,c", [3.14159274f, 1e-30f, 0.1f, 7f]),
        new("/data/none.bmp", "", [1f / 3f, 2f / 3f, 12345.678f, -0f]),
    ];

    [TestCase("features.csv")]
    [TestCase("features.parquet")]
    [TestCase("FEATURES.PARQUET")]
    public void Should_round_trip_paths_labels_and_exact_floats(string name)
    {
        var path = Path.Combine(TestData.TempFolder(), name);
        FeatureTable.Write(path, Rows(), featureSize: 4);
        var read = FeatureTable.Read(path);

        Assert.That(read, Has.Count.EqualTo(3));
        for (var i = 0; i < 3; i++)
        {
            Assert.That(read[i].Path, Is.EqualTo(Rows()[i].Path));
            Assert.That(read[i].Label, Is.EqualTo(Rows()[i].Label));
            Assert.That(read[i].Features, Is.EqualTo(Rows()[i].Features));
        }
    }

    [Test]
    public void Should_write_a_csv_header_other_tools_understand()
    {
        var path = Path.Combine(TestData.TempFolder(), "f.csv");
        FeatureTable.Write(path, Rows(), featureSize: 4);
        var lines = File.ReadAllLines(path);
        Assert.That(lines[0], Is.EqualTo("path,label,f0,f1,f2,f3"));
        Assert.That(lines[2], Does.StartWith("\"/data/b,c/\"\"quoted\"\".png\",\"b,c\",3.1415927,"));
        Assert.That(Directory.GetFiles(Path.GetDirectoryName(path)!), Has.Length.EqualTo(1), "no temporary file is left");
    }

    [Test]
    public void Should_write_an_empty_table()
    {
        var path = Path.Combine(TestData.TempFolder(), "empty.parquet");
        FeatureTable.Write(path, [], featureSize: 4);
        Assert.That(FeatureTable.Read(path), Is.Empty);
    }

    [Test]
    public void Should_reject_an_unknown_format_and_a_wrong_vector_length()
    {
        var folder = TestData.TempFolder();
        Assert.Throws<ArgumentException>(() => FeatureTable.Write(Path.Combine(folder, "f.txt"), Rows(), 4));
        var error = Assert.Throws<ArgumentException>(() => FeatureTable.Write(Path.Combine(folder, "f.csv"), Rows(), 5));
        Assert.That(error!.Message, Does.Contain("5 were expected"));
        Assert.That(Directory.GetFiles(folder), Is.Empty);
    }
}
