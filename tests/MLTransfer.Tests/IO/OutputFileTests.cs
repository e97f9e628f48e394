using System.Text;
using MLTransfer.IO;
using MLTransfer.Tests.TestSupport;
using NUnit.Framework;

namespace MLTransfer.Tests.IO;

public class OutputFileTests
{
    [Test]
    public void Should_write_a_254_byte_name_atomically_through_a_temporary_name_within_255_bytes()
    {
        var folder = TestData.TempFolder();
        var path = Path.Combine(folder, new string('é', 125) + ".zip");
        Assert.That(Encoding.UTF8.GetByteCount(Path.GetFileName(path)), Is.EqualTo(254));
        Assert.That(Encoding.UTF8.GetByteCount(Path.GetFileName(AtomicFile.TemporaryPath(path))), Is.LessThanOrEqualTo(OutputFile.MaxNameBytes));
        Assert.That(OutputFile.Check(path), Is.EqualTo(path));
        AtomicFile.WriteAllText(path, "content");
        Assert.That(File.ReadAllText(path), Is.EqualTo("content"));
        Assert.That(Directory.GetFiles(folder), Is.EqualTo(new[] { path }), "no temporary or probe file left");
        var companion = OutputFile.Companion(path, ".confusion.png");
        Assert.That(Encoding.UTF8.GetByteCount(Path.GetFileName(companion)), Is.LessThanOrEqualTo(OutputFile.MaxNameBytes));
        Assert.That(companion, Does.EndWith(".confusion.png"));
    }

    [Test]
    public void Should_delete_only_the_temporary_files_of_dead_processes_for_the_same_target()
    {
        var folder = TestData.TempFolder();
        var path = Path.Combine(folder, "model.zip");
        var dead = Path.Combine(folder, $".model.zip.4194001.{Guid.NewGuid():N}.tmp");
        var mine = Path.Combine(folder, $".model.zip.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        var other = Path.Combine(folder, $".model.zip.old.4194001.{Guid.NewGuid():N}.tmp");
        foreach (var file in new[] { dead, mine, other })
            File.WriteAllText(file, "x");
        Assert.That(AtomicFile.DeleteStaleTemporaryFiles(path), Is.EqualTo(1));
        Assert.That(File.Exists(dead), Is.False);
        Assert.That(File.Exists(mine) && File.Exists(other), "a live process's file and another target's stay");
    }

    [Test]
    public void Should_refuse_unknown_files_folders_and_protected_places_before_writing_anything()
    {
        var folder = TestData.TempFolder();
        var notes = Path.Combine(folder, "notes.zip");
        File.WriteAllText(notes, "notes");
        var rules = new OutputFileRules { Kind = "model", IsReplaceable = _ => false, OverwriteHint = "add --force" };
        Assert.That(Assert.Throws<IOException>(() => OutputFile.Check(notes, rules))!.Message, Does.Contain("Refusing").And.Contain("--force"));
        Assert.That(OutputFile.Check(notes, new OutputFileRules { IsReplaceable = _ => false, Overwrite = true }), Is.EqualTo(notes));
        Assert.That(Assert.Throws<IOException>(() => OutputFile.Check(folder))!.Message, Does.Contain("is a folder"));
        var inside = Path.Combine(folder, "a", "b.zip");
        var protectedRules = new OutputFileRules { ProtectedFolders = [new ProtectedFolder("training folder", folder)] };
        Assert.That(Assert.Throws<IOException>(() => OutputFile.Check(inside, protectedRules))!.Message, Does.Contain("inside the training folder"));
        Assert.That(Assert.Throws<ArgumentException>(() => OutputFile.Check(notes + ".txt", new OutputFileRules { Extensions = [".zip"] }))!.Message,
            Does.Contain(".zip"));
        Assert.That(Directory.GetFiles(folder), Is.EqualTo(new[] { notes }));
        Assert.That(Directory.Exists(Path.Combine(folder, "a")), Is.False, "checking creates no folder");
    }

    [Test]
    public void Should_delete_scratch_folders_on_dispose_and_those_of_dead_processes()
    {
        var parent = TestData.TempFolder();
        var orphan = Directory.CreateDirectory(Path.Combine(parent, ScratchFolder.Prefix + "4194002-abc")).FullName;
        File.WriteAllText(Path.Combine(orphan, "graph.onnx"), "left by a killed run");
        string path;
        using (var scratch = ScratchFolder.Create(parent))
        {
            path = scratch.Path;
            File.WriteAllText(scratch.File("x.bin"), "x");
            Assert.That(Directory.Exists(orphan), Is.False, "a dead process's scratch folder is deleted");
        }
        Assert.That(Directory.Exists(path), Is.False);
    }
}
