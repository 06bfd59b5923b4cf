#!/usr/bin/env python3
"""A CPU smoke test of train.py's corpus, golden and packing code, and of Vela's
tests/demo against what they produce, without `tokenizers` or `transformers`
(only torch, e.g. Debian's python3-torch):

    python3 scripts/train_demo/smoke_local.py --out /tmp/demo-smoke
    VELA_DEMO_MODEL=/tmp/demo-smoke/unpacked/demo build/bin/test_demo_model

It stands in a byte-level tokenizer without merges (every byte a token, the same
special tokens and pre-tokenizer) and a minimal Qwen3 written in plain torch with
HF's parameter names, trains it for a few seconds, and writes the same files as
train.py (the model is tiny and its text meaningless). What it cannot check is the
use of the tokenizers/transformers APIs; train.py checks those on the GPU machine.
"""
import argparse
import json
import math
import re
import struct
import sys
import tarfile
import time
import unicodedata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train  # noqa: E402


def bytes_to_unicode():
    """GPT-2's byte -> printable character table (ByteLevel)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


class ByteTokenizer:
    """Ids 0..2 the special tokens, 3..258 the bytes."""

    def __init__(self):
        self.byte_char = bytes_to_unicode()
        self.special = {t: i for i, t in enumerate(train.SPECIAL_TOKENS)}
        self.vocab_size = len(self.special) + 256
        self.split = re.compile("(" + "|".join(re.escape(t) for t in train.SPECIAL_TOKENS) + ")")

    def encode(self, text):
        ids = []
        for part in self.split.split(text):
            if part in self.special:
                ids.append(self.special[part])
            elif part:
                ids.extend(3 + b for b in unicodedata.normalize("NFC", part).encode())
        return ids

    def decode(self, ids):
        out = bytearray()
        for i in ids:
            if i < 3:
                out += train.SPECIAL_TOKENS[i].encode()
            elif i < self.vocab_size:
                out.append(i - 3)
        return out.decode("utf-8", errors="replace")

    def tokenizer_json(self):
        vocab = dict(self.special)
        vocab.update({self.byte_char[b]: 3 + b for b in range(256)})
        level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
        return {
            "version": "1.0", "truncation": None, "padding": None,
            "added_tokens": [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                              "normalized": False, "special": True} for t, i in self.special.items()],
            "normalizer": {"type": "NFC"},
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": train.SPLIT_REGEX}, "behavior": "Isolated", "invert": False},
                level]},
            "post_processor": level,
            "decoder": level,
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                      "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                      "vocab": vocab, "merges": []},
        }


def make_qwen3(torch, vocab, hidden, layers, heads, kv_heads, head_dim, inter, theta=1e6, eps=1e-6):
    nn = torch.nn

    class Qwen3(nn.Module):
        """HF Qwen3ForCausalLM's math and parameter names, tied embeddings."""

        def __init__(self):
            super().__init__()
            self.embed_tokens = nn.Embedding(vocab, hidden)
            self.layers = nn.ModuleList()
            for _ in range(layers):
                layer = nn.Module()
                attn = nn.Module()
                attn.q_proj = nn.Linear(hidden, heads * head_dim, bias=False)
                attn.k_proj = nn.Linear(hidden, kv_heads * head_dim, bias=False)
                attn.v_proj = nn.Linear(hidden, kv_heads * head_dim, bias=False)
                attn.o_proj = nn.Linear(heads * head_dim, hidden, bias=False)
                attn.q_norm = nn.Module()
                attn.q_norm.weight = nn.Parameter(torch.ones(head_dim))
                attn.k_norm = nn.Module()
                attn.k_norm.weight = nn.Parameter(torch.ones(head_dim))
                mlp = nn.Module()
                mlp.gate_proj = nn.Linear(hidden, inter, bias=False)
                mlp.up_proj = nn.Linear(hidden, inter, bias=False)
                mlp.down_proj = nn.Linear(inter, hidden, bias=False)
                layer.self_attn, layer.mlp = attn, mlp
                layer.input_layernorm = nn.Module()
                layer.input_layernorm.weight = nn.Parameter(torch.ones(hidden))
                layer.post_attention_layernorm = nn.Module()
                layer.post_attention_layernorm.weight = nn.Parameter(torch.ones(hidden))
                self.layers.append(layer)
            self.norm = nn.Module()
            self.norm.weight = nn.Parameter(torch.ones(hidden))
            for p in self.parameters():
                if p.dim() == 2:
                    nn.init.normal_(p, std=0.02)

        @staticmethod
        def rms(x, w):
            xf = x.float()
            return w * (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps))

        def forward(self, ids):  # ids [B, T] -> logits [B, T, V]
            B, T = ids.shape
            x = self.embed_tokens(ids)
            inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
            freqs = torch.arange(T, dtype=torch.float32)[:, None] * inv[None, :]
            emb = torch.cat([freqs, freqs], -1)
            cos, sin = emb.cos(), emb.sin()

            def rope(t):
                t1, t2 = t[..., : head_dim // 2], t[..., head_dim // 2:]
                return t * cos + torch.cat([-t2, t1], -1) * sin

            mask = torch.full((T, T), float("-inf")).triu(1)
            for layer in self.layers:
                a = layer.self_attn
                h = self.rms(x, layer.input_layernorm.weight)
                q = self.rms(a.q_proj(h).view(B, T, heads, head_dim), a.q_norm.weight).transpose(1, 2)
                k = self.rms(a.k_proj(h).view(B, T, kv_heads, head_dim), a.k_norm.weight).transpose(1, 2)
                v = a.v_proj(h).view(B, T, kv_heads, head_dim).transpose(1, 2)
                q, k = rope(q), rope(k)
                k = k.repeat_interleave(heads // kv_heads, dim=1)
                v = v.repeat_interleave(heads // kv_heads, dim=1)
                w = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(head_dim) + mask, dim=-1)
                o = (w @ v).transpose(1, 2).reshape(B, T, heads * head_dim)
                x = x + a.o_proj(o)
                h = self.rms(x, layer.post_attention_layernorm.weight)
                m = layer.mlp
                x = x + m.down_proj(torch.nn.functional.silu(m.gate_proj(h)) * m.up_proj(h))
            x = self.rms(x, self.norm.weight)
            return x @ self.embed_tokens.weight.T

    return Qwen3()


def write_safetensors(torch, path, named):
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in named:
        data = t.detach().to(torch.bfloat16).contiguous().view(torch.int16).numpy().tobytes()
        header[name] = {"dtype": "BF16", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)


def read_safetensors_bf16(torch, path):
    raw = Path(path).read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        t = torch.frombuffer(bytearray(raw[8 + n + b: 8 + n + e]), dtype=torch.int16).view(torch.bfloat16)
        out[name] = t.reshape(info["shape"]).float()
    return out


def main():
    import torch

    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--max-files", type=int, default=150)
    a = ap.parse_args()
    args = train.parse_args(["--out", str(a.out / "packed"), "--gen-tokens", "12", "--ppl-len", "128",
                             "--part-mib", "1"])
    torch.manual_seed(0)
    train_docs, val_docs, skipped = train.read_corpus(train.stdlib_dir(), 256 * 1024, 10)
    train_docs, val_docs = train_docs[: a.max_files], val_docs[:10]
    tok = ByteTokenizer()
    model_dir = a.out / "work" / "demo"
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / "tokenizer.json").write_text(json.dumps(tok.tokenizer_json(), ensure_ascii=False))
    (model_dir / "tokenizer_config.json").write_text(json.dumps(train.tokenizer_config([0, 1, 2]), indent=2))
    stream = lambda docs: [i for _, t in docs for i in tok.encode(t) + [0]]  # noqa: E731
    train_ids, val_ids = stream(train_docs), stream(val_docs)
    print(f"smoke: {len(train_ids)} train tokens, {len(val_ids)} held out")

    cfg = dict(vocab=320, hidden=64, layers=2, heads=4, kv_heads=2, head_dim=32, inter=128)
    model = make_qwen3(torch, **cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    data = torch.tensor(train_ids)
    T, B = 128, 8
    t0 = time.time()
    for step in range(a.steps):
        off = torch.randint(0, len(data) - T - 1, (B,))
        chunk = torch.stack([data[o: o + T + 1] for o in off])
        loss = torch.nn.functional.cross_entropy(model(chunk[:, :-1]).reshape(-1, cfg["vocab"]), chunk[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 20 == 0 or step == a.steps - 1:
            print(f"smoke: step {step} loss {loss.item():.3f}")
    named = [(("model." if not n.startswith("lm_head") else "") + n, p) for n, p in model.named_parameters()]
    write_safetensors(torch, model_dir / "model.safetensors", named)
    (model_dir / "config.json").write_text(json.dumps({
        "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "attention_bias": False,
        "bos_token_id": 0, "eos_token_id": 0, "pad_token_id": 0, "head_dim": cfg["head_dim"], "hidden_act": "silu",
        "hidden_size": cfg["hidden"], "intermediate_size": cfg["inter"], "max_position_embeddings": 2048,
        "num_attention_heads": cfg["heads"], "num_hidden_layers": cfg["layers"], "num_key_value_heads": cfg["kv_heads"],
        "rms_norm_eps": 1e-6, "rope_theta": 1e6, "tie_word_embeddings": True, "vocab_size": cfg["vocab"],
        "dtype": "bfloat16"}, indent=2))
    (model_dir / "generation_config.json").write_text(json.dumps({"bos_token_id": 0, "eos_token_id": 0}))

    # Golden from the saved bf16 weights, in fp32.
    ref = make_qwen3(torch, **cfg)
    state = read_safetensors_bf16(torch, model_dir / "model.safetensors")
    ref.load_state_dict({k[len("model."):]: v for k, v in state.items()})
    ref.eval()

    @torch.no_grad()
    def logits_fn(ids):
        return ref(torch.tensor([ids]))[0]

    meta = {"model": "demo-smoke", "parameters": sum(p.numel() for p in model.parameters()), "steps": a.steps,
            "train_seconds": time.time() - t0}
    golden = train.make_golden(logits_fn, tok.encode, tok.decode, val_ids, val_docs, args, meta)
    (model_dir / "golden.json").write_text(json.dumps(golden, indent=1, ensure_ascii=False))
    files = train.pack(model_dir, args.out, args.part_mib * 2**20)
    unpacked = a.out / "unpacked"
    unpacked.mkdir(exist_ok=True)
    import io

    blob = b"".join(f.read_bytes() for f in sorted(files))
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        tar.extractall(unpacked)
    print(f"smoke: model in {unpacked / 'demo'}; run  VELA_DEMO_MODEL={unpacked / 'demo'} build/bin/test_demo_model")


if __name__ == "__main__":
    main()
