using System.Runtime.InteropServices;
using Google.Protobuf;
using Onnx;
using TorchSharp;
using static TorchSharp.torch;

namespace MLTransfer.Torch.Onnx;

/// <summary>Converts between ONNX <see cref="TensorProto"/> initializers and TorchSharp tensors.</summary>
internal static class OnnxTensors
{
    private const int Float = (int)TensorProto.Types.DataType.Float;
    private const int Int64 = (int)TensorProto.Types.DataType.Int64;
    private const int Int32 = (int)TensorProto.Types.DataType.Int32;

    /// <summary>True when the initializer holds 32-bit floats.</summary>
    public static bool IsFloat(TensorProto proto) => proto.DataType == Float;

    /// <summary>Creates a CPU tensor holding a copy of the initializer's data.</summary>
    public static Tensor ToTensor(TensorProto proto)
    {
        long[] dims = proto.Dims.ToArray();
        switch (proto.DataType)
        {
            case Float:
                {
                    float[] data = proto.RawData.Length > 0
                        ? MemoryMarshal.Cast<byte, float>(proto.RawData.Span).ToArray()
                        : proto.FloatData.ToArray();
                    return torch.tensor(data, dims, ScalarType.Float32);
                }

            case Int64:
                {
                    long[] data = proto.RawData.Length > 0
                        ? MemoryMarshal.Cast<byte, long>(proto.RawData.Span).ToArray()
                        : proto.Int64Data.ToArray();
                    return torch.tensor(data, dims, ScalarType.Int64);
                }

            case Int32:
                {
                    int[] data = proto.RawData.Length > 0
                        ? MemoryMarshal.Cast<byte, int>(proto.RawData.Span).ToArray()
                        : proto.Int32Data.ToArray();
                    return torch.tensor(data, dims, ScalarType.Int32);
                }

            default:
                throw new NotSupportedException(
                    $"ONNX initializer '{proto.Name}' has data type {(TensorProto.Types.DataType)proto.DataType}; only float, int64 and int32 are supported.");
        }
    }

    /// <summary>Overwrites a float initializer's data with the values of <paramref name="tensor"/> (same element count), keeping its name and dims.</summary>
    public static void WriteFloats(TensorProto proto, Tensor tensor)
    {
        using var cpu = tensor.detach().cpu().contiguous().to_type(ScalarType.Float32);
        float[] values = cpu.data<float>().ToArray();
        long expected = proto.Dims.Aggregate(1L, (a, b) => a * b);
        if (values.LongLength != expected)
        {
            throw new InvalidOperationException(
                $"Initializer '{proto.Name}' holds {expected} values but the trained tensor has {values.LongLength}.");
        }

        proto.FloatData.Clear();
        proto.RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(values.AsSpan()));
    }

    /// <summary>Creates a float initializer named <paramref name="name"/> from <paramref name="tensor"/>.</summary>
    public static TensorProto FromFloatTensor(string name, Tensor tensor)
    {
        var proto = new TensorProto { Name = name, DataType = Float };
        proto.Dims.AddRange(tensor.shape);
        WriteFloats(proto, tensor);
        return proto;
    }
}
