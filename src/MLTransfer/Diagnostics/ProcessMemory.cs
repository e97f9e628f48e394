using System.Diagnostics;
using System.Globalization;

namespace MLTransfer.Diagnostics;

/// <summary>Resident memory of the current process and machine load, for benchmarks.</summary>
public static class ProcessMemory
{
    private const string StatusFile = "/proc/self/status";
    private const string ClearRefsFile = "/proc/self/clear_refs";

    /// <summary>Current resident set size in bytes (<c>VmRSS</c> on Linux, the working set elsewhere).</summary>
    public static long CurrentRssBytes() => ReadStatus("VmRSS:") ?? Refreshed().WorkingSet64;

    /// <summary>Current resident set size of another process in bytes (<c>VmRSS</c> on Linux, the working set elsewhere).</summary>
    /// <param name="processId">The process.</param>
    public static long CurrentRssBytes(int processId) =>
        ReadStatus("VmRSS:", $"/proc/{processId}/status") ?? Refreshed(Process.GetProcessById(processId)).WorkingSet64;

    /// <summary>Peak resident set size in bytes since the process started or since the last successful <see cref="TryResetPeak"/>
    /// (<c>VmHWM</c> on Linux, <see cref="Process.PeakWorkingSet64"/> elsewhere).</summary>
    public static long PeakRssBytes() => ReadStatus("VmHWM:") ?? Refreshed().PeakWorkingSet64;

    /// <summary>
    /// Resets the peak resident set size to the current one (Linux: writes <c>5</c> to <c>/proc/self/clear_refs</c>),
    /// so that phases of one run can be measured separately.
    /// </summary>
    /// <returns>False where the platform does not allow it; the peak then covers the whole process.</returns>
    public static bool TryResetPeak()
    {
        if (!OperatingSystem.IsLinux() || !File.Exists(ClearRefsFile))
            return false;
        try
        {
            File.WriteAllText(ClearRefsFile, "5");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>The one-minute load average of the machine (Linux <c>/proc/loadavg</c>); null elsewhere.</summary>
    /// <remarks>On a shared machine a load above the core count means benchmark timings are inflated by other processes.</remarks>
    public static double? LoadAverage()
    {
        const string path = "/proc/loadavg";
        if (!OperatingSystem.IsLinux() || !File.Exists(path))
            return null;
        var first = File.ReadAllText(path).Split(' ', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault();
        return double.TryParse(first, NumberStyles.Float, CultureInfo.InvariantCulture, out var load) ? load : null;
    }

    /// <summary>
    /// Runs a program to its end and measures its peak resident set size by sampling <c>VmHWM</c> of the child (Linux; the
    /// child's <see cref="Process.PeakWorkingSet64"/> elsewhere) a few times a second; the child's output goes to <paramref name="output"/>.
    /// </summary>
    /// <param name="fileName">The program.</param>
    /// <param name="arguments">Its arguments.</param>
    /// <param name="output">Receives the child's standard output and error lines; may be null.</param>
    /// <returns>The exit code, the peak resident set size in bytes and the wall time.</returns>
    public static (int ExitCode, long PeakRssBytes, TimeSpan Wall) RunMeasured(string fileName, IEnumerable<string> arguments, Action<string>? output = null)
    {
        var start = new ProcessStartInfo(fileName) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments)
            start.ArgumentList.Add(argument);
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {fileName}.");
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) output?.Invoke(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) output?.Invoke(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        long peak = 0;
        var status = $"/proc/{process.Id}/status";
        while (!process.WaitForExit(200))
            peak = Math.Max(peak, ReadStatus("VmHWM:", status) ?? SafePeak(process));
        process.WaitForExit();
        return (process.ExitCode, peak, clock.Elapsed);
    }

    private static long SafePeak(Process process)
    {
        try
        {
            process.Refresh();
            return process.PeakWorkingSet64;
        }
        catch (InvalidOperationException)
        {
            return 0;
        }
    }

    private static Process Refreshed(Process? process = null)
    {
        process ??= Process.GetCurrentProcess();
        process.Refresh();
        return process;
    }

    private static long? ReadStatus(string key, string file = StatusFile)
    {
        if (!OperatingSystem.IsLinux() || !File.Exists(file))
            return null;
        string[] lines;
        try
        {
            lines = File.ReadAllLines(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null; // the process has just exited
        }
        foreach (var line in lines)
        {
            if (!line.StartsWith(key, StringComparison.Ordinal))
                continue;
            var parts = line[key.Length..].Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length >= 1 && long.TryParse(parts[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out var kib))
                return kib * 1024;
        }
        return null;
    }
}
