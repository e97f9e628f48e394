namespace MLTransfer.Tests.TestSupport;

/// <summary>
/// A thread that runs the garbage collector and the finalizers in a loop until disposed: it makes races between
/// finalizers and native code (TorchSharp's short-lived Scalars) likely enough to test for.
/// </summary>
public sealed class GarbageCollectorPressure : IDisposable
{
    private readonly Thread _thread;
    private volatile bool _stop;

    public GarbageCollectorPressure()
    {
        _thread = new Thread(() =>
        {
            while (!_stop)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
            }
        }) { IsBackground = true, Name = "GC pressure" };
        _thread.Start();
    }

    public void Dispose()
    {
        _stop = true;
        _thread.Join();
    }
}
