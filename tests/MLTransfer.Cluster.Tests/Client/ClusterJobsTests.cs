using MLTransfer.Diagnostics;
using MLTransfer.Cluster.Client;
using MLTransfer.Cluster.Grains;
using MLTransfer.Cluster.Jobs;
using MLTransfer.Cluster.Output;
using MLTransfer.Cluster.Tests.TestSupport;
using MLTransfer.Data;
using MLTransfer.Tests.TestSupport;
using NUnit.Framework;
using Orleans.TestingHost;

namespace MLTransfer.Cluster.Tests.Client;

/// <summary>The job logic on 3 in-process silos with a fake worker: sharding, reassignment, exactly-once output, cancellation.</summary>
[NonParallelizable]
public class ClusterJobsTests
{
    private TestCluster _cluster = null!;

    [SetUp]
    public async Task StartCluster()
    {
        FakeProcessor.Current = new FakeProcessor();
        _cluster = await TestClusters.StartAsync(3);
    }

    [TearDown]
    public async Task StopCluster()
    {
        await _cluster.StopAllSilosAsync();
        await _cluster.DisposeAsync();
    }

    private static List<ImageExample> FakeImages(int count) =>
        Enumerable.Range(0, count).Select(i => new ImageExample { ImagePath = $"/shared/photos/{i}.jpg" }).ToList();

    private static ClusterJobRequest Request(string output, int images, int shardSize) => new()
    {
        Spec = new JobSpec { OutputDirectory = output, NoCache = true },
        Images = FakeImages(images),
        ShardSize = shardSize,
        PollPeriod = TimeSpan.FromMilliseconds(50),
    };

    private static void AssertEveryImageExactlyOnce(string output, int images)
    {
        var rows = PartFiles.ReadAll<FeaturePartRow>(output).ToList();
        Assert.That(rows.Select(r => r.Path), Is.EquivalentTo(FakeImages(images).Select(i => i.ImagePath)), "every image exactly once");
        Assert.That(rows.All(r => r.Features![0] == float.Parse(Path.GetFileNameWithoutExtension(r.Path))));
        Assert.That(Directory.GetFiles(output, "*.tmp"), Is.Empty, "no temporary files left");
    }

    private async Task<string[]> SiloWorkers() =>
        await Task.WhenAll(_cluster.GetActiveSilos().Select(s => _cluster.Client.GetGrain<IWorkerGrain>(s.SiloAddress.ToParsableString()))
            .Select(async w => (await w.ShardsDone()).ToString(System.Globalization.CultureInfo.InvariantCulture)));

    [Test]
    public async Task Should_cut_a_job_into_shards_run_on_every_silo_and_write_each_image_exactly_once()
    {
        FakeProcessor.Current = new FakeProcessor { PerImage = TimeSpan.FromMilliseconds(3) };
        var output = TestData.TempFolder();

        var outcome = await ClusterJobs.RunAsync(_cluster.Client, Request(output, 250, 10));

        Assert.That(outcome.Status.Phase, Is.EqualTo(JobPhase.Completed));
        Assert.That(outcome.Status.ShardsDone, Is.EqualTo(25));
        Assert.That(outcome.Status.ImagesDone, Is.EqualTo(250));
        Assert.That(PartFiles.List(output), Has.Count.EqualTo(25));
        AssertEveryImageExactlyOnce(output, 250);
        Assert.That(await SiloWorkers(), Has.None.EqualTo("0"), "every silo's worker ran shards");
        Assert.That(JobManifest.Read(output)!.JobId, Is.EqualTo(outcome.JobId));
    }

    [Test]
    public async Task Should_run_the_shard_of_a_silo_that_stops_answering_and_is_killed_elsewhere()
    {
        var victim = _cluster.SecondarySilos[0];
        FakeProcessor.Current = new FakeProcessor { PerImage = TimeSpan.FromMilliseconds(15), HungSilo = victim.SiloAddress };
        var output = TestData.TempFolder();
        var killed = 0;
        var progress = new CallbackProgress<ClusterJobProgress>(p =>
        {
            if (p.Status.ImagesDone >= 60 && Interlocked.Exchange(ref killed, 1) == 0)
                _ = _cluster.KillSiloAsync(victim);
        });

        var outcome = await ClusterJobs.RunAsync(_cluster.Client, Request(output, 300, 10), progress);

        FakeProcessor.Current.Unhang();
        Assert.That(killed, Is.EqualTo(1));
        Assert.That(outcome.Status.Phase, Is.EqualTo(JobPhase.Completed));
        Assert.That(outcome.Status.Reassigned, Is.EqualTo(1), "membership declared the silo dead and its shard was taken back");
        Assert.That(FakeProcessor.Current.Started.Any(s => s.Attempt > 1), "a shard ran a second time");
        AssertEveryImageExactlyOnce(output, 300);
    }

    [Test]
    public async Task Should_release_the_shard_of_a_silo_that_is_stopped_and_finish_it_elsewhere()
    {
        FakeProcessor.Current = new FakeProcessor { PerImage = TimeSpan.FromMilliseconds(15) };
        var output = TestData.TempFolder();
        var victim = _cluster.SecondarySilos[0];
        var stopped = 0;
        var progress = new CallbackProgress<ClusterJobProgress>(p =>
        {
            if (p.Status.ImagesDone >= 60 && Interlocked.Exchange(ref stopped, 1) == 0)
                _ = _cluster.StopSiloAsync(victim);
        });

        var outcome = await ClusterJobs.RunAsync(_cluster.Client, Request(output, 300, 10), progress);

        Assert.That(outcome.Status.Phase, Is.EqualTo(JobPhase.Completed));
        Assert.That(FakeProcessor.Current.Cancelled, Is.Not.Empty, "the stopping silo stopped its running shard");
        var released = FakeProcessor.Current.Cancelled.Select(c => c.Shard).ToHashSet();
        Assert.That(FakeProcessor.Current.Finished.Where(f => released.Contains(f.Shard)).Select(f => f.Shard).Distinct().Count(), Is.EqualTo(released.Count),
            "each released shard was finished by another silo");
        AssertEveryImageExactlyOnce(output, 300);
    }

    [Test]
    public async Task Should_stop_workers_when_the_job_is_cancelled_and_resume_it_with_done_shards_kept()
    {
        FakeProcessor.Current = new FakeProcessor { PerImage = TimeSpan.FromMilliseconds(25) };
        var output = TestData.TempFolder();
        using var cancel = new CancellationTokenSource();
        var progress = new CallbackProgress<ClusterJobProgress>(p =>
        {
            if (p.Status.ImagesDone >= 60)
                cancel.Cancel();
        });

        Assert.That(async () => await ClusterJobs.RunAsync(_cluster.Client, Request(output, 300, 20), progress, cancel.Token),
            Throws.InstanceOf<OperationCanceledException>());
        await Task.Delay(TimeSpan.FromSeconds(1));
        var startedAfterCancel = FakeProcessor.Current.Started.Count;
        var finishedBeforeResume = FakeProcessor.Current.Finished.Select(f => f.Shard).ToHashSet();
        await Task.Delay(TimeSpan.FromSeconds(1));

        Assert.That(FakeProcessor.Current.Started, Has.Count.EqualTo(startedAfterCancel), "nothing is leased after a cancel");
        Assert.That(FakeProcessor.Current.Cancelled, Is.Not.Empty, "running workers were stopped mid-shard");
        Assert.That(finishedBeforeResume.Count, Is.InRange(3, 14));

        var resumed = await ClusterJobs.RunAsync(_cluster.Client, Request(output, 300, 20));

        Assert.That(resumed.Resumed);
        Assert.That(resumed.Status.Phase, Is.EqualTo(JobPhase.Completed));
        var rerun = FakeProcessor.Current.Finished.GroupBy(f => f.Shard).Where(g => g.Count() > 1).Select(g => g.Key);
        Assert.That(rerun.Intersect(finishedBeforeResume), Is.Empty, "shards done before the cancel were not run again");
        AssertEveryImageExactlyOnce(output, 300);
    }

    [Test]
    public async Task Should_attach_to_a_completed_job_without_running_it_again()
    {
        var output = TestData.TempFolder();
        var first = await ClusterJobs.RunAsync(_cluster.Client, Request(output, 50, 10));
        var runs = FakeProcessor.Current.Finished.Count;

        var again = await ClusterJobs.RunAsync(_cluster.Client, Request(output, 50, 10));

        Assert.That(again.JobId, Is.EqualTo(first.JobId));
        Assert.That(again.Resumed);
        Assert.That(FakeProcessor.Current.Finished, Has.Count.EqualTo(runs));
        AssertEveryImageExactlyOnce(output, 50);
    }

    [Test]
    public async Task Should_fail_the_job_with_the_workers_error_after_repeated_failures()
    {
        FakeProcessor.Current = new FakeProcessor { Failure = new IOException("No space left on device") };
        var output = TestData.TempFolder();

        var error = Assert.ThrowsAsync<InvalidOperationException>(async () => await ClusterJobs.RunAsync(_cluster.Client, Request(output, 30, 10)));

        Assert.That(error!.Message, Does.Contain("No space left on device").And.Contain("failed 3 times"));
    }

    [Test]
    public async Task Should_not_count_a_silo_that_cannot_be_reached_as_a_failure_of_the_shard()
    {
        // More cluster faults than MaxShardFailures (3), all on one shard at first: a job must survive them.
        FakeProcessor.Current = new FakeProcessor { ClusterFaults = 6 };
        var output = TestData.TempFolder();

        var outcome = await ClusterJobs.RunAsync(_cluster.Client, Request(output, 20, 10)).WaitAsync(TimeSpan.FromMinutes(2));

        Assert.That(outcome.Status.Phase, Is.EqualTo(JobPhase.Completed));
        Assert.That(FakeProcessor.Current.Started, Has.Count.GreaterThanOrEqualTo(8), "6 released attempts, then the 2 shards ran");
        AssertEveryImageExactlyOnce(output, 20);
    }

    [Test]
    public void Should_fail_the_job_with_one_line_when_the_cluster_stays_unreachable()
    {
        FakeProcessor.Current = new FakeProcessor { ClusterFaults = int.MaxValue };
        var output = TestData.TempFolder();

        var error = Assert.ThrowsAsync<InvalidOperationException>(async () =>
            await ClusterJobs.RunAsync(_cluster.Client, Request(output, 10, 10)).WaitAsync(TimeSpan.FromMinutes(2)));

        Assert.That(error!.Message, Does.Contain("could not run 20 times, the cluster did not answer").And.Contain("Unable to connect"));
        Assert.That(error.Message, Does.Not.Contain("\n"));
    }

    [Test]
    public void Should_refuse_an_output_folder_that_holds_another_jobs_parts()
    {
        var output = TestData.TempFolder();
        new JobManifest { JobId = "job-someone-else" }.Write(output);

        var error = Assert.ThrowsAsync<InvalidOperationException>(async () => await ClusterJobs.RunAsync(_cluster.Client, Request(output, 30, 10)));

        Assert.That(error!.Message, Does.Contain("another job").And.Contain("job-someone-else"));
    }
}
