using NUnit.Framework;

namespace MLTransfer.Torch.Tests;

/// <summary>Deletes the run's scratch folders (models, graphs, checkpoints) when all tests are done.</summary>
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
