namespace MLTransfer.Tests.TestSupport;

/// <summary>Folders shared by the tests of one run (a per-run bottleneck cache keeps the suite fast).</summary>
public static class Shared
{
    public static string CacheDir { get; } = TestData.TempFolder();
}
