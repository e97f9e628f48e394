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
        foreach (var line in File.ReadLines(file))
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
