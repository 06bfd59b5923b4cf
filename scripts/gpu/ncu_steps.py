#!/usr/bin/env python3
"""Summarises an `ncu --metrics gpu__time_duration.sum --csv --log-file F` capture of a
Vela run: GPU time per engine step (the sampler's draw kernel ends a step) split by kind of
kernel, then the kernels ranked by total time over the window."""
import collections
import csv
import sys

KINDS = [  # (kind, substrings of the kernel's name), first match wins
    ("prefill attn", ["prefill_kernel"]),
    ("decode attn", ["decode_kernel", "decode_mma_kernel", "generic_attention"]),
    ("combine", ["combine_kernel"]),
    ("gemv", ["gemv"]),
    ("gemm", ["gemm", "skinny", "sm90", "cutlass", "nvjet", "xmma", "Kernel2"]),
    ("norm/rope/cache", ["rms_norm", "qkv_rope", "rope", "reshape_and_cache"]),
    ("silu", ["silu"]),
    ("sampler", ["SampleBatchParams", "draw_kernel", "prepare_kernel"]),
]


def kind_of(name):
    if "prefill_kernel" in name and ", true>" in name:
        return "shared attn"
    for kind, keys in KINDS:
        if any(k in name for k in keys):
            return kind
    return "other"


def main(path):
    rows = []
    with open(path) as f:
        lines = [l for l in f if l.startswith('"')]
    for r in csv.DictReader(lines):
        if r.get("Metric Name") != "gpu__time_duration.sum":
            continue
        rows.append((r["Kernel Name"], float(r["Metric Value"].replace(",", "")) / 1e3, r.get("Grid Size", "")))
    if not rows:
        print("no kernels captured")
        return
    steps, cur = [], collections.Counter()
    names_in_step = collections.Counter()
    for name, us, grid in rows:
        k = kind_of(name)
        cur[k] += us
        if "draw_kernel" in name:  # the sampler's last kernel: the step is over
            steps.append(cur)
            cur = collections.Counter()
    kinds = ["shared attn"] + [k for k, _ in KINDS] + ["other"]
    print("step  total ms  " + "  ".join(f"{k[:12]:>12}" for k in kinds))
    for i, st in enumerate(steps):
        print(f"{i:4d} {sum(st.values())/1e3:9.3f}  " + "  ".join(f"{st[k]/1e3:12.3f}" for k in kinds))
    by = collections.defaultdict(lambda: [0, 0.0])
    for name, us, grid in rows:
        e = by[(name[:100], grid)]
        e[0] += 1
        e[1] += us
    total = sum(v[1] for v in by.values())
    print(f"kernels over the window: {len(rows)} launches, {total/1e3:.2f} ms of GPU time")
    for (name, grid), (n, us) in sorted(by.items(), key=lambda kv: -kv[1][1])[:25]:
        print(f"{100*us/total:5.1f}% {us/1e3:8.2f} ms {n:6d} x {us/n:8.1f} us  grid {grid:>16}  {name}")


if __name__ == "__main__":
    main(sys.argv[1])
