"""Writing a small, valid .safetensors file (the offline trainer's LoRA)."""

from __future__ import annotations

import json
import struct


def build_safetensors(tensors: dict[str, list[float]], metadata: dict[str, str]) -> bytes:
    """F32 1-D tensors plus string metadata, in the safetensors layout (u64 header length,
    JSON header with contiguous data offsets, then the raw little-endian buffer)."""
    header: dict[str, object] = {"__metadata__": dict(metadata)}
    buffer = bytearray()
    for name, values in tensors.items():
        start = len(buffer)
        buffer += struct.pack(f"<{len(values)}f", *values)
        header[name] = {
            "dtype": "F32",
            "shape": [len(values)],
            "data_offsets": [start, len(buffer)],
        }
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # header padded to 8 bytes, as the reference writer does
    return struct.pack("<Q", len(raw)) + raw + bytes(buffer)


def read_safetensors_metadata(data: bytes) -> dict[str, str]:
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    return header.get("__metadata__", {})
