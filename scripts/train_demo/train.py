#!/usr/bin/env python3
"""Trains Vela's demo model (models/demo) on the GPU machine, from nothing but what is there.

    python3 scripts/train_demo/train.py --out "$OUT/demo"

1. Corpus: the *.py files of the Python standard library this interpreter runs on
   (the directory of os.__file__, without site-/dist-packages; PSF license), read in
   sorted order; about 3% of the files (chosen by a hash of their path) are held out.
2. Tokenizer (HF `tokenizers`): byte-level BPE, 8192 tokens including the special
   tokens <|endoftext|>, <|im_start|>, <|im_end|>; NFC normaliser and Qwen's Split
   regex, i.e. only what Vela's tokenizer/ implements (see check_vela_tokenizer_json).
   tokenizer_config.json carries a plain ChatML chat template.
3. Model (HF `transformers`): Qwen3ForCausalLM, ~12.6M parameters with tied
   embeddings, trained with bf16 autocast, AdamW and a cosine schedule. The step
   count is fixed (--steps), so a run is reproducible from --seed; if the machine is
   too slow for --minutes the steps are cut and the log says which --steps reproduces it.
4. Saves an ordinary HF model directory (config.json, model.safetensors in bf16,
   tokenizer.json, tokenizer_config.json, generation_config.json, README.md) plus
   golden.json: what transformers computes in fp32 on the CPU from the saved bf16
   weights -- the perplexity of held-out token sequences and greedy continuations of
   fixed prompts with per-step top-8 logits and margins -- and HF's tokenization of
   a few texts. Vela's test tests/demo/ checks its CPU path against that file.
5. Packs the directory as demo/ into ONE tar.gz under --out (split into 15 MiB parts
   when larger), with SHA256SUMS and train_log.txt beside it. Install it with
       cat vela-demo-model.tar.gz* | tar -xzf - -C models/
   (scripts/train_demo/install.sh does that and checks the sums).

The model directory itself is written under --work (outside --out) so that --out
holds only a few files.
"""
import argparse
import hashlib
import json
import math
import os
import shutil
import sys
import tarfile
import time
from pathlib import Path

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# Qwen2/Qwen3's pre-tokenizer regex (third_party/tokenizers/qwen3/tokenizer.json), which
# Vela compiles with PCRE2.
SPLIT_REGEX = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
# Plain ChatML: Vela's renderer kChatML (no default system prompt, no <think>).
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
PROMPTS = [
    "def fibonacci(n):",
    "import os\n",
    "class Stack:",
    "    def __init__(self",
    "# Copyright",
    "for i in range(",
]
EXTRA_TOKENIZER_TEXTS = [
    "<|im_start|>user\nWrite a function.<|im_end|>\n<|im_start|>assistant\n",
    "caf\u00e9 cafe\u0301 na\u00efve \u65e5\u672c\u8a9e \U0001f680 \u00bd 123456 x\u00b2",
    "if x == 1:\r\n\treturn {'a': [1, 2.5e-3]}  # done\n\n\n",
    "I'm sure they'll say \"it's DONE\" -- 'OK'?\n",
]

LOG_LINES = []


def log(*parts):
    line = " ".join(str(p) for p in parts)
    print(line, flush=True)
    LOG_LINES.append(line)


# ---------------------------------------------------------------- corpus

def stdlib_dir():
    return Path(os.__file__).resolve().parent


def read_corpus(root, max_file_bytes, val_percent):
    """(train, val): lists of (relative path, text) in sorted path order."""
    root = Path(root)
    paths = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in ("site-packages", "dist-packages", "__pycache__")]
        for name in filenames:
            if name.endswith(".py"):
                paths.append(Path(dirpath) / name)
    paths.sort(key=lambda p: p.relative_to(root).as_posix())
    train, val, skipped = [], [], 0
    for p in paths:
        rel = p.relative_to(root).as_posix()
        try:
            data = p.read_bytes()
            if len(data) > max_file_bytes or b"\0" in data:
                skipped += 1
                continue
            text = data.decode("utf-8")
        except (OSError, UnicodeDecodeError):
            skipped += 1
            continue
        if not text.strip():
            continue
        bucket = int(hashlib.sha256(rel.encode()).hexdigest(), 16) % 100
        (val if bucket < val_percent else train).append((rel, text))
    return train, val, skipped


# ---------------------------------------------------------------- tokenizer

def train_tokenizer(texts, vocab_size):
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(SPLIT_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        show_progress=False,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    return tok


def check_vela_tokenizer_json(j):
    """The features of tokenizer.json that tokenizer/tokenizer_loader.cpp accepts; [] when all is well."""
    problems = []
    m = j.get("model") or {}
    if m.get("type") != "BPE":
        problems.append(f"model.type {m.get('type')}")
    if m.get("dropout") is not None:
        problems.append("model.dropout set")
    if m.get("byte_fallback"):
        problems.append("model.byte_fallback")
    for key in ("continuing_subword_prefix", "end_of_word_suffix"):
        if m.get(key) not in (None, ""):
            problems.append(f"model.{key} = {m.get(key)!r}")
    vocab = m.get("vocab") or {}
    from tokenizers import pre_tokenizers

    missing = [c for c in pre_tokenizers.ByteLevel.alphabet() if c not in vocab]
    if missing:
        problems.append(f"{len(missing)} of the 256 byte-level characters are not in the vocab")
    for t in j.get("added_tokens") or []:
        for flag in ("lstrip", "rstrip", "single_word"):
            if t.get(flag):
                problems.append(f"added token {t.get('content')} sets {flag}")
    norm = j.get("normalizer")
    norms = (norm or {}).get("normalizers", [norm]) if norm and norm.get("type") == "Sequence" else ([norm] if norm else [])
    for n in norms:
        if n.get("type") != "NFC":
            problems.append(f"normalizer {n.get('type')}")
    pre = j.get("pre_tokenizer")
    pres = pre.get("pretokenizers", []) if pre and pre.get("type") == "Sequence" else ([pre] if pre else [])
    regexes = 0
    for p in pres:
        if p.get("type") == "Split":
            if "Regex" not in (p.get("pattern") or {}) or p.get("behavior") != "Isolated" or p.get("invert"):
                problems.append(f"Split pre-tokenizer {p}")
            regexes += 1
        elif p.get("type") == "ByteLevel":
            regexes += 1 if p.get("use_regex", True) else 0
        else:
            problems.append(f"pre_tokenizer {p.get('type')}")
    if regexes > 1:
        problems.append("more than one regex pre-tokenizer")
    if (j.get("decoder") or {}).get("type") != "ByteLevel":
        problems.append(f"decoder {j.get('decoder')}")
    post = j.get("post_processor")
    if post and post.get("type") not in ("ByteLevel", "TemplateProcessing", "Sequence"):
        problems.append(f"post_processor {post.get('type')}")
    return problems


def tokenizer_config(special_ids):
    """tokenizer_config.json; special_ids: the id of each of SPECIAL_TOKENS."""
    added = {str(i): {"content": t, "lstrip": False, "normalized": False, "rstrip": False,
                      "single_word": False, "special": True} for t, i in zip(SPECIAL_TOKENS, special_ids)}
    return {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": added,
        "additional_special_tokens": SPECIAL_TOKENS[1:],
        "bos_token": None,
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": SPECIAL_TOKENS[0],
        "errors": "replace",
        "model_max_length": 2048,
        "pad_token": SPECIAL_TOKENS[0],
        "split_special_tokens": False,
        "tokenizer_class": "PreTrainedTokenizerFast",
        "unk_token": None,
    }


# ---------------------------------------------------------------- golden (framework-neutral)

def greedy_case(logits_fn, prompt_ids, num_tokens, top_k=8):
    """Greedy continuation by full recompute; steps[i] are the logits that chose generated[i]."""
    import torch

    ids = list(prompt_ids)
    generated, steps = [], []
    for _ in range(num_tokens):
        logits = logits_fn(ids)[-1].double()
        logprobs = torch.log_softmax(logits, dim=-1)
        top = torch.topk(logits, top_k)
        tok = int(top.indices[0])
        steps.append({
            "token": tok,
            "logit": float(logits[tok]),
            "logprob": float(logprobs[tok]),
            "top_ids": [int(i) for i in top.indices],
            "top_logits": [float(v) for v in top.values],
            "margin": float(top.values[0] - top.values[1]),
        })
        generated.append(tok)
        ids.append(tok)
    return generated, steps


def perplexity_of(logits_fn, sequences):
    import torch

    per_seq, total_nll, count = [], 0.0, 0
    for seq in sequences:
        logits = logits_fn(seq).double()
        target = torch.tensor(seq[1:], dtype=torch.long)
        nll = torch.nn.functional.cross_entropy(logits[:-1], target, reduction="sum").item()
        per_seq.append(nll / (len(seq) - 1))
        total_nll += nll
        count += len(seq) - 1
    mean = total_nll / count
    return {"mean_nll": mean, "perplexity": math.exp(mean), "per_sequence_mean_nll": per_seq,
            "num_predicted_tokens": count}


def heldout_sequences(val_ids, num, length):
    """num windows of `length` tokens spread evenly over the held-out token stream."""
    assert len(val_ids) >= num * length, f"held-out stream too short ({len(val_ids)} tokens)"
    stride = (len(val_ids) - length) // max(num - 1, 1)
    return [[int(t) for t in val_ids[i * stride: i * stride + length]] for i in range(num)]


def make_golden(logits_fn, encode, decode, val_ids, val_docs, args, meta):
    sequences = heldout_sequences(val_ids, args.ppl_seqs, args.ppl_len)
    ppl = perplexity_of(logits_fn, sequences)
    log(f"golden: held-out perplexity {ppl['perplexity']:.4f} (mean NLL {ppl['mean_nll']:.5f} nats over "
        f"{ppl['num_predicted_tokens']} tokens), fp32 from the saved bf16 weights")
    cases = []
    for text in PROMPTS:
        prompt = encode(text)
        generated, steps = greedy_case(logits_fn, prompt, args.gen_tokens)
        cases.append({"prompt_text": text, "prompt": prompt, "generated": generated,
                      "generated_text": decode(generated), "steps": steps})
        reliable = next((i for i, s in enumerate(steps) if s["margin"] < 1e-2), len(steps))
        log(f"golden: {text!r} -> {decode(generated)!r} ({reliable}/{len(steps)} steps with margin >= 1e-2)")
    tok_texts = PROMPTS + EXTRA_TOKENIZER_TEXTS + [text[:2000] for _, text in val_docs[:3]]
    tok_cases = []
    for text in tok_texts:
        ids = encode(text)
        tok_cases.append({"text": text, "ids": ids, "decoded": decode(ids)})
    return {
        "meta": meta,
        "perplexity": dict(ppl, sequences=sequences),
        "cases": cases,
        "tokenizer_cases": tok_cases,
    }


# ---------------------------------------------------------------- packing

def pack(model_dir, out_dir, part_bytes, name="vela-demo-model.tar.gz"):
    """model_dir packed as demo/ into out_dir/name, split into parts when larger than part_bytes."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tar_path = out_dir / name
    with tarfile.open(tar_path, "w:gz", compresslevel=6) as tar:
        for f in sorted(model_dir.iterdir()):
            info = tar.gettarinfo(str(f), arcname=f"demo/{f.name}")
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mtime = 0
            with open(f, "rb") as fh:
                tar.addfile(info, fh)
    data_hash = hashlib.sha256(tar_path.read_bytes()).hexdigest()
    size = tar_path.stat().st_size
    files = [tar_path]
    if size > part_bytes:
        files = []
        with open(tar_path, "rb") as fh:
            for i in range(math.ceil(size / part_bytes)):
                suffix = chr(ord("a") + i // 26) + chr(ord("a") + i % 26)  # split(1)'s aa, ab, ...
                part = out_dir / f"{name}.part-{suffix}"
                part.write_bytes(fh.read(part_bytes))
                files.append(part)
        tar_path.unlink()
    with open(out_dir / "SHA256SUMS", "w") as fh:
        fh.write(f"{data_hash}  {name}\n")
        for f in files:
            fh.write(f"{hashlib.sha256(f.read_bytes()).hexdigest()}  {f.name}\n")
    log(f"packed {size / 2**20:.2f} MiB as {', '.join(f.name for f in files)} in {out_dir}")
    return files


def model_card(meta):
    return f"""# demo: Vela's embedded demo model

A small Qwen3ForCausalLM ({meta['parameters'] / 1e6:.2f}M parameters, tied embeddings)
and its byte-level BPE tokenizer ({meta['vocab_size']} tokens), trained from scratch by
`scripts/train_demo/train.py` on the Python standard library's source code
(Python {meta['python']}, PSF license) in {meta['train_seconds']:.0f} s on one GPU.
It continues Python code; it knows nothing else. Trained on {meta['seq_len']}-token windows.

- config: hidden {meta['config']['hidden_size']}, {meta['config']['num_hidden_layers']} layers,
  {meta['config']['num_attention_heads']} heads / {meta['config']['num_key_value_heads']} KV heads,
  head_dim {meta['config']['head_dim']}, intermediate {meta['config']['intermediate_size']}
- training: {meta['steps']} steps x {meta['batch_size']} x {meta['seq_len']} tokens, AdamW, cosine, bf16 autocast, seed {meta['seed']}
- final train loss {meta['final_train_loss']:.4f}, validation loss {meta['final_val_loss']:.4f}
- held-out perplexity (fp32, from these bf16 weights): {meta.get('heldout_perplexity', float('nan')):.4f}
- golden.json: what transformers computes from these weights (tests/demo checks Vela against it)
- reproduce: `{meta['command']}`
"""


# ---------------------------------------------------------------- main

def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path, help="where the packed model goes (e.g. $OUT/demo)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/vela-train-demo"), help="scratch; the model dir is WORK/demo")
    ap.add_argument("--corpus", type=Path, default=None, help="directory of *.py files (default: the stdlib's)")
    ap.add_argument("--minutes", type=float, default=5.5, help="wall-clock budget of the whole script")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--vocab-size", type=int, default=8192)
    ap.add_argument("--hidden", type=int, default=384)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--head-dim", type=int, default=64)
    ap.add_argument("--intermediate", type=int, default=1024)
    ap.add_argument("--max-position", type=int, default=2048)
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=700)
    ap.add_argument("--warmup", type=int, default=150)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr", type=float, default=2e-4)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--eval-batches", type=int, default=8)
    ap.add_argument("--val-percent", type=int, default=3)
    ap.add_argument("--max-file-kib", type=int, default=1024)
    ap.add_argument("--ppl-seqs", type=int, default=4)
    ap.add_argument("--ppl-len", type=int, default=256)
    ap.add_argument("--gen-tokens", type=int, default=32)
    ap.add_argument("--part-mib", type=int, default=15)
    return ap.parse_args(argv)


def lr_at(step, args, total):
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    progress = min(1.0, (step - args.warmup) / max(1, total - args.warmup))
    return args.min_lr + 0.5 * (args.lr - args.min_lr) * (1.0 + math.cos(math.pi * progress))


def main():
    args = parse_args()
    t_start = time.time()
    deadline = t_start + args.minutes * 60
    command = "python3 scripts/train_demo/train.py " + " ".join(sys.argv[1:])

    import numpy as np
    import torch
    import torch.nn.functional as F
    import tokenizers
    import transformers
    from transformers import GenerationConfig, Qwen3Config, Qwen3ForCausalLM

    log(f"python {sys.version.split()[0]}, torch {torch.__version__}, transformers {transformers.__version__}, "
        f"tokenizers {tokenizers.__version__}, numpy {np.__version__}")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        log(f"device: {torch.cuda.get_device_name(0)}")
    else:
        log("WARNING: no CUDA device; training on the CPU will not fit the time budget")

    model_dir = args.work / "demo"
    if model_dir.exists():
        shutil.rmtree(model_dir)
    model_dir.mkdir(parents=True)

    # 1. corpus
    root = args.corpus or stdlib_dir()
    train_docs, val_docs, skipped = read_corpus(root, args.max_file_kib * 1024, args.val_percent)
    n_train_bytes = sum(len(t.encode()) for _, t in train_docs)
    n_val_bytes = sum(len(t.encode()) for _, t in val_docs)
    log(f"corpus {root}: {len(train_docs)} train files ({n_train_bytes / 2**20:.1f} MiB), {len(val_docs)} held-out "
        f"files ({n_val_bytes / 2**20:.2f} MiB), {skipped} skipped (not UTF-8, binary or > {args.max_file_kib} KiB)")

    # 2. tokenizer
    t0 = time.time()
    tok = train_tokenizer([t for _, t in train_docs], args.vocab_size)
    tok.save(str(model_dir / "tokenizer.json"))
    tok_json = json.loads((model_dir / "tokenizer.json").read_text())
    problems = check_vela_tokenizer_json(tok_json)
    if problems:
        sys.exit("tokenizer.json uses what Vela's loader does not support: " + "; ".join(problems))
    eot = tok.token_to_id(SPECIAL_TOKENS[0])
    special_ids = [tok.token_to_id(t) for t in SPECIAL_TOKENS]
    (model_dir / "tokenizer_config.json").write_text(
        json.dumps(tokenizer_config(special_ids), indent=2, ensure_ascii=False) + "\n")
    vocab_size = tok.get_vocab_size(with_added_tokens=True)
    log(f"tokenizer: byte-level BPE, {vocab_size} tokens, {len(tok_json['model']['merges'])} merges, "
        f"trained in {time.time() - t0:.1f} s")

    def encode(text):
        return tok.encode(text, add_special_tokens=False).ids

    def decode(ids):
        return tok.decode(ids, skip_special_tokens=False)

    # transformers must load the tokenizer directory as it is and agree with `tokenizers`.
    checks = {}
    try:
        from transformers import AutoTokenizer

        hf_tok = AutoTokenizer.from_pretrained(str(model_dir))
        sample = PROMPTS + EXTRA_TOKENIZER_TEXTS
        checks["transformers_tokenizer_matches"] = all(
            hf_tok.encode(s, add_special_tokens=False) == encode(s) for s in sample)
        rendered = hf_tok.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False,
                                              add_generation_prompt=True)
        checks["chat_template_renders_chatml"] = rendered == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        checks["transformers_eos_token_id"] = hf_tok.eos_token_id
    except Exception as e:  # noqa: BLE001 -- reported, not fatal: the tokenizer.json itself is what Vela reads
        checks["transformers_tokenizer_error"] = repr(e)
    log(f"tokenizer checks through transformers: {checks}")

    t0 = time.time()
    enc_train = tok.encode_batch([t for _, t in train_docs], add_special_tokens=False)
    enc_val = tok.encode_batch([t for _, t in val_docs], add_special_tokens=False)

    def stream(encodings):
        parts = []
        for e in encodings:
            parts.append(np.asarray(e.ids, dtype=np.int32))
            parts.append(np.asarray([eot], dtype=np.int32))
        return np.concatenate(parts)

    train_ids, val_ids = stream(enc_train), stream(enc_val)
    del enc_train, enc_val
    log(f"tokens: {len(train_ids):,} train ({n_train_bytes / len(train_ids):.2f} bytes/token), {len(val_ids):,} held out; "
        f"encoded in {time.time() - t0:.1f} s")

    # 3. model
    config = Qwen3Config(
        vocab_size=vocab_size,
        hidden_size=args.hidden,
        intermediate_size=args.intermediate,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_key_value_heads=args.kv_heads,
        head_dim=args.head_dim,
        max_position_embeddings=args.max_position,
        rms_norm_eps=1e-6,
        tie_word_embeddings=True,
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
        initializer_range=0.02,
        use_cache=True,
    )
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    model = Qwen3ForCausalLM(config)
    if model.lm_head.weight is not model.model.embed_tokens.weight:
        log("note: lm_head was not tied at construction; tying it to embed_tokens")
        model.lm_head.weight = model.model.embed_tokens.weight
    model.to(device)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: Qwen3ForCausalLM, {n_params:,} parameters ({n_params * 2 / 2**20:.1f} MiB in bf16), "
        f"attention {getattr(model.config, '_attn_implementation', '?')}")

    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8, **({"fused": True} if device == "cuda" else {}))

    train_t = torch.from_numpy(train_ids.astype(np.int64)).to(device)
    val_t = torch.from_numpy(val_ids.astype(np.int64)).to(device)
    T, B = args.seq_len, args.batch_size
    gen = torch.Generator(device="cpu")
    gen.manual_seed(args.seed)
    arange = torch.arange(T + 1, device=device)

    def batch_at(data, offsets):
        idx = offsets.to(device)[:, None] + arange[None, :]
        chunk = data[idx]
        return chunk[:, :-1], chunk[:, 1:]

    val_offsets = torch.linspace(0, len(val_ids) - T - 2, args.eval_batches * B).long().view(args.eval_batches, B)
    def loss_of(x, y):
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=(device == "cuda")):
            logits = model(input_ids=x, use_cache=False).logits
        return F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.reshape(-1))

    @torch.no_grad()
    def val_loss():
        model.eval()
        total = sum(loss_of(*batch_at(val_t, val_offsets[i])).item() for i in range(args.eval_batches))
        model.train()
        return total / args.eval_batches

    total_steps = args.steps
    reserve_s = 45.0  # saving, golden (CPU, fp32), packing
    model.train()
    t_train = time.time()
    running, last_val = None, float("nan")
    log(f"training: {total_steps} steps x {B} x {T} tokens = {total_steps * B * T / 1e6:.0f}M tokens "
        f"({total_steps * B * T / len(train_ids):.1f} epochs), lr {args.lr} -> {args.min_lr} cosine, warmup {args.warmup}")
    step = 0
    while step < total_steps:
        lr = lr_at(step, args, total_steps)
        for g in opt.param_groups:
            g["lr"] = lr
        offsets = torch.randint(0, len(train_ids) - T - 1, (B,), generator=gen)
        x, y = batch_at(train_t, offsets)
        loss = loss_of(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 10 == 0 or step == total_steps:
            loss_v = loss.item()  # syncs
            running = loss_v if running is None else 0.9 * running + 0.1 * loss_v
        if step == 40:  # time budget: cut the steps now (before the cosine's shape matters much)
            if device == "cuda":
                torch.cuda.synchronize()
            per_step = (time.time() - t_train) / step
            remaining = deadline - time.time() - reserve_s - (total_steps // args.eval_every) * 1.0
            affordable = step + int(remaining / per_step)
            log(f"step {step}: {per_step * 1000:.1f} ms/step ({B * T / per_step / 1e3:.0f}k tokens/s); "
                f"{total_steps} steps need ~{per_step * total_steps:.0f} s, {remaining + per_step * step:.0f} s left")
            if affordable < total_steps:
                total_steps = max(affordable, args.warmup + 100)
                log(f"WARNING: too slow for --minutes {args.minutes}: training {total_steps} steps instead of "
                    f"{args.steps}; to reproduce this run exactly, pass --steps {total_steps}")
        if step % args.eval_every == 0 or step == total_steps:
            last_val = val_loss()
            elapsed = time.time() - t_train
            log(f"step {step:5d}/{total_steps} | lr {lr:.2e} | train {running:.4f} | val {last_val:.4f} | "
                f"{elapsed:6.1f} s | {step * B * T / elapsed / 1e3:.0f}k tok/s")
    train_seconds = time.time() - t_train
    final_train = running

    # 4. save (bf16) and the golden numbers from what was saved
    model = model.to(torch.bfloat16).eval()
    model.config.use_cache = True
    model.generation_config = GenerationConfig(bos_token_id=eot, eos_token_id=eot, pad_token_id=eot)
    model.save_pretrained(str(model_dir))
    model.generation_config.save_pretrained(str(model_dir))
    saved = sorted(p.name for p in model_dir.iterdir())
    log(f"saved {model_dir}: {saved}; model.safetensors {(model_dir / 'model.safetensors').stat().st_size / 2**20:.1f} MiB")
    try:
        from safetensors import safe_open

        with safe_open(str(model_dir / "model.safetensors"), framework="pt") as f:
            keys = list(f.keys())
            dtypes = {str(f.get_tensor(k).dtype) for k in keys}
        log(f"safetensors: {len(keys)} tensors, dtypes {dtypes}, lm_head stored: {'lm_head.weight' in keys}")
    except Exception as e:  # noqa: BLE001
        log(f"note: could not inspect model.safetensors: {e!r}")

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    ref = Qwen3ForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32, attn_implementation="eager")
    ref = ref.float().eval()  # whatever from_pretrained chose, fp32 math from the bf16 values
    assert next(ref.parameters()).dtype == torch.float32

    @torch.no_grad()
    def logits_fn(ids):
        return ref(input_ids=torch.tensor([ids], dtype=torch.long), use_cache=False).logits[0].float()

    meta = {
        "model": "demo",
        "dtype_weights": "bfloat16",
        "dtype_reference": "float32",
        "attn": "eager",
        "device_reference": "cpu",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "python": sys.version.split()[0],
        "corpus": f"{root} (*.py, sorted; {len(train_docs)} train files, {len(val_docs)} held out)",
        "seed": args.seed,
        "steps": total_steps,
        "batch_size": B,
        "seq_len": T,
        "parameters": n_params,
        "vocab_size": vocab_size,
        "train_tokens": int(len(train_ids)),
        "heldout_tokens": int(len(val_ids)),
        "final_train_loss": final_train,
        "final_val_loss": last_val,
        "train_seconds": train_seconds,
        "checks": checks,
        "command": command,
        "config": {k: getattr(config, k) for k in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                                                    "num_key_value_heads", "head_dim", "intermediate_size")},
        "note": "perplexity: the mean NLL of sequences[i][1:] given the preceding tokens (no BOS), exp'd; "
                "cases: greedy by full recompute, steps[i] are the logits that produced generated[i]; "
                "tokenizer_cases: HF tokenizers, no special tokens added",
    }
    golden = make_golden(logits_fn, encode, decode, val_ids, val_docs, args, meta)
    meta["heldout_perplexity"] = golden["perplexity"]["perplexity"]
    (model_dir / "golden.json").write_text(json.dumps(golden, indent=1, ensure_ascii=False) + "\n")
    (model_dir / "README.md").write_text(model_card(meta))

    # 5. pack
    args.out.mkdir(parents=True, exist_ok=True)
    log(f"total {time.time() - t_start:.0f} s")
    pack(model_dir, args.out, args.part_mib * 2**20)
    (args.out / "train_log.txt").write_text("\n".join(LOG_LINES) + "\n")
    print(f"install here with: scripts/train_demo/install.sh {args.out}", flush=True)


if __name__ == "__main__":
    main()
