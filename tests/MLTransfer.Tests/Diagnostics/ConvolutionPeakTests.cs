using MLTransfer.Diagnostics;
using NUnit.Framework;

namespace MLTransfer.Tests.Diagnostics;

public class ConvolutionPeakTests
{
    [Test]
    public void Should_measure_a_rate_one_core_can_physically_reach()
    {
        // Physical bounds, not this code's numbers: any x86-64 core of the last decade does more than 1 GFLOP/s on a
        // convolution, and none does more than two 512-bit FMA units allow (2 × 16 lanes × 2 FLOP per cycle) at 6 GHz.
        const double UpperBound = 2 * 16 * 2 * 6.0;
        var gflops = ConvolutionPeak.MeasureGflopsPerCore(seconds: 0.3);
        TestContext.Out.WriteLine($"{gflops:0.0} GFLOP/s on one core");
        Assert.That(gflops, Is.GreaterThan(1).And.LessThan(UpperBound));
    }
}
