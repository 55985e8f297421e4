#!/usr/bin/env python3
"""PyTorch SDPA reference timings for `rerank bench-kernels`.

Usage: sdpa_bench.py NAME:N:S:HEADS:HEADDIM [...]

For each shape it times torch.nn.functional.scaled_dot_product_attention,
forward and forward+backward, in bf16 and fp32, with the same key padding
as kernels/bench.cu (sequence n has its last (n % 4) * S/8 keys padded; the
boolean mask keeps PyTorch off its mask-less flash path) and once in bf16
without a mask (the flash path, PyTorch's fastest). CUDA-event timing,
warm-up, median of 30, inputs rotated among 4 copies. Prints one JSON list
of rows on stdout; exits 2 when torch or a GPU is missing.
"""
import json
import sys


def main(argv):
    try:
        import torch
        import torch.nn.functional as F
    except ImportError as e:  # pragma: no cover - depends on the machine
        print(f"sdpa_bench: torch not importable: {e}", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        print("sdpa_bench: torch sees no GPU", file=sys.stderr)
        return 2
    dev = torch.device("cuda")
    rows = []

    def timed(fn, sets, warmup=5, repeats=30):
        for i in range(warmup):
            fn(sets[i % len(sets)])
        torch.cuda.synchronize()
        ts = []
        for i in range(repeats):
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            fn(sets[i % len(sets)])
            e.record()
            e.synchronize()
            ts.append(s.elapsed_time(e))
        ts.sort()
        return ts[len(ts) // 2]

    for spec in argv:
        name, n, s, h, d = spec.split(":")
        n, s, h, d = int(n), int(s), int(h), int(d)
        shape = f"{name} N{n} S{s} h{h} d{d}"
        keep = torch.ones(n, s, dtype=torch.bool, device=dev)
        for i in range(n):
            pad = (i % 4) * (s // 8)
            if pad:
                keep[i, s - pad:] = False
        mask = keep[:, None, None, :]
        fwd_flops = 4.0 * n * h * s * s * d
        for dtype, tag, m in ((torch.bfloat16, "bf16", mask), (torch.float32, "f32", mask),
                              (torch.bfloat16, "bf16-nomask", None)):
            sets = []
            for _ in range(4):
                q, k, v = (torch.randn(n, h, s, d, device=dev, dtype=dtype, requires_grad=True)
                           for _ in range(3))
                g = torch.randn(n, h, s, d, device=dev, dtype=dtype)
                sets.append((q, k, v, g))

            def fwd(t):
                with torch.no_grad():
                    F.scaled_dot_product_attention(t[0], t[1], t[2], attn_mask=m)

            def fwdbwd(t):
                o = F.scaled_dot_product_attention(t[0], t[1], t[2], attn_mask=m)
                o.backward(t[3])

            for kind, fn, flops in (("attention_fwd", fwd, fwd_flops),
                                    ("attention_fwdbwd", fwdbwd, 3.5 * fwd_flops)):
                ms = timed(fn, sets)
                suffix = "_f32" if dtype == torch.float32 else "_bf16"
                rows.append({"name": kind + suffix, "shape": shape, "impl": "torch-sdpa-" + tag,
                             "ms": ms, "flops": flops, "tflops": flops / (ms * 1e-3) / 1e12})
            del sets
            torch.cuda.empty_cache()
    json.dump({"torch": torch.__version__, "rows": rows}, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
