namespace MLTransfer.Torch.Training;

/// <summary>How the learning rate moves during each training phase.</summary>
public enum LearningRateSchedule
{
    /// <summary>
    /// One-cycle (Smith 2018, "A disciplined approach to neural network hyper-parameters"): a cosine rise from
    /// LearningRate/25 to LearningRate over the warm-up, then a cosine decay to LearningRate/10⁴.
    /// </summary>
    OneCycle,

    /// <summary>A linear rise from 0 to LearningRate over the warm-up, then a cosine decay to 0 (Loshchilov &amp; Hutter 2017, SGDR; Goyal et al. 2017 for the warm-up).</summary>
    CosineWithWarmup,

    /// <summary>The same rate throughout.</summary>
    Constant,

    /// <summary>The annealing of Ganin et al. 2016 ("Domain-Adversarial Training of Neural Networks"): LearningRate/(1+10p)^0.75 at progress p ∈ [0, 1] through the phase.</summary>
    InverseDecay,
}

/// <summary>The learning-rate multipliers of <see cref="LearningRateSchedule"/>, as a function of progress through a phase.</summary>
internal static class LearningRateSchedules
{
    /// <summary>Returns the multiplier of the peak learning rate at step <paramref name="step"/> of <paramref name="totalSteps"/>.</summary>
    /// <param name="schedule">The schedule.</param>
    /// <param name="step">The step, from 0.</param>
    /// <param name="totalSteps">The steps in the phase.</param>
    /// <param name="warmupSteps">The warm-up steps (capped at half the phase).</param>
    public static double Multiplier(LearningRateSchedule schedule, long step, long totalSteps, long warmupSteps)
    {
        totalSteps = Math.Max(1, totalSteps);
        warmupSteps = Math.Clamp(warmupSteps, 0, totalSteps / 2);
        step = Math.Clamp(step, 0, totalSteps - 1);
        switch (schedule)
        {
            case LearningRateSchedule.OneCycle:
                {
                    const double start = 1.0 / 25;
                    const double end = 1.0 / 1e4;
                    if (step < warmupSteps)
                    {
                        return Cosine(start, 1.0, (double)step / warmupSteps);
                    }

                    long decaySteps = Math.Max(1, totalSteps - warmupSteps - 1);
                    return Cosine(1.0, end, (double)(step - warmupSteps) / decaySteps);
                }

            case LearningRateSchedule.CosineWithWarmup:
                {
                    if (step < warmupSteps)
                    {
                        return (step + 1.0) / (warmupSteps + 1.0);
                    }

                    long decaySteps = Math.Max(1, totalSteps - warmupSteps);
                    return Cosine(1.0, 0.0, (double)(step - warmupSteps) / decaySteps);
                }

            case LearningRateSchedule.Constant:
                return 1;

            case LearningRateSchedule.InverseDecay:
                return Math.Pow(1 + (10.0 * step / totalSteps), -0.75);

            default:
                throw new ArgumentOutOfRangeException(nameof(schedule), schedule, null);
        }
    }

    /// <summary>Cosine interpolation from <paramref name="from"/> (t = 0) to <paramref name="to"/> (t = 1).</summary>
    private static double Cosine(double from, double to, double t) => to + ((from - to) * (1 + Math.Cos(Math.PI * Math.Clamp(t, 0, 1))) / 2);
}
