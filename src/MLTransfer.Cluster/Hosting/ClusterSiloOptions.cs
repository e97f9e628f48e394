using System.Net;

namespace MLTransfer.Cluster.Hosting;

/// <summary>Options of one MLTransfer silo.</summary>
public sealed class ClusterSiloOptions
{
    /// <summary>The Redis server (<c>host:port</c>, any StackExchange.Redis configuration string) holding membership and job state. Required.</summary>
    public string Redis { get; set; } = "";

    /// <summary>Orleans cluster id: silos and clients with the same id and Redis form one cluster. The default value is <c>mltransfer</c>.</summary>
    public string ClusterId { get; set; } = "mltransfer";

    /// <summary>Orleans service id (prefix of the Redis keys). The default value is <c>mltransfer</c>.</summary>
    public string ServiceId { get; set; } = "mltransfer";

    /// <summary>Port for silo-to-silo traffic. The default value is 11111.</summary>
    public int SiloPort { get; set; } = 11111;

    /// <summary>Port clients connect to; 0 means no gateway on this silo. The default value is 30000.</summary>
    public int GatewayPort { get; set; } = 30000;

    /// <summary>The address other nodes reach this silo at; null means Orleans' choice (this host's first address). The default value is null.</summary>
    public IPAddress? AdvertisedAddress { get; set; }

    /// <summary>
    /// How long a probe of another silo may take; a silo missing <see cref="MissedProbesLimit"/> probes in a row is voted
    /// dead. The default value is 2 seconds (Orleans' own default is 5).
    /// </summary>
    public TimeSpan ProbeTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Missed probes after which a silo is suspected. The default value is 3.</summary>
    public int MissedProbesLimit { get; set; } = 3;

    /// <summary>How the silo works on shards.</summary>
    public WorkerOptions Worker { get; set; } = new();
}
