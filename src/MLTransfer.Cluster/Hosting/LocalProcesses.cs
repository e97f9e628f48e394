using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;

namespace MLTransfer.Cluster.Hosting;

/// <summary>
/// Child processes of a cluster on one box (benchmarks, tests): a loopback <c>redis-server</c> and <c>mltransfer cluster
/// silo</c> processes. Disposing kills every process still running and deletes the Redis folder.
/// </summary>
public sealed class LocalProcesses : IDisposable
{
    private readonly List<Process> _processes = [];
    private readonly List<string> _folders = [];

    /// <summary>Starts <c>redis-server</c> on 127.0.0.1:<paramref name="port"/> without persistence, and waits until it answers.</summary>
    /// <param name="port">The port.</param>
    /// <returns>The address, <c>127.0.0.1:port</c>.</returns>
    /// <exception cref="InvalidOperationException">redis-server is not installed or does not start.</exception>
    public string StartRedis(int port)
    {
        var folder = Path.Combine(Path.GetTempPath(), $"mltransfer-redis-{port}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(folder);
        _folders.Add(folder);
        var info = new ProcessStartInfo("redis-server")
        {
            ArgumentList = { "--port", port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", folder },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        Process redis;
        try
        {
            redis = Start(info);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException("redis-server is not installed (Debian: apt-get install redis-server).", e);
        }
        var address = $"127.0.0.1:{port}";
        WaitForPort(port, redis, TimeSpan.FromSeconds(10), "redis-server");
        return address;
    }

    /// <summary>Starts a silo process: <paramref name="cli"/> with <c>cluster silo</c> arguments, logging to a file.</summary>
    /// <param name="cli">How to run the <c>mltransfer</c> tool: the program and its leading arguments (e.g. <c>dotnet</c>, <c>MLTransfer.Cli.dll</c>).</param>
    /// <param name="redis">The Redis address.</param>
    /// <param name="siloPort">Silo port.</param>
    /// <param name="gatewayPort">Gateway port.</param>
    /// <param name="threads">Engine cores.</param>
    /// <param name="cpus">CPUs the process may run on (affinity bit mask); 0 means any.</param>
    /// <param name="log">File receiving the silo's output.</param>
    public Process StartSilo(IReadOnlyList<string> cli, string redis, int siloPort, int gatewayPort, int threads, long cpus, string log)
    {
        ArgumentNullException.ThrowIfNull(cli);
        var info = new ProcessStartInfo(cli[0]) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in cli.Skip(1))
            info.ArgumentList.Add(argument);
        foreach (var argument in new[]
                 {
                     "cluster", "silo", "--redis", redis, "--host", "127.0.0.1", "--port", siloPort.ToString(CultureInfo.InvariantCulture),
                     "--gateway-port", gatewayPort.ToString(CultureInfo.InvariantCulture), "--threads", threads.ToString(CultureInfo.InvariantCulture),
                 })
            info.ArgumentList.Add(argument);
        info.Environment["DOTNET_gcServer"] = "0";
        var silo = Start(info, log);
        if (cpus != 0 && (OperatingSystem.IsLinux() || OperatingSystem.IsWindows()))
            silo.ProcessorAffinity = (nint)cpus;
        WaitForPort(gatewayPort > 0 ? gatewayPort : siloPort, silo, TimeSpan.FromSeconds(60), "silo");
        return silo;
    }

    /// <summary>How to run this build's <c>mltransfer</c>: the CLI assembly next to <paramref name="folder"/> through the <c>dotnet</c> host.</summary>
    /// <param name="folder">A folder holding <c>MLTransfer.Cli.dll</c>.</param>
    public static IReadOnlyList<string> CliIn(string folder)
    {
        var dll = Path.Combine(folder, "MLTransfer.Cli.dll");
        if (!File.Exists(dll))
            throw new FileNotFoundException($"'{dll}' does not exist.", dll);
        var dotnet = Environment.ProcessPath is { } self && Path.GetFileNameWithoutExtension(self) == "dotnet" ? self : "dotnet";
        return [dotnet, dll];
    }

    /// <summary>Kills a process and its children at once (SIGKILL), as a crashed node.</summary>
    /// <param name="process">The process.</param>
    public static void Kill(Process process)
    {
        ArgumentNullException.ThrowIfNull(process);
        try
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit(10_000);
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }

    /// <summary>Stops a process with SIGINT-like grace: SIGTERM, then waits.</summary>
    /// <param name="process">The process.</param>
    /// <param name="timeout">How long to wait before killing it.</param>
    public static void Stop(Process process, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(process);
        if (process.HasExited)
            return;
        using (var term = Process.Start("kill", ["-TERM", process.Id.ToString(CultureInfo.InvariantCulture)]))
            term.WaitForExit();
        if (!process.WaitForExit(timeout))
            Kill(process);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var process in _processes)
        {
            Kill(process);
            process.Dispose();
        }
        _processes.Clear();
        foreach (var folder in _folders)
        {
            try
            {
                Directory.Delete(folder, recursive: true);
            }
            catch (IOException)
            {
                // Redis may still be writing its last file.
            }
        }
    }

    private Process Start(ProcessStartInfo info, string? log = null)
    {
        var process = Process.Start(info) ?? throw new InvalidOperationException($"Could not start {info.FileName}.");
        _processes.Add(process);
        var writer = log is null ? null : TextWriter.Synchronized(new StreamWriter(log, append: true) { AutoFlush = true });
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) writer?.WriteLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) writer?.WriteLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static void WaitForPort(int port, Process process, TimeSpan timeout, string what)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < timeout)
        {
            if (process.HasExited)
                throw new InvalidOperationException($"{what} exited with code {process.ExitCode} before listening on port {port}.");
            try
            {
                using var socket = new TcpClient();
                socket.Connect("127.0.0.1", port);
                return;
            }
            catch (SocketException)
            {
                Thread.Sleep(100);
            }
        }
        throw new InvalidOperationException($"{what} did not listen on port {port} within {timeout.TotalSeconds:0} s.");
    }
}
