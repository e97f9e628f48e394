using Microsoft.ML.Data;
using Microsoft.ML;
using MLTransfer.Data;
using MLTransfer.Tests.TestSupport;
using NUnit.Framework;

namespace MLTransfer.Tests.Data;

public class ImageManifestTests
{
    private static string Folder(out string image)
    {
        var dir = TestData.TempFolder();
        Directory.CreateDirectory(Path.Combine(dir, "img"));
        image = Path.Combine(dir, "img", "a.png");
        File.Copy(TestData.SampleImage("3"), image);
        return dir;
    }

    private static string Write(string dir, string text, string name = "labels.csv")
    {
        var path = Path.Combine(dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    [Test]
    public void Csv_should_handle_quotes_commas_doubled_quotes_newlines_and_crlf()
    {
        var records = Csv.Parse("\uFEFFa,b,c\r\n\"x, y\",\"say \"\"hi\"\"\",\"two\nlines\"\r\n,,\n\nlast,\"\",z");
        Assert.That(records, Has.Count.EqualTo(4));
        Assert.That(records[0].Fields, Is.EqualTo(new[] { "a", "b", "c" }));
        Assert.That(records[1].Fields, Is.EqualTo(new[] { "x, y", "say \"hi\"", "two\nlines" }));
        Assert.That(records[2].Fields, Is.EqualTo(new[] { "", "", "" }));
        Assert.That(records[2].Line, Is.EqualTo(4));
        Assert.That(records[3].Fields, Is.EqualTo(new[] { "last", "", "z" }));
    }

    [Test]
    public void Csv_should_reject_an_unclosed_quote()
    {
        Assert.That(() => Csv.Parse("a,b\n\"open,x\n"), Throws.InstanceOf<InvalidDataException>().With.Message.Contains("not closed"));
    }

    [Test]
    public void Should_read_blanks_as_missing_labels_and_quoted_paths()
    {
        var dir = Folder(out var image);
        var comma = Path.Combine(dir, "img", "b, c.png");
        File.Copy(TestData.SampleImage("4"), comma);
        var manifest = ImageManifest.Load(Write(dir, "path,colour,size\nimg/a.png,red,\n\"img/b, c.png\",,3.5\nimg/a.png,,\n"));
        Assert.That(manifest.Examples, Has.Count.EqualTo(2));
        Assert.That(manifest.Unlabelled, Is.EqualTo(1));
        Assert.That(manifest.Examples[0].ImagePath, Is.EqualTo(image));
        Assert.That(manifest.Examples[1].ImagePath, Is.EqualTo(comma));
        Assert.That(manifest.Examples[0].Labels, Is.EqualTo(new[] { "red", "" }));
        Assert.That(manifest.Examples[1].Labels, Is.EqualTo(new[] { "", "3.5" }));
        Assert.That(manifest.Tasks.Select(t => t.Name), Is.EqualTo(new[] { "colour", "size" }));
        Assert.That(manifest.Tasks[0].Classes, Is.EqualTo(new[] { "red" }));
    }

    [TestCase("../outside.png", "escapes")]
    [TestCase("img/../../outside.png", "escapes")]
    [TestCase("..\\outside.png", "escapes")]
    [TestCase("/etc/passwd", "absolute")]
    public void Should_reject_paths_escaping_the_manifest_folder(string path, string message)
    {
        var dir = Folder(out _);
        var inner = Path.Combine(dir, "inner");
        Directory.CreateDirectory(inner);
        File.Copy(TestData.SampleImage("3"), Path.Combine(dir, "outside.png"));
        var manifest = Write(inner, $"path,label\n{path},x\n");
        Assert.That(() => ImageManifest.Load(manifest),
            Throws.InstanceOf<InvalidDataException>().With.Message.Contains(message).And.Message.Contains("line 2"));
    }

    [Test]
    public void Should_infer_regression_for_many_distinct_numbers_only()
    {
        Assert.That(ImageManifest.InferKind(Enumerable.Range(1, 40).Select(i => i.ToString())), Is.EqualTo(TaskKind.Regression));
        Assert.That(ImageManifest.InferKind(["1.5", "2", "", "3e1", "4", "5", "6", "7", "8", "9", "10", "-11"]), Is.EqualTo(TaskKind.Regression));
        Assert.That(ImageManifest.InferKind(Enumerable.Range(0, 10).Select(i => i.ToString())), Is.EqualTo(TaskKind.Classification), "10 distinct digits are classes");
        Assert.That(ImageManifest.InferKind(["0-12", "13-19", "20-39"]), Is.EqualTo(TaskKind.Classification));
        Assert.That(ImageManifest.InferKind([.. Enumerable.Range(1, 40).Select(i => i.ToString()), "old"]), Is.EqualTo(TaskKind.Classification));
        Assert.That(ImageManifest.InferKind(Enumerable.Range(1, 5).Select(i => i.ToString()), numericClassLimit: 4), Is.EqualTo(TaskKind.Regression));
    }

    [Test]
    public void Should_honour_declared_kinds_and_reject_text_in_a_regression_task()
    {
        var dir = Folder(out _);
        var path = Write(dir, "path,digit,age\nimg/a.png,3,old\n");
        var declared = ImageManifest.Load(path, new ImageManifestOptions { Tasks = ["digit"], Kinds = new Dictionary<string, TaskKind> { ["digit"] = TaskKind.Regression } });
        Assert.That(declared.Tasks.Single().Kind, Is.EqualTo(TaskKind.Regression));
        Assert.That(() => ImageManifest.Load(path, new ImageManifestOptions { Kinds = new Dictionary<string, TaskKind> { ["age"] = TaskKind.Regression } }),
            Throws.InstanceOf<InvalidDataException>().With.Message.Contains("'old', which is not a number"));
    }

    [Test]
    public void Should_fail_clearly_on_bad_headers_rows_and_tasks()
    {
        var dir = Folder(out _);
        Assert.That(() => ImageManifest.Load(Write(dir, "file,label\nimg/a.png,x\n")),
            Throws.InstanceOf<InvalidDataException>().With.Message.Contains("no 'path' column"));
        Assert.That(() => ImageManifest.Load(Write(dir, "path,label\nimg/a.png,x,y\n")),
            Throws.InstanceOf<InvalidDataException>().With.Message.Contains("line 2: 3 fields"));
        Assert.That(() => ImageManifest.Load(Write(dir, "path,label\nimg/a.png,x\n"), new ImageManifestOptions { Tasks = ["age"] }),
            Throws.InstanceOf<InvalidDataException>().With.Message.Contains("no task column 'age'"));
    }

    [Test]
    public void Should_list_unreadable_images_or_fail_in_strict_mode()
    {
        var dir = Folder(out _);
        File.WriteAllText(Path.Combine(dir, "img", "broken.jpg"), "not an image");
        var path = Write(dir, "path,label\nimg/a.png,x\nimg/broken.jpg,y\nimg/missing.png,z\n");
        var manifest = ImageManifest.Load(path);
        Assert.That(manifest.Examples, Has.Count.EqualTo(1));
        Assert.That(manifest.Rejected.Select(r => Path.GetFileName(r.Path)), Is.EquivalentTo(new[] { "broken.jpg", "missing.png" }));
        Assert.That(() => ImageManifest.Load(path, new ImageManifestOptions { Strict = true }), Throws.InstanceOf<InvalidDataException>().With.Message.Contains("strict"));
    }

    [Test]
    public void Should_read_class_folders_as_one_task_and_expose_a_data_view()
    {
        var folder = TestData.CopySample(2, "1", "2");
        var manifest = ImageManifest.FromFolder(folder, "digit");
        Assert.That(manifest.Tasks.Single(), Is.EqualTo(new ManifestTask("digit", TaskKind.Classification, manifest.Tasks[0].Classes)));
        Assert.That(manifest.Tasks[0].Classes, Is.EqualTo(new[] { "1", "2" }));
        var view = manifest.ToDataView(new Microsoft.ML.MLContext());
        Assert.That(view.Schema.Select(c => c.Name), Is.EqualTo(new[] { "ImagePath", "digit" }));
        Assert.That(view.GetColumn<string>("digit").ToArray(), Is.EqualTo(new[] { "1", "1", "2", "2" }));
    }
}
