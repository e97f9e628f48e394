using System.Buffers;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Net.Http.Headers;

namespace MLTransfer.Serving;

/// <summary>
/// Reads the image of a <c>POST /predict</c> request into pooled memory: the multipart field <c>image</c>, or else the raw body.
/// Nothing is written to disk, and no more than the size limit is ever read.
/// </summary>
public static class ImageUpload
{
    /// <summary>The multipart form field that carries the image.</summary>
    public const string FieldName = "image";

    /// <summary>Reads the request's image, or says why it cannot (400 or 413 as a problem result).</summary>
    /// <param name="request">The request.</param>
    /// <param name="limit">Largest accepted body in bytes.</param>
    /// <param name="cancellationToken">The request's cancellation.</param>
    public static async Task<(PooledBytes? Image, IResult? Error)> ReadAsync(HttpRequest request, long limit, CancellationToken cancellationToken)
    {
        if (request.ContentLength > limit)
            return (null, TooLarge(limit));
        var body = new LimitedStream(request.Body, limit);
        try
        {
            if (MediaTypeHeaderValue.TryParse(request.ContentType, out var type) && type.MediaType.Equals("multipart/form-data", StringComparison.OrdinalIgnoreCase))
                return await ReadFormFieldAsync(type, body, limit, cancellationToken);
            var bytes = await PooledBytes.ReadAsync(body, request.ContentLength, cancellationToken);
            if (bytes.Length > 0)
                return (bytes, null);
            bytes.Dispose();
            return (null, BadRequest("Empty body", $"Send the image as the request body or as the multipart form field '{FieldName}'."));
        }
        catch (RequestTooLargeException)
        {
            return (null, TooLarge(limit));
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return (null, TooLarge(limit));
        }
        catch (BadHttpRequestException e)
        {
            return (null, BadRequest("Bad request", e.Message));
        }
        catch (InvalidDataException e)
        {
            return (null, BadRequest("Malformed form", e.Message));
        }
    }

    private static async Task<(PooledBytes? Image, IResult? Error)> ReadFormFieldAsync(MediaTypeHeaderValue type, Stream body, long limit, CancellationToken cancellationToken)
    {
        var boundary = HeaderUtilities.RemoveQuotes(type.Boundary).Value;
        if (string.IsNullOrEmpty(boundary))
            return (null, BadRequest("Malformed form", "The multipart/form-data content type has no boundary."));
        var reader = new MultipartReader(boundary, body) { BodyLengthLimit = limit };
        while (await reader.ReadNextSectionAsync(cancellationToken) is { } section)
        {
            if (ContentDispositionHeaderValue.TryParse(section.ContentDisposition, out var disposition)
                && HeaderUtilities.RemoveQuotes(disposition.Name).Equals(FieldName, StringComparison.Ordinal))
            {
                var bytes = await PooledBytes.ReadAsync(section.Body, null, cancellationToken);
                if (bytes.Length > 0)
                    return (bytes, null);
                bytes.Dispose();
                return (null, BadRequest("Empty image", $"The form field '{FieldName}' is empty."));
            }
            await section.Body.CopyToAsync(Stream.Null, cancellationToken);
        }
        return (null, BadRequest("No image", $"The form has no field '{FieldName}'."));
    }

    private static IResult TooLarge(long limit) =>
        Results.Problem(statusCode: StatusCodes.Status413PayloadTooLarge, title: "Upload too large",
            detail: $"The request is over the limit of {limit:N0} bytes ({limit / 1048576.0:0.##} MiB; set --max-request-mb).");

    /// <summary>A 400 problem result.</summary>
    /// <param name="title">A short title.</param>
    /// <param name="detail">The one-line reason.</param>
    public static IResult BadRequest(string title, string detail) =>
        Results.Problem(statusCode: StatusCodes.Status400BadRequest, title: title, detail: detail);

    private sealed class RequestTooLargeException : IOException;

    /// <summary>Reads at most <c>limit</c> bytes of a stream, then throws; Kestrel does the same, TestServer and chunked bodies need it.</summary>
    private sealed class LimitedStream(Stream inner, long limit) : Stream
    {
        private long _read;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => _read; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Count(inner.Read(buffer, offset, count));

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            Count(await inner.ReadAsync(buffer, cancellationToken));

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        private int Count(int read)
        {
            _read += read;
            return _read > limit ? throw new RequestTooLargeException() : read;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}

/// <summary>Bytes held in a buffer rented from <see cref="ArrayPool{T}.Shared"/>, returned on dispose.</summary>
public sealed class PooledBytes : IDisposable
{
    private byte[]? _buffer;

    private PooledBytes(byte[] buffer, int length)
    {
        _buffer = buffer;
        Length = length;
    }

    /// <summary>How many bytes were read.</summary>
    public int Length { get; }

    /// <summary>The bytes.</summary>
    public ReadOnlyMemory<byte> Memory => (_buffer ?? throw new ObjectDisposedException(nameof(PooledBytes))).AsMemory(0, Length);

    /// <summary>Reads a stream to its end.</summary>
    /// <param name="stream">The stream (its own limits apply).</param>
    /// <param name="expectedLength">The announced length, to size the first buffer; null when unknown.</param>
    /// <param name="cancellationToken">Cancels the read.</param>
    public static async Task<PooledBytes> ReadAsync(Stream stream, long? expectedLength, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent((int)Math.Clamp(expectedLength + 1 ?? 1 << 16, 1 << 12, 1 << 26));
        var length = 0;
        try
        {
            int read;
            while ((read = await stream.ReadAsync(buffer.AsMemory(length), cancellationToken)) > 0)
            {
                length += read;
                if (length < buffer.Length)
                    continue;
                var larger = ArrayPool<byte>.Shared.Rent(buffer.Length * 2);
                buffer.AsSpan(0, length).CopyTo(larger);
                ArrayPool<byte>.Shared.Return(buffer);
                buffer = larger;
            }
            return new PooledBytes(buffer, length);
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
    }

    /// <summary>Returns the buffer to the pool.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _buffer, null) is { } buffer)
            ArrayPool<byte>.Shared.Return(buffer);
    }
}
