using MLTransfer.Backbones;
using MLTransfer.Featurization;
using MLTransfer.Tests.TestSupport;
using NUnit.Framework;
using static MLTransfer.Tests.Featurization.FeaturizationTestSupport;

namespace MLTransfer.Tests.Featurization;

public class BottleneckCacheTests
{
    private static string EntryFile(OnnxImageFeaturizer engine, string imagePath) =>
        engine.Cache!.EntryPath(engine.CacheContext, BottleneckCache.ContentHash(File.ReadAllBytes(imagePath)));

    [Test]
    public void Should_serve_identical_vectors_from_the_cache_on_the_second_run()
    {
        var paths = CopyImages(3, "2", "6");
        var cache = TestData.TempFolder();
        using var engine = Engine(cache);
        var first = engine.Featurize(paths);
        var progress = new Recorder();
        var second = engine.Featurize(paths, progress);

        Assert.That(first.FromCache, Is.Zero);
        Assert.That(second.FromCache, Is.EqualTo(paths.Count));
        Assert.That(progress.Reports[^1], Is.EqualTo(new FeaturizationProgress(paths.Count, paths.Count, paths.Count)));
        for (var i = 0; i < paths.Count; i++)
            Assert.That(second.Features[i], Is.EqualTo(first.Features[i]), $"image {i}");
        Assert.That(engine.Cache!.Measure().Entries, Is.EqualTo(paths.Count));
    }

    [Test]
    public void Should_find_entries_from_another_engine_instance_and_a_renamed_file()
    {
        var paths = CopyImages(2, "1");
        var cache = TestData.TempFolder();
        float[]?[] first;
        using (var engine = Engine(cache))
            first = engine.Featurize(paths).Features;
        var renamed = paths.Select(p => p + ".moved.jpg").ToList();
        for (var i = 0; i < paths.Count; i++)
            File.Move(paths[i], renamed[i]);

        using var again = Engine(cache);
        var second = again.Featurize(renamed);
        Assert.That(second.FromCache, Is.EqualTo(paths.Count));
        Assert.That(second.Features, Is.EqualTo(first));
    }

    [Test]
    public void Should_miss_when_the_file_content_changes()
    {
        var paths = CopyImages(2, "0", "9");
        var cache = TestData.TempFolder();
        using var engine = Engine(cache);
        var first = engine.Featurize(paths);
        var replacement = TestData.SampleImage("5", 4);
        File.Copy(replacement, paths[0], overwrite: true);

        var second = engine.Featurize(paths);
        Assert.That(second.FromCache, Is.EqualTo(paths.Count - 1));
        Assert.That(MaxAbsDifference(second.Features[0]!, first.Features[0]!), Is.GreaterThan(1e-3));
        Assert.That(MaxAbsDifference(second.Features[0]!, engine.Featurize([replacement]).Features[0]!), Is.LessThanOrEqualTo(1e-4));
    }

    [Test]
    public void Should_miss_when_the_image_size_changes()
    {
        var paths = CopyImages(2, "4");
        var cache = TestData.TempFolder();
        using (var engine = Engine(cache, size: 64))
            engine.Featurize(paths);
        using var other = Engine(cache, size: 96);
        Assert.That(other.Featurize(paths).FromCache, Is.Zero);
        Assert.That(other.Featurize(paths).FromCache, Is.EqualTo(paths.Count));
    }

    [Test]
    public void Should_recompute_a_corrupt_entry()
    {
        var paths = CopyImages(2, "3", "5");
        var cache = TestData.TempFolder();
        using var engine = Engine(cache);
        var first = engine.Featurize(paths);
        var entry = EntryFile(engine, paths[1]);
        var bytes = File.ReadAllBytes(entry);
        bytes[100] ^= 0x40; // one flipped bit inside the features
        File.WriteAllBytes(entry, bytes);

        var second = engine.Featurize(paths);
        Assert.That(second.FromCache, Is.EqualTo(paths.Count - 1));
        Assert.That(engine.Cache!.CorruptEntries, Is.EqualTo(1));
        Assert.That(MaxAbsDifference(second.Features[1]!, first.Features[1]!), Is.LessThanOrEqualTo(1e-4));
        Assert.That(engine.Featurize(paths).FromCache, Is.EqualTo(paths.Count), "the recomputed entry is stored again");
    }

    [Test]
    public void Should_ignore_what_a_killed_write_leaves_behind()
    {
        var paths = CopyImages(2, "7", "8");
        var cache = TestData.TempFolder();
        using var engine = Engine(cache);
        var first = engine.Featurize(paths);
        // A run killed mid-write leaves a hidden temporary file; the entry it was writing never appears.
        var pending = EntryFile(engine, paths[0]);
        var bytes = File.ReadAllBytes(pending);
        File.Delete(pending);
        var leftover = Path.Combine(Path.GetDirectoryName(pending)!, $".{Path.GetFileName(pending)}.4242.0123456789abcdef.tmp");
        File.WriteAllBytes(leftover, bytes[..(bytes.Length / 2)]);
        // A file system that lost the tail of an entry leaves it short.
        var truncated = EntryFile(engine, paths[1]);
        File.WriteAllBytes(truncated, File.ReadAllBytes(truncated)[..1000]);

        var second = engine.Featurize(paths);
        Assert.That(second.FromCache, Is.EqualTo(paths.Count - 2));
        Assert.That(second.Failed, Is.Empty);
        for (var i = 0; i < 2; i++)
            Assert.That(MaxAbsDifference(second.Features[i]!, first.Features[i]!), Is.LessThanOrEqualTo(1e-4));
        Assert.That(File.Exists(pending), Is.True);
        Assert.That(File.ReadAllBytes(truncated), Has.Length.EqualTo(bytes.Length));

        engine.Cache!.Clear();
        Assert.That(File.Exists(leftover), Is.False, "Clear removes leftovers too");
    }

    [Test]
    public void Should_clear_every_entry()
    {
        var paths = CopyImages(2, "2");
        var cache = TestData.TempFolder();
        using var engine = Engine(cache);
        engine.Featurize(paths);
        Assert.That(engine.Cache!.Measure().Entries, Is.EqualTo(paths.Count));

        engine.Cache.Clear();
        Assert.That(engine.Cache.Measure(), Is.EqualTo((0, 0L)));
        Assert.That(engine.Featurize(paths).FromCache, Is.Zero);
    }

    [Test]
    public void Should_leave_unrelated_files_alone_when_clearing()
    {
        var folder = TestData.TempFolder();
        var mine = Path.Combine(folder, "notes.txt");
        File.WriteAllText(mine, "keep me");
        var nested = Directory.CreateDirectory(Path.Combine(folder, "project", "ab")).FullName;
        File.WriteAllText(Path.Combine(nested, "data.bin"), "keep me too");
        var cache = new BottleneckCache(folder);
        var context = BottleneckCache.ContextKey(Backbone.ResNet18() with { Name = "odd/name" }, 64);
        cache.Put(context, BottleneckCache.ContentHash([1, 2, 3]), new float[512]);
        Assert.That(cache.Measure().Entries, Is.EqualTo(1));

        cache.Clear();
        Assert.That(cache.Measure().Entries, Is.Zero);
        Assert.That(File.Exists(mine), Is.True);
        Assert.That(File.Exists(Path.Combine(nested, "data.bin")), Is.True);
        Assert.That(Directory.GetDirectories(folder).Select(Path.GetFileName), Is.EqualTo(new[] { "project" }));
    }

    [Test]
    public void Should_evict_the_least_recently_used_entries_beyond_the_limit()
    {
        var folder = TestData.TempFolder();
        const int features = 512;
        var entryBytes = 44 + features * 4 + 16;
        var cache = new BottleneckCache(folder, maxBytes: 10L * entryBytes);
        var context = BottleneckCache.ContextKey(Backbone.ResNet18(), 64);
        var hashes = Enumerable.Range(0, 30).Select(i => BottleneckCache.ContentHash(BitConverter.GetBytes(i))).ToList();
        var vector = Enumerable.Range(0, features).Select(i => i * 0.5f).ToArray();
        var start = DateTime.UtcNow.AddMinutes(-30);
        for (var i = 0; i < hashes.Count; i++)
        {
            cache.Put(context, hashes[i], vector);
            File.SetLastWriteTimeUtc(cache.EntryPath(context, hashes[i]), start.AddSeconds(i));
            if (i == 1)
                Assert.That(cache.TryGet(context, hashes[0], features, out _), Is.True); // touch: entry 0 becomes recent
        }

        var (entries, bytes) = cache.Measure();
        Assert.That(bytes, Is.LessThanOrEqualTo(cache.MaxBytes));
        Assert.That(entries, Is.InRange(5, 10));
        Assert.That(cache.TryGet(context, hashes[^1], features, out var newest), Is.True);
        Assert.That(newest, Is.EqualTo(vector));
        Assert.That(cache.TryGet(context, hashes[2], features, out _), Is.False, "an old entry was evicted");
    }

    [Test]
    public void Should_neither_read_nor_write_when_disabled()
    {
        var paths = CopyImages(2, "6");
        using var engine = Engine(cacheDirectory: null);
        Assert.That(engine.Cache, Is.Null);
        Assert.That(engine.Featurize(paths).FromCache, Is.Zero);
        Assert.That(engine.Featurize(paths).FromCache, Is.Zero);
    }

    [Test]
    public void Should_key_entries_by_backbone_identity_and_size()
    {
        var backbone = Backbone.ResNet18();
        Assert.That(BottleneckCache.ContextKey(backbone, 64), Is.EqualTo(BottleneckCache.ContextKey(backbone, 64)));
        Assert.That(BottleneckCache.ContextKey(backbone, 64), Is.Not.EqualTo(BottleneckCache.ContextKey(backbone, 96)));
        Assert.That(BottleneckCache.ContextKey(backbone, 64),
            Is.Not.EqualTo(BottleneckCache.ContextKey(backbone with { ChannelOrder = ChannelOrder.Rgb }, 64)));
    }
}
