using MLTransfer.Build;
using NUnit.Framework;
using static TorchSharp.torch;

namespace MLTransfer.Torch.Tests;

public class LibTorchLoadTests
{
    private const string Version = "GLIBCXX_3.4.32";

    private static string DeployedLibrary()
    {
        string dir = AppContext.BaseDirectory;
        string[] candidates =
        [
            Path.Combine(dir, "libLibTorchSharp.so"),
            Path.Combine(dir, "runtimes", "linux-x64", "native", "libLibTorchSharp.so"),
        ];
        return candidates.First(File.Exists);
    }

    // The build writes where it copied the library from (the NuGet package folder, wherever it is) next to the tests.
    private static string OriginalLibrary()
    {
        var record = Path.Combine(AppContext.BaseDirectory, "libLibTorchSharp.source.txt");
        Assert.That(File.Exists(record), Is.True, $"{record} is written by the build (RecordLibTorchSharpSource)");
        var sources = File.ReadAllLines(record).Where(l => l.Length > 0).ToArray();
        Assert.That(sources, Has.Length.EqualTo(1), "one package copy of libLibTorchSharp.so");
        Assert.That(File.Exists(sources[0]), Is.True, sources[0]);
        return sources[0];
    }

    [Test]
    public void Should_load_libtorch_and_compute_a_sum()
    {
        using var t = ones(2, 3);
        using var s = t.sum();
        Assert.That(s.item<float>(), Is.EqualTo(6f));
    }

    [Test]
    public void Should_mark_only_the_glibcxx_3_4_32_requirement_weak_in_the_deployed_copy()
    {
        string deployed = DeployedLibrary();
        Assert.That(ElfWeakVersionPatcher.IsWeak(deployed, Version), Is.True);
        Assert.That(ElfWeakVersionPatcher.IsWeak(deployed, "GLIBCXX_3.4.30"), Is.False);

        string original = OriginalLibrary();
        Assert.That(ElfWeakVersionPatcher.IsWeak(original, Version), Is.False, "the NuGet cache must not be modified");
        byte[] a = File.ReadAllBytes(original);
        byte[] b = File.ReadAllBytes(deployed);
        Assert.That(b, Has.Length.EqualTo(a.Length));
        int[] differing = Enumerable.Range(0, a.Length).Where(i => a[i] != b[i]).ToArray();
        Assert.That(differing, Has.Length.EqualTo(1));
        Assert.That(b[differing[0]] ^ a[differing[0]], Is.EqualTo(0x2), "only VER_FLG_WEAK is set");
    }

    [Test]
    public void Should_patch_idempotently_through_a_temporary_copy()
    {
        string dir = Path.Combine(Path.GetTempPath(), "mltransfer-elf-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            string original = OriginalLibrary();
            string copy = Path.Combine(dir, "libLibTorchSharp.so");
            File.Copy(original, copy);

            Assert.That(ElfWeakVersionPatcher.Patch(copy, Version), Is.EqualTo(ElfPatchResult.Patched));
            Assert.That(ElfWeakVersionPatcher.Patch(copy, Version), Is.EqualTo(ElfPatchResult.AlreadyWeak));
            Assert.That(ElfWeakVersionPatcher.Patch(copy, "GLIBCXX_9.9.99"), Is.EqualTo(ElfPatchResult.NotRequired));
            Assert.That(ElfWeakVersionPatcher.IsWeak(copy, Version), Is.True);
            Assert.That(Directory.GetFiles(dir, "*.tmp"), Is.Empty);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
