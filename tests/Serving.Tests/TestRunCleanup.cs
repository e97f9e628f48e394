using MLTransfer.Tests.TestSupport;
using NUnit.Framework;

namespace MLTransfer.Serving.Tests;

/// <summary>Deletes the run's scratch folders (the test models) when all tests are done.</summary>
[SetUpFixture]
public sealed class TestRunCleanup
{
    [OneTimeTearDown]
    public void DeleteScratchFolders() => TestData.DeleteRunRoot();
}
