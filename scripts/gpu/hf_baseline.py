#!/usr/bin/env python3
"""HF transformers generate() baseline for Vela's standard workloads (BENCHMARKS.md).

Runs on the GPU machine (torch + transformers there), on the same workloads as
`vela bench throughput`: the prompts come from the same splitmix64 generator as
perf/workloads.cpp, the model has random weights of the real shape
(perf/models/<shape>/config.json), static batches of 128 in arrival order, left
padded, sdpa attention, bf16. Every batch decodes max(its output lengths) tokens
with EOS ignored (min_new_tokens = max_new_tokens); the output tokens counted are
the requests' own lengths, as Vela counts them.

  hf_baseline.py --workload W2 --out results.json
  hf_baseline.py --workload S1 --compiled   # HF's fastest documented single-stream path:
      # a static KV cache, which generate() compiles for (torch.compile, CUDA graphs),
      # warmed up with two untimed generate() calls of the same shape (compile_s)
  hf_baseline.py --dump W1      # print the workload digest (no torch needed)
"""
import argparse
import json
import math
import os
import sys
import time

MASK = (1 << 64) - 1


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & MASK

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def uniform(self, lo, hi):
        return lo + self.next() % (hi - lo + 1)

    def unit(self):
        return (self.next() >> 11) * 2.0 ** -53


def make_workload(name, max_id=10000):
    """Mirror of perf/workloads.cpp (unscaled). Returns (shape, [(prompt_ids, max_tokens, arrival_s)])."""
    reqs = []
    if name == "W1":
        rng = SplitMix64(0)
        for _ in range(256):
            n_in = rng.uniform(100, 1024)
            n_out = rng.uniform(100, 1024)
            reqs.append(([rng.uniform(0, max_id - 1) for _ in range(n_in)], n_out, 0.0))
        return "qwen3-0.6b", reqs
    if name in ("W2", "S1", "L1"):
        s1, l1 = name == "S1", name == "L1"
        n = 1 if s1 else 200 if l1 else 256
        n_in, n_out = (128, 256) if s1 else (1024, 128)
        rng = SplitMix64(2 if s1 else 3 if l1 else 1)
        t = 0.0
        for _ in range(n):
            if l1:
                t += -math.log(1.0 - rng.unit()) / 4.0
            reqs.append(([rng.uniform(0, max_id - 1) for _ in range(n_in)], n_out, t))
        return "llama-3.1-8b", reqs
    if name == "P1":
        rng = SplitMix64(4)
        prefix = [rng.uniform(0, max_id - 1) for _ in range(2048)]
        for _ in range(256):
            k = rng.uniform(50, 200)
            own = [rng.uniform(0, max_id - 1) for _ in range(k)]
            reqs.append((prefix + own, 64, 0.0))
        return "qwen3-0.6b", reqs
    raise SystemExit(f"unknown workload {name}")


def digest(reqs):
    """A small digest both implementations print: counts, lengths and an id checksum."""
    h = 0
    for ids, n_out, _ in reqs:
        for x in ids:
            h = (h * 1000003 + x) & MASK
        h = (h * 1000003 + n_out) & MASK
    return {"requests": len(reqs), "prompt_tokens": sum(len(r[0]) for r in reqs),
            "output_tokens": sum(r[1] for r in reqs), "checksum": h}


def run(name, batch_size, repo_root, compiled=False):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    shape, reqs = make_workload(name)
    cfg = AutoConfig.from_pretrained(os.path.join(repo_root, "perf", "models", shape))
    torch.manual_seed(0)
    t0 = time.time()
    with torch.device("cuda"):
        try:
            model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16, attn_implementation="sdpa")
        except TypeError:
            model = AutoModelForCausalLM.from_config(cfg, torch_dtype=torch.bfloat16, attn_implementation="sdpa")
    model.eval()
    init_s = time.time() - t0
    pad = 0
    compile_s = 0.0
    if compiled:
        # With a static (compileable) cache, generate() compiles the decoding forward
        # itself (GenerationConfig.compile_config, CUDA graphs through inductor's
        # reduce-overhead mode). Wrapping model.forward in torch.compile by hand as well
        # failed on transformers 5.17 (CUDA-graph outputs overwritten; with
        # cudagraph_mark_step_begin, graphs skipped for the cache's in-place counters
        # and a crash): PERF_NOTES, fifth session.
        model.generation_config.cache_implementation = "static"
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    def generate(batch):
        width = max(len(r[0]) for r in batch)
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, (p, _, _) in enumerate(batch):
            ids[i, width - len(p):] = torch.tensor(p)
            mask[i, width - len(p):] = 1
        n_new = max(r[1] for r in batch)
        with torch.no_grad():
            model.generate(input_ids=ids.cuda(), attention_mask=mask.cuda(), max_new_tokens=n_new,
                           min_new_tokens=n_new, do_sample=False, pad_token_id=pad)

    if compiled:  # compilation and graph capture happen in the first calls of each shape
        t0 = time.time()
        for _ in range(2):
            generate(reqs[:batch_size])
        torch.cuda.synchronize()
        compile_s = time.time() - t0
        print(f"  {name}: compiled warm-up {compile_s:.1f} s", file=sys.stderr, flush=True)
    start = time.time()
    out_tokens = 0
    for b in range(0, len(reqs), batch_size):
        batch = reqs[b:b + batch_size]
        generate(batch)
        out_tokens += sum(r[1] for r in batch)
        print(f"  {name}: batch {b // batch_size + 1}/{math.ceil(len(reqs) / batch_size)} "
              f"({time.time() - start:.1f} s)", file=sys.stderr, flush=True)
    torch.cuda.synchronize()
    wall = time.time() - start
    prompt_tokens = sum(len(r[0]) for r in reqs)
    engine = "HF transformers " + __import__("transformers").__version__
    if compiled:
        engine += " static cache + torch.compile " + torch.__version__
    return {"workload": name, "engine": engine, "compile_s": compile_s,
            "device": torch.cuda.get_device_name(0), "batch_size": batch_size, "wall_s": wall,
            "init_s": init_s, "output_tokens": out_tokens, "prompt_tokens": prompt_tokens,
            "output_tok_per_s": out_tokens / wall, "total_tok_per_s": (out_tokens + prompt_tokens) / wall,
            "peak_device_bytes": torch.cuda.max_memory_allocated(), **{"digest": digest(reqs)}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workload", action="append", default=[])
    ap.add_argument("--dump", help="print the workload digest as JSON and exit")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--out", help="append results as JSON lines to this file")
    ap.add_argument("--compiled", action="store_true",
                    help="static KV cache (generate() compiles the forward for it), warmed up first")
    args = ap.parse_args()
    if args.dump:
        print(json.dumps(digest(make_workload(args.dump)[1])))
        return
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for w in args.workload:
        res = run(w, 1 if w == "S1" else args.batch_size, root, args.compiled)
        line = json.dumps(res)
        print(line, flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(line + "\n")


if __name__ == "__main__":
    main()
