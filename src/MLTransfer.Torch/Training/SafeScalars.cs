using TorchSharp;
using static TorchSharp.torch;

namespace MLTransfer.Torch.Training;

/// <summary>
/// Tensor arithmetic with .NET numbers that keeps each libtorch <see cref="Scalar"/> alive until the native call has
/// returned. TorchSharp 0.107 turns a <c>double</c> operand into a <see cref="Scalar"/> whose only owner is the garbage
/// collector, which can free it on the finalizer thread while libtorch is still reading it: the run then fails at random
/// with "Expected false to be true … toFloat" inside an optimiser step (dotnet/TorchSharp#1434, #1496). Every step of
/// MLTransfer's training code goes through these helpers instead (and through <see cref="TrainingOptimizer"/>).
/// </summary>
internal static class SafeScalars
{
    // TorchSharp's tensor + tensor passes an implicit alpha of 1; this one is rooted for the life of the process, so never finalised.
    private static readonly Scalar One = 1.ToScalar();

    /// <summary><paramref name="x"/> + <paramref name="y"/> (TorchSharp's <c>+</c> creates a short-lived Scalar for its alpha).</summary>
    public static Tensor Plus(this Tensor x, Tensor y) => x.add(y, One);

    /// <summary>In place: <paramref name="x"/> ← <paramref name="x"/> + <paramref name="y"/>.</summary>
    public static Tensor PlusInPlace(this Tensor x, Tensor y) => x.add_(y, One);

    /// <summary><paramref name="x"/> · <paramref name="factor"/>.</summary>
    public static Tensor Times(this Tensor x, double factor)
    {
        using var s = factor.ToScalar();
        return x.mul(s);
    }

    /// <summary><paramref name="x"/> + <paramref name="value"/>.</summary>
    public static Tensor Plus(this Tensor x, double value)
    {
        using var s = value.ToScalar();
        return x.add(s, One);
    }

    /// <summary><paramref name="x"/> / <paramref name="divisor"/>.</summary>
    public static Tensor DividedBy(this Tensor x, double divisor)
    {
        using var s = divisor.ToScalar();
        return x.div(s);
    }

    /// <summary><paramref name="x"/> raised to <paramref name="exponent"/>.</summary>
    public static Tensor Power(this Tensor x, double exponent)
    {
        using var s = exponent.ToScalar();
        return x.pow(s);
    }

    /// <summary>max(<paramref name="x"/>, <paramref name="minimum"/>) element-wise.</summary>
    public static Tensor AtLeast(this Tensor x, double minimum)
    {
        using var s = minimum.ToScalar();
        return x.clamp_min(s);
    }

    /// <summary>In place: <paramref name="x"/> ← <paramref name="x"/> · <paramref name="factor"/>.</summary>
    public static Tensor ScaleInPlace(this Tensor x, double factor)
    {
        using var s = factor.ToScalar();
        return x.mul_(s);
    }

    /// <summary>In place: <paramref name="x"/> ← <paramref name="x"/> + <paramref name="alpha"/> · <paramref name="other"/>.</summary>
    public static Tensor AddScaledInPlace(this Tensor x, Tensor other, double alpha)
    {
        using var s = alpha.ToScalar();
        return x.add_(other, s);
    }

    /// <summary>In place: <paramref name="x"/> ← <paramref name="x"/> + <paramref name="value"/> · <paramref name="a"/> · <paramref name="b"/>.</summary>
    public static Tensor AddProductInPlace(this Tensor x, Tensor a, Tensor b, double value)
    {
        using var s = value.ToScalar();
        return x.addcmul_(a, b, s);
    }

    /// <summary>In place: <paramref name="x"/> ← <paramref name="x"/> + <paramref name="value"/> · <paramref name="a"/> / <paramref name="b"/>.</summary>
    public static Tensor AddQuotientInPlace(this Tensor x, Tensor a, Tensor b, double value)
    {
        using var s = value.ToScalar();
        return x.addcdiv_(a, b, s);
    }

    /// <summary>In place: <paramref name="x"/> ← <paramref name="x"/> + <paramref name="value"/>.</summary>
    public static Tensor PlusInPlace(this Tensor x, double value)
    {
        using var s = value.ToScalar();
        return x.add_(s, One);
    }
}
