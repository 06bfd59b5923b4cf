#!/usr/bin/env python3
"""On the GPU machine: Vela's CUDA backend against HF transformers on the same GPU.

For each reference model and golden case, greedy decoding by
  - HF transformers in bf16 on cuda:0 (eager attention, the model as stored),
  - Vela in-process (`vela generate --device cuda:0`), all cases batched together,
  - Vela through `vela serve` on cuda:0 and `vela generate --server`,
and the goldens (HF fp32). Tokens are compared up to the first golden step whose
top-1/top-2 margin is < 0.1 (bf16 may swap closer logits). Then Vela in fp32
(model.dtype float32, in-process and through `vela serve`) against the goldens up to
the first margin < 0.01 (fp32 computes as the goldens do). Writes one JSON line per
model and exits non-zero on any mismatch.
With --tp N, Vela runs at tensor_parallel_size N on cuda:0..N-1 (in-process: the
engine drives N worker processes; and through vela serve), and its tokens are also
compared with Vela's own TP=1 run.
  usage: compare_hf.py REFERENCE_DIR VELA_BIN OUT_JSONL [--tp N]
"""
import json
import os
import subprocess
import sys
import tempfile
import time

MIN_MARGIN = 0.1
F32_MIN_MARGIN = 0.01


def reliable(case, min_margin=MIN_MARGIN):
    for i, s in enumerate(case["steps"]):
        if s["margin"] < min_margin:
            return i
    return len(case["steps"])


def vela_generate(vela, args):
    out = subprocess.run([vela, "generate", *args], capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise RuntimeError(f"vela generate {' '.join(args)}: exit {out.returncode}: {out.stderr[-2000:]}")
    rows = [json.loads(l) for l in out.stdout.splitlines() if l.startswith("{")]
    return rows


def serve_generate(vela, name, model_dir, devices, tp, common, dtype="auto"):
    """Starts `vela serve` on the GPU(s), runs `vela generate --server`, stops it.
    Returns (rows or None, the last client error, the server's log)."""
    sock = f"ipc:///tmp/vela-gpu-{name}-{dtype}.sock"
    cfg = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
    cfg.write(f"model:\n  path: {model_dir}\n  dtype: {dtype}\nfrontend:\n  endpoint: {sock}\n"
              f"parallel:\n  devices: [{devices}]\n  tensor_parallel_size: {tp}\n"
              f"cache:\n  gpu_memory_utilization: 0.2\nlogging:\n  level: warn\n")
    cfg.close()
    server = subprocess.Popen([vela, "serve", "--config", cfg.name], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    remote, remote_err = None, ""
    try:
        for _ in range(120):
            try:
                remote = vela_generate(vela, ["--server", sock, "--timeout", "60", *common])
                break
            except RuntimeError as e:
                remote_err = str(e)
                if server.poll() is not None:
                    break
                time.sleep(1)
    finally:
        server.terminate()
        try:
            log = server.communicate(timeout=30)[0]
        except subprocess.TimeoutExpired:
            server.kill()
            log = server.communicate()[0]
    return remote, remote_err, log


def hf_greedy(model_dir, cases, n):
    import torch
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16, attn_implementation="eager").cuda()
    model.eval()
    outs = []
    with torch.no_grad():
        for c in cases:
            ids = torch.tensor([c["prompt"]], device="cuda")
            g = model.generate(ids, max_new_tokens=n, do_sample=False, min_new_tokens=n, pad_token_id=0)
            outs.append(g[0, len(c["prompt"]):].tolist())
    return outs


def hf_teacher_forced_error(model_dir, cases):
    """Largest |HF bf16 logit - golden fp32 logit| over every step's top-8: how far a
    bf16 implementation of the same weights lands from the fp32 goldens."""
    import torch
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16, attn_implementation="eager").cuda()
    worst = 0.0
    with torch.no_grad():
        for c in cases:
            ids = c["prompt"] + c["generated"][:-1]
            logits = model(torch.tensor([ids], device="cuda")).logits[0].float()
            for i, s in enumerate(c["steps"]):
                row = logits[len(c["prompt"]) - 1 + i]
                for tid, tl in zip(s["top_ids"], s["top_logits"]):
                    worst = max(worst, abs(float(row[tid]) - tl))
    return worst


def main():
    ref, vela, out_path = sys.argv[1], sys.argv[2], sys.argv[3]
    tp = int(sys.argv[5]) if len(sys.argv) > 5 and sys.argv[4] == "--tp" else 1
    devices = ",".join(f"cuda:{i}" for i in range(tp))
    placement = (["--set", f"parallel.tensor_parallel_size={tp}", "--set", f"parallel.devices={devices}"]
                 if tp > 1 else ["--device", "cuda:0"])
    failures = 0
    with open(out_path, "w") as out:
        for name in ["qwen3-tiny", "llama3-tiny", "qwen2-tiny"]:
            model_dir = os.path.join(ref, "models", name)
            cases = json.load(open(os.path.join(ref, "golden", name + ".json")))["cases"]
            n = len(cases[0]["generated"])
            common = ["--max-tokens", str(n), "--ignore-eos", "--json"]
            for c in cases:
                common += ["--prompt-ids", ",".join(map(str, c["prompt"]))]
            t0 = time.time()
            local = vela_generate(vela, ["--model", model_dir, *placement,
                                         "--set", "cache.gpu_memory_utilization=0.2", *common])
            local_s = time.time() - t0
            tp1 = local if tp == 1 else vela_generate(vela, ["--model", model_dir, "--device", "cuda:0",
                                                             "--set", "cache.gpu_memory_utilization=0.2", *common])
            # Through vela serve on the GPU.
            remote, remote_err, log = serve_generate(vela, name, model_dir, devices, tp, common)
            # fp32 (model.dtype float32), in-process and through vela serve.
            local32 = vela_generate(vela, ["--model", model_dir, *placement, "--set", "model.dtype=float32",
                                           "--set", "cache.gpu_memory_utilization=0.2", *common])
            remote32, remote32_err, log32 = serve_generate(vela, name, model_dir, devices, tp, common, "float32")
            hf = hf_greedy(model_dir, cases, n)
            rec = {"model": name, "tp": tp, "cases": len(cases), "local_wall_s": round(local_s, 2),
                   "hf_bf16_max_logit_error": round(hf_teacher_forced_error(model_dir, cases), 5)}
            mism = []
            for i, c in enumerate(cases):
                k = reliable(c)
                want = c["generated"][:k]
                got_local = local[i]["token_ids"][:k] if i < len(local) else None
                got_remote = remote[i]["token_ids"][:k] if remote and i < len(remote) else None
                got_hf = hf[i][:k]
                if got_local != want:
                    mism.append({"case": i, "who": "vela in-process vs golden", "k": k, "want": want, "got": got_local})
                if got_remote != want:
                    mism.append({"case": i, "who": "vela serve vs golden", "k": k, "want": want, "got": got_remote})
                if got_hf != want:
                    mism.append({"case": i, "who": "HF bf16 vs golden (reference check)", "k": k, "want": want,
                                 "got": got_hf})
                if tp > 1 and got_local != (tp1[i]["token_ids"][:k] if i < len(tp1) else None):
                    mism.append({"case": i, "who": f"vela TP={tp} vs vela TP=1", "k": k, "got": got_local,
                                 "tp1": tp1[i]["token_ids"][:k] if i < len(tp1) else None})
                # Vela bf16 vs HF bf16 over the same reliable prefix.
                if got_local != got_hf:
                    mism.append({"case": i, "who": "vela in-process vs HF bf16", "k": k, "hf": got_hf,
                                 "got": got_local})
                k32 = reliable(c, F32_MIN_MARGIN)
                want32 = c["generated"][:k32]
                for who, rows in (("vela fp32 in-process vs golden", local32), ("vela fp32 serve vs golden", remote32)):
                    got32 = rows[i]["token_ids"][:k32] if rows and i < len(rows) else None
                    if got32 != want32:
                        mism.append({"case": i, "who": who, "k": k32, "want": want32, "got": got32})
            rec["compared_tokens"] = sum(reliable(c) for c in cases)
            rec["fp32_compared_tokens"] = sum(reliable(c, F32_MIN_MARGIN) for c in cases)
            rec["mismatches"] = mism
            if remote is None:
                rec["serve_error"] = remote_err[-1500:]
                rec["serve_log"] = log[-3000:]
            if remote32 is None:
                rec["fp32_serve_error"] = remote32_err[-1500:]
                rec["fp32_serve_log"] = log32[-3000:]
            failures += sum(1 for m in mism if m["who"].startswith("vela")) + (remote is None) + (remote32 is None)
            out.write(json.dumps(rec) + "\n")
            print(f"{name} (TP={tp}): HF bf16 teacher-forced max |logit - golden| {rec['hf_bf16_max_logit_error']}; "
                  f"{rec['compared_tokens']} tokens compared over {len(cases)} cases, "
                  f"fp32 {rec['fp32_compared_tokens']} tokens compared; "
                  f"{len(mism)} mismatches, serve {'ok' if remote else 'FAILED'}, "
                  f"fp32 serve {'ok' if remote32 else 'FAILED'}", flush=True)
            for m in mism[:6]:
                print("   ", m, flush=True)
            if remote is None:
                print(rec["serve_error"][-800:], "\n", log[-1500:], flush=True)
            if remote32 is None:
                print(rec["fp32_serve_error"][-800:], "\n", log32[-1500:], flush=True)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
