using MLTransfer.Tests.TestSupport;
using NUnit.Framework;

namespace MLTransfer.Tests;

/// <summary>Deletes the run's scratch folders (models, graphs, checkpoints of tens of MB each) when all tests are done.</summary>
[SetUpFixture]
public sealed class TestRunCleanup
{
    [OneTimeTearDown]
    public void DeleteScratchFolders() => TestData.DeleteRunRoot();
}
