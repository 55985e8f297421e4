#!/usr/bin/env python3
"""Write the pytorch_model.bin / adapter_model.bin fixtures of package torchbin.

    /usr/bin/python3 scripts/make-torchbin-fixtures.py [GOLDEN_DIR]   # Debian: apt-get install python3-torch

Two on-disk layouts of torch.save's zip format are written:

* torch 1.13 (Debian's python3-torch): the real torch.save. Records live under
  "<file stem>/": data.pkl, data/<key>, version ("3").
* torch 2.x: torch is not installable here at 2.x, so the script writes that
  layout by hand with zipfile + pickle, as torch 2.x's torch.save writes it
  (torch/serialization.py _save and caffe2/serialize/inline_container.cc
  PyTorchStreamWriter): records under "archive/": data.pkl, byteorder
  ("little"), data/<key>, version ("3"), .data/version ("3"),
  .data/serialization_id, .format_version ("1"), .storage_alignment ("64"),
  every record stored uncompressed and its data aligned to 64 bytes with an
  "FB" padding extra field. The pickle is protocol 2 with the same globals
  torch writes (collections.OrderedDict, torch._utils._rebuild_tensor_v2,
  torch.<Type>Storage) and persistent ids
  ("storage", <Type>Storage, key, "cpu", numel); it is produced by Python's
  own pickle over stand-in modules named torch and torch._utils, so its
  opcodes are those torch's Pickler emits.

Fixtures (torchbin/testdata):
  dtypes-1.13.bin, dtypes-2.x.bin      f32/f16/bf16/f64/i64, a view with a storage offset, a
                                       transposed (non-contiguous) view sharing a storage, a 0-d tensor
  dtypes.json                          the expected values, row-major, as float64
  bert_tiny-1.13.bin                   GOLDEN/bert_tiny/model/model.safetensors as pytorch_model.bin
  bert_tiny_lora_qkv-1.13.bin          GOLDEN/bert_tiny_lora_qkv/adapter/adapter_model.safetensors as
  bert_tiny_lora_qkv-2.x.bin           adapter_model.bin (PEFT < 0.7), in both layouts
"""
import collections
import io
import json
import os
import pickle
import struct
import sys
import types
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "torchbin", "testdata")
GOLDEN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "shared", "golden")


def read_safetensors(path):
    """name -> (dtype, shape, raw little-endian bytes), in file order."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = collections.OrderedDict()
    for name, t in sorted(header.items()):
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        out[name] = (t["dtype"], t["shape"], data[a:b])
    return out


# ---- torch 2.x layout, by hand ------------------------------------------------

STORAGE = {"F32": ("FloatStorage", 4), "F16": ("HalfStorage", 2), "BF16": ("BFloat16Storage", 2),
           "F64": ("DoubleStorage", 8), "I64": ("LongStorage", 8)}


def stand_in_torch():
    """Modules named like torch's, holding the objects torch's pickles name."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):
        raise RuntimeError("stand-in")

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    torch._utils = utils
    for cls, _ in STORAGE.values():
        setattr(torch, cls, type(cls, (), {"__module__": "torch"}))
    return torch, utils


class Storage:
    def __init__(self, cls, key, numel):
        self.cls, self.key, self.numel = cls, key, numel


class Tensor:
    """Reduces as torch.Tensor.__reduce_ex__ does for a CPU tensor."""

    def __init__(self, rebuild, storage, offset, shape, stride):
        self.args = (storage, offset, tuple(shape), tuple(stride), False, collections.OrderedDict())
        self.rebuild = rebuild

    def __reduce_ex__(self, proto):
        return (self.rebuild, self.args)


class V2Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", obj.cls, obj.key, "cpu", obj.numel)
        return None


def contiguous_stride(shape):
    s, out = 1, []
    for d in reversed(shape):
        out.append(s)
        s *= d
    return list(reversed(out))


def write_v2(path, entries, metadata=True):
    """entries: name -> (dtype, shape, raw, storage key, element offset, stride or None).

    Storages with the same key are written once (their raw bytes must be the whole storage)."""
    saved_mods = {k: sys.modules.get(k) for k in ("torch", "torch._utils")}
    torch, utils = stand_in_torch()
    sys.modules["torch"], sys.modules["torch._utils"] = torch, utils
    try:
        sd = collections.OrderedDict()
        storages = collections.OrderedDict()
        for name, (dtype, shape, raw, key, offset, stride) in entries.items():
            cls, size = STORAGE[dtype]
            if key not in storages:
                storages[key] = (Storage(getattr(torch, cls), key, len(raw) // size), raw)
            st = storages[key][0]
            sd[name] = Tensor(utils._rebuild_tensor_v2, st, offset, shape, stride or contiguous_stride(shape))
        if metadata:
            sd._metadata = collections.OrderedDict([("", {"version": 1})])
        buf = io.BytesIO()
        V2Pickler(buf, protocol=2).dump(sd)
        pkl = buf.getvalue()
    finally:
        for k, v in saved_mods.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    records = [("archive/data.pkl", pkl), ("archive/.format_version", b"1"), ("archive/.storage_alignment", b"64"),
               ("archive/byteorder", b"little")]
    records += [("archive/data/%s" % k, raw) for k, (_, raw) in storages.items()]
    records += [("archive/version", b"3\n"), ("archive/.data/version", b"3\n"),
                ("archive/.data/serialization_id", b"1234567890123456789012345678901234567890")]
    with open(path, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as z:
        for name, data in records:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            # Pad the local header's extra field so the data starts on a
            # 64-byte boundary, as PyTorchStreamWriter does ("FB" field).
            start = f.tell() + 30 + len(name.encode())
            pad = (-(start + 4)) % 64
            info.extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
            z.writestr(info, data)


# ---- fixtures -----------------------------------------------------------------

def dtypes_fixture():
    """The tensors of dtypes-*.bin: name -> (dtype, shape, raw, key, offset, stride), and their values."""
    import numpy as np

    base = np.arange(12, dtype=np.float32) * 0.5 - 2
    half = np.array([1.5, -0.25, 65504, 6e-8], dtype=np.float16)
    f64 = np.array([[1e-3, 2.5], [-7.0, 1e10]], dtype=np.float64)
    ids = np.arange(5, dtype=np.int64)
    bf16_vals = np.array([1.0, -2.5, 3.140625, 1e20], dtype=np.float32)
    bf16 = (bf16_vals.view(np.uint32) >> 16).astype(np.uint16)  # truncated to bf16
    e = collections.OrderedDict()
    e["f32"] = ("F32", [3, 4], base.tobytes(), "0", 0, None)
    e["f32_offset_view"] = ("F32", [2, 2], base.tobytes(), "0", 4, [4, 1])  # rows 1..2, cols 0..1
    e["f32_transposed"] = ("F32", [4, 3], base.tobytes(), "0", 0, [1, 4])  # f32.T, shares storage 0
    e["f16"] = ("F16", [4], half.tobytes(), "1", 0, None)
    e["bf16"] = ("BF16", [2, 2], bf16.tobytes(), "2", 0, None)
    e["f64"] = ("F64", [2, 2], f64.tobytes(), "3", 0, None)
    e["position_ids"] = ("I64", [1, 5], ids.tobytes(), "4", 0, None)
    e["scalar"] = ("F32", [], np.array([42.0], dtype=np.float32).tobytes(), "5", 0, [])
    m = base.reshape(3, 4)
    want = {
        "f32": m.ravel().tolist(), "f32_offset_view": m[1:3, 0:2].ravel().tolist(),
        "f32_transposed": m.T.ravel().tolist(), "f16": half.astype(np.float64).tolist(),
        "bf16": (bf16.astype(np.uint32) << 16).view(np.float32).astype(np.float64).tolist(),  # 1e20 rounds down
        "f64": f64.astype(np.float32).astype(np.float64).ravel().tolist(),
        "position_ids": ids.astype(np.float64).tolist(), "scalar": [42.0],
    }
    shapes = {k: v[1] for k, v in e.items()}
    return e, want, shapes


def as_entries(tensors):
    return collections.OrderedDict((n, (d, s, raw, str(i), 0, None)) for i, (n, (d, s, raw)) in enumerate(tensors.items()))


def torch_save_113(path, entries):
    """The real torch.save (Debian's torch 1.13)."""
    import numpy as np
    import torch

    np_types = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64}
    storages, sd = {}, collections.OrderedDict()
    for name, (dtype, shape, raw, key, offset, stride) in entries.items():
        if key not in storages:
            if dtype == "BF16":
                t = torch.from_numpy(np.frombuffer(raw, dtype=np.int16).copy()).view(torch.bfloat16)
            else:
                t = torch.from_numpy(np.frombuffer(raw, dtype=np_types[dtype]).copy())
            storages[key] = t
        sd[name] = storages[key].as_strided(shape, stride or contiguous_stride(shape), offset)
    sd._metadata = collections.OrderedDict([("", {"version": 1})])
    torch.save(sd, path)
    return torch.__version__


def main():
    os.makedirs(OUT, exist_ok=True)
    entries, want, shapes = dtypes_fixture()
    write_v2(os.path.join(OUT, "dtypes-2.x.bin"), entries)
    with open(os.path.join(OUT, "dtypes.json"), "w") as f:
        json.dump({"values": want, "shapes": shapes}, f, indent=1, sort_keys=True)
    adapter = as_entries(read_safetensors(os.path.join(GOLDEN, "bert_tiny_lora_qkv", "adapter", "adapter_model.safetensors")))
    write_v2(os.path.join(OUT, "bert_tiny_lora_qkv-2.x.bin"), adapter, metadata=False)
    model = as_entries(read_safetensors(os.path.join(GOLDEN, "bert_tiny", "model", "model.safetensors")))
    try:
        import torch  # noqa: F401
    except ImportError:
        print("torch is not installed (apt-get install python3-torch): the 1.13 fixtures are not rewritten")
        return
    v = torch_save_113(os.path.join(OUT, "dtypes-1.13.bin"), entries)
    torch_save_113(os.path.join(OUT, "bert_tiny_lora_qkv-1.13.bin"), adapter)
    torch_save_113(os.path.join(OUT, "bert_tiny-1.13.bin"), model)
    # torch.load reads the hand-written 2.x layout too: a check on the writer.
    for name in ("dtypes-2.x.bin", "bert_tiny_lora_qkv-2.x.bin"):
        sd = torch.load(os.path.join(OUT, name))
        assert list(sd) == list(torch.load(os.path.join(OUT, name.replace("2.x", "1.13")))), name
    print("wrote fixtures with torch", v)


if __name__ == "__main__":
    main()
