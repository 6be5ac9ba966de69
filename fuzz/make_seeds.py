#!/usr/bin/env python3
"""Writes the fuzzers' seed corpora into fuzz/corpus/ (run with Debian's /usr/bin/python3, which
has python3-torch): small valid inputs of each format, and a few invalid ones."""
import hashlib
import json
import os
import struct
import zipfile
import zlib

import torch

os.chdir(os.path.dirname(os.path.abspath(__file__)))
for d in ("cifar", "image", "number", "model", "state"):
    os.makedirs(f"corpus/{d}", exist_ok=True)

# CIFAR-10 binary: synthetic records (label byte + 3072 pixel bytes).
rec = b"".join(bytes([l]) + bytes((i * 37 + j) % 256 for j in range(3072)) for i, l in enumerate([3, 7]))
open("corpus/cifar/two-records.bin", "wb").write(rec)
open("corpus/cifar/one-record.bin", "wb").write(rec[:3073])


# Images: a 4x4 RGB PNG and a 2x2 24-bit BMP.
def png(w, h):
    raw = b"".join(b"\x00" + bytes(((x * 60 + y * 20) % 256, (x * 10) % 256, (y * 70) % 256)[c]
                                   for x in range(w) for c in range(3)) for y in range(h))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


open("corpus/image/4x4.png", "wb").write(png(4, 4))
pixels = (bytes([0, 0, 255, 0, 255, 0]) + b"\x00\x00") * 2
bmp = (b"BM" + struct.pack("<IHHI", 54 + len(pixels), 0, 0, 54) +
       struct.pack("<IiiHHIIiiII", 40, 2, 2, 1, 24, 0, len(pixels), 2835, 2835, 0, 0) + pixels)
open("corpus/image/2x2.bmp", "wb").write(bmp)

# Numbers as --eps takes them.
for i, t in enumerate(["8/255", "0.03", "2e-3", "1/0", "-1", "abc", " 5", "1e400", "0x10", "nan"]):
    open(f"corpus/number/{i}", "w").write(t)


# A tiny TorchScript classifier (channel means, linear to 10 classes).
class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(3, 10)

    def forward(self, x):
        return self.fc(x.mean(dim=(2, 3)))


torch.manual_seed(0)
torch.jit.script(Tiny()).save("corpus/model/tiny-script.pt")

# The same archive with sound checksums but one class constant without its annotation
# ("in_features = 3"): LibTorch 1.13's TorchScript parser crashes on it (SIGSEGV), so sdsgsm tries
# torch::jit::load in a child process first (found by fuzz_model).
with zipfile.ZipFile("corpus/model/tiny-script.pt") as src, \
        zipfile.ZipFile("corpus/model/parser-segv-unannotated-constant.pt", "w") as out:
    for info in src.infolist():
        data = src.read(info.filename)
        if info.filename.endswith("code/__torch__/torch/nn/modules/linear.py"):
            data = data.replace(b"in_features : Final[int] = 3", b"in_features = 3")
        out.writestr(info, data)

# Resume states: run.json, state.json and the first batch file, separated by NUL bytes, for the
# configuration fuzz_state.cpp uses ({"batch_size":2,"case":"fuzz"}, hashed as the runner does).
fp = json.dumps({"batch_size": 2, "case": "fuzz"}, separators=(",", ":"))
h = hashlib.md5(fp.encode()).hexdigest()
run = json.dumps({"fingerprint": h, "configuration": {"batch_size": 2, "case": "fuzz"}})
for done, batch in [(0, b""), (1, b"not a pickle"), (2, b"")]:
    state = json.dumps({"fingerprint": h, "batches_done": done, "batches": 2, "batch_size": 2})
    open(f"corpus/state/done{done}", "wb").write(run.encode() + b"\0" + state.encode() + b"\0" + batch)
