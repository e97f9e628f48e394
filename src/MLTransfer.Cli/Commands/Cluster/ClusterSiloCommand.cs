using System.ComponentModel;
using System.Net;
using Microsoft.Extensions.Hosting;
using MLTransfer.Cluster.Hosting;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MLTransfer.Cli.Commands.Cluster;

/// <summary>
/// <c>mltransfer cluster silo --redis HOST:PORT [--threads N]</c>: runs one Orleans silo that works on featurise and
/// predict jobs until stopped; Ctrl-C (or SIGTERM) drains it: its running shard is given back, then it leaves the cluster.
/// </summary>
public sealed class ClusterSiloCommand : Command<ClusterSiloCommand.Settings>
{
    /// <summary>Arguments of <see cref="ClusterSiloCommand"/>.</summary>
    public sealed class Settings : CommonSettings
    {
        /// <summary>The Redis server.</summary>
        [CommandOption("--redis <HOST:PORT>")]
        [Description("Redis server holding cluster membership and job state, e.g. 10.0.0.5:6379.")]
        public string Redis { get; set; } = "";

        /// <summary>Cores for the engine.</summary>
        [CommandOption("--threads <N>")]
        [Description("Cores this silo's engine uses. Default: all of this machine's.")]
        public int? Threads { get; set; }

        /// <summary>Silo port.</summary>
        [CommandOption("--port <PORT>")]
        [Description("Port for silo-to-silo traffic. Default 11111.")]
        [DefaultValue(11111)]
        public int Port { get; set; } = 11111;

        /// <summary>Gateway port.</summary>
        [CommandOption("--gateway-port <PORT>")]
        [Description("Port clients connect to (0: no gateway). Default 30000.")]
        [DefaultValue(30000)]
        public int GatewayPort { get; set; } = 30000;

        /// <summary>Advertised address.</summary>
        [CommandOption("--host <IP>")]
        [Description("Address other nodes reach this silo at. Default: this machine's first address.")]
        public string? Host { get; set; }

        /// <summary>Cluster id.</summary>
        [CommandOption("--cluster-id <ID>")]
        [Description("Silos and clients with the same id and Redis form one cluster. Default mltransfer.")]
        [DefaultValue("mltransfer")]
        public string ClusterId { get; set; } = "mltransfer";

        /// <inheritdoc />
        public override ValidationResult Validate()
        {
            if (string.IsNullOrWhiteSpace(Redis))
                return ValidationResult.Error("--redis HOST:PORT is required.");
            if (Threads is < 1)
                return ValidationResult.Error("--threads must be at least 1.");
            if (Port is < 1 or > 65535 || GatewayPort is < 0 or > 65535)
                return ValidationResult.Error("--port and --gateway-port must be valid ports.");
            if (Host is not null && !IPAddress.TryParse(Host, out _))
                return ValidationResult.Error($"--host '{Host}' is not an IP address.");
            return ValidationResult.Success();
        }
    }

    /// <inheritdoc />
    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        ClusterHost.CheckRedisAsync(settings.Redis).GetAwaiter().GetResult();
        var options = new ClusterSiloOptions
        {
            Redis = settings.Redis,
            ClusterId = settings.ClusterId,
            SiloPort = settings.Port,
            GatewayPort = settings.GatewayPort,
            AdvertisedAddress = settings.Host is null ? null : IPAddress.Parse(settings.Host),
            Worker = new WorkerOptions { Threads = settings.Threads ?? Environment.ProcessorCount },
        };
        using var host = ClusterHost.BuildSilo(options);
        host.Start();
        AnsiConsole.MarkupLineInterpolated(
            $"[green]Silo up[/] on port {settings.Port} (gateway {settings.GatewayPort}), cluster '{settings.ClusterId}' at Redis {settings.Redis}, {options.Worker.Threads} core(s). Ctrl-C drains and stops.");
        host.WaitForShutdownAsync(cancellationToken).GetAwaiter().GetResult();
        AnsiConsole.MarkupLine("Silo stopped.");
        return 0;
    }
}
