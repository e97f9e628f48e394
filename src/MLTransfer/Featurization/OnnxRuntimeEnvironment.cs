using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;

namespace MLTransfer.Featurization;

/// <summary>
/// Sets up the process-wide ONNX Runtime environment the way an offline tool needs it, before anything else creates it:
/// telemetry off (ONNX Runtime 1.2x+ on Linux and macOS otherwise keeps a device id under <c>~/.cache</c>, a session file
/// in <c>$TMPDIR</c> and an upload queue), and its log messages (warnings and errors) passed as plain one-line text, without
/// the terminal colour codes its own logger prints, to a sink the application chooses.
/// </summary>
/// <remarks>
/// ONNX Runtime reads <c>ORT_DISABLE_TELEMETRY</c> once, when its environment is created, so <see cref="Configure"/> must run
/// before the first session (the MLTransfer CLI calls it first thing). Library entry points call <see cref="EnsureConfigured"/>,
/// which does the same with the default sink when nothing has created the environment yet. A value of
/// <c>ORT_DISABLE_TELEMETRY</c> already set by the user is kept.
/// </remarks>
public static class OnnxRuntimeEnvironment
{
    private static readonly Lock Gate = new();
    private static Action<string> _sink = line => Console.Error.WriteLine(line);
    private static DOrtLoggingFunction? _callback;

    /// <summary>Whether this class created the ONNX Runtime environment (with telemetry off and plain logging).</summary>
    public static bool IsConfigured { get; private set; }

    /// <summary>
    /// Creates the ONNX Runtime environment with telemetry off and warnings passed to <paramref name="sink"/> as
    /// <c>onnxruntime warning: ...</c> lines. Returns false (and changes nothing) when the environment already exists.
    /// </summary>
    /// <param name="sink">Receives each log line; null means standard error.</param>
    public static bool Configure(Action<string>? sink = null)
    {
        lock (Gate)
        {
            if (sink is not null)
                _sink = sink;
            if (IsConfigured || OrtEnv.IsCreated)
                return false;
            if (Environment.GetEnvironmentVariable("ORT_DISABLE_TELEMETRY") is null)
            {
                Environment.SetEnvironmentVariable("ORT_DISABLE_TELEMETRY", "1");
                if (!OperatingSystem.IsWindows())
                    _ = NativeSetEnvironment("ORT_DISABLE_TELEMETRY", "1", 0);
            }
            _callback = Log;
            var options = new EnvironmentCreationOptions
            {
                logId = "mltransfer",
                logLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_WARNING,
                loggingFunction = _callback,
            };
            var environment = OrtEnv.CreateInstanceWithOptions(ref options);
            environment.DisableTelemetryEvents();
            IsConfigured = true;
            return true;
        }
    }

    /// <summary>Runs <see cref="Configure"/> with the current sink unless the environment already exists.</summary>
    public static void EnsureConfigured()
    {
        if (!IsConfigured && !OrtEnv.IsCreated)
            Configure();
    }

    /// <summary>One log message as the plain line passed to the sink.</summary>
    /// <param name="severity">ONNX Runtime's severity.</param>
    /// <param name="message">The message.</param>
    public static string Format(OrtLoggingLevel severity, string message)
    {
        var level = severity switch
        {
            OrtLoggingLevel.ORT_LOGGING_LEVEL_VERBOSE => "verbose",
            OrtLoggingLevel.ORT_LOGGING_LEVEL_INFO => "info",
            OrtLoggingLevel.ORT_LOGGING_LEVEL_WARNING => "warning",
            OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR => "error",
            _ => "fatal",
        };
        var text = (message ?? "").ReplaceLineEndings(" ").Trim();
        var plain = new System.Text.StringBuilder(text.Length);
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] == '\u001b')
            {
                while (i < text.Length && !char.IsAsciiLetter(text[i]))
                    i++;
                continue;
            }
            plain.Append(text[i]);
        }
        return $"onnxruntime {level}: {plain}";
    }

    private static void Log(IntPtr param, OrtLoggingLevel severity, string category, string logId, string codeLocation, string message)
    {
        try
        {
            _sink(Format(severity, message));
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            // A closed standard error must not take the native caller down.
        }
    }

    [DllImport("libc", EntryPoint = "setenv", CharSet = CharSet.Ansi)]
#pragma warning disable CA2101, SYSLIB1054
    private static extern int NativeSetEnvironment(string name, string value, int overwrite);
#pragma warning restore CA2101, SYSLIB1054
}
