namespace MLTransfer.Torch.FineTuning;

/// <summary>The optimiser that fine-tuning uses.</summary>
public enum FineTuningOptimizer
{
    /// <summary>Stochastic gradient descent with momentum 0.9 (Nesterov off); weight decay is L2 added to the gradient.</summary>
    SgdMomentum,

    /// <summary>Adam with decoupled weight decay (Loshchilov &amp; Hutter 2019, "Decoupled Weight Decay Regularization").</summary>
    AdamW,
}

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
}

/// <summary>What BatchNormalization layers do while the backbone trains.</summary>
public enum BatchNormMode
{
    /// <summary>Normalise with the statistics of each batch and update the running statistics (the usual training behaviour).</summary>
    Train,

    /// <summary>Keep normalising with the pretrained running statistics (scale and bias still train): steadier with small batches.</summary>
    Frozen,
}

/// <summary>Which part of the network a training epoch updates.</summary>
public enum FineTuningPhase
{
    /// <summary>Only the new classification head (the backbone is frozen): the first epochs of gradual unfreezing.</summary>
    HeadOnly,

    /// <summary>The whole network, with per-layer learning rates.</summary>
    WholeNetwork,

    /// <summary>The top blocks and the head, on cached outputs of the frozen lower blocks.</summary>
    TopBlocks,
}
