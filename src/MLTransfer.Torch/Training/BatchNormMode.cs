namespace MLTransfer.Torch.Training;

/// <summary>What the backbone's BatchNormalization layers do while it trains (fine-tuning and multi-task fine-tuning).</summary>
public enum BatchNormMode
{
    /// <summary>Normalise with the statistics of each batch and update the running statistics (the usual training behaviour).</summary>
    Train,

    /// <summary>Keep normalising with the pretrained running statistics (scale and bias still train): steadier with small batches, and the features seen in training match the exported model's.</summary>
    Frozen,
}
