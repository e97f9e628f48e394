using MLTransfer.Tests.TestSupport;
using NUnit.Framework;

namespace MLTransfer.Tests;

/// <summary>Deletes the run's scratch folders (models and fused graphs of tens of MB each) when all tests are done.</summary>
[SetUpFixture]
public sealed class TestRunCleanup
{
    [OneTimeTearDown]
    public void DeleteScratchFolders()
    {
        try
        {
            if (Directory.Exists(TestData.RunRoot))
                Directory.Delete(TestData.RunRoot, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
