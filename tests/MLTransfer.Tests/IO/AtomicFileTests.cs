using Microsoft.ML;
using MLTransfer.Export;
using MLTransfer.Tests.TestSupport;
using NUnit.Framework;

namespace MLTransfer.Tests.IO;

public class AtomicFileTests
{
    [Test]
    public void Should_keep_the_old_file_and_leave_no_temp_file_when_writing_fails()
    {
        var folder = TestData.TempFolder();
        var path = Path.Combine(folder, "model.zip");
        File.WriteAllText(path, "previous model");

        var error = Assert.Throws<IOException>(() => AtomicFile.Write(path, stream =>
        {
            stream.Write(new byte[4096]);
            throw new IOException("No space left on device");
        }));

        Assert.That(error!.Message, Does.Contain("model.zip").And.Contain("No space left").And.Contain("unchanged"));
        Assert.That(File.ReadAllText(path), Is.EqualTo("previous model"));
        Assert.That(Directory.GetFiles(folder), Is.EqualTo(new[] { path }));
    }

    [Test]
    public void Should_replace_the_file_completely_on_success()
    {
        var path = Path.Combine(TestData.TempFolder(), "nested", "out.bin");
        AtomicFile.WriteAllBytes(path, new byte[] { 1, 2, 3 });
        AtomicFile.WriteAllBytes(path, new byte[] { 4, 5 });
        Assert.That(File.ReadAllBytes(path), Is.EqualTo(new byte[] { 4, 5 }));
        Assert.That(Directory.GetFiles(Path.GetDirectoryName(path)!), Has.Length.EqualTo(1));
    }

    [Test]
    public void Should_not_leave_a_half_written_zip_when_the_model_cannot_be_saved()
    {
        var folder = TestData.TempFolder();
        var path = Path.Combine(folder, "model.zip");
        var ml = new MLContext();
        Assert.That(() => ModelFile.Save(ml, new UnsaveableTransformer(), path), Throws.Exception);
        Assert.That(Directory.GetFiles(folder), Is.Empty);
    }

    [Test]
    public void Should_explain_a_file_that_is_not_a_model()
    {
        var path = Path.Combine(TestData.TempFolder(), "fake.zip");
        File.WriteAllText(path, "not a zip");
        var error = Assert.Throws<InvalidDataException>(() => ModelFile.Load(new MLContext(), path));
        Assert.That(error!.Message, Does.Contain("fake.zip").And.Contain("not an ML.NET model"));
    }

    private sealed class UnsaveableTransformer : ITransformer
    {
        public bool IsRowToRowMapper => true;
        public Microsoft.ML.DataViewSchema GetOutputSchema(Microsoft.ML.DataViewSchema inputSchema) => inputSchema;
        public Microsoft.ML.Data.IRowToRowMapper GetRowToRowMapper(Microsoft.ML.DataViewSchema inputSchema) => throw new NotSupportedException();
        public IDataView Transform(IDataView input) => input;
        public void Save(Microsoft.ML.ModelSaveContext ctx) => throw new IOException("disk full while saving");
    }
}
