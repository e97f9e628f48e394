using Microsoft.ML;
using NUnit.Framework;

namespace MLTransfer.Tests;

public class SmokeTests
{
    [Test]
    public void Should_return_catalog_bound_to_context()
    {
        var ml = new MLContext(seed: 1);
        Assert.That(ml.Transfer().Context, Is.SameAs(ml));
    }
}
