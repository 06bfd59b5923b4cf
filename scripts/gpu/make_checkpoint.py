#!/usr/bin/env python3
"""On the GPU machine: a safetensors checkpoint of a model shape (random bf16
weights), to time Vela's checkpoint loading at real sizes where no real model can
be downloaded.  usage: make_checkpoint.py CONFIG_DIR OUT_DIR"""
import json
import os
import shutil
import sys
import time

import torch
from safetensors.torch import save_file


def main():
    cfg_dir, out = sys.argv[1], sys.argv[2]
    c = json.load(open(os.path.join(cfg_dir, "config.json")))
    H, I, L, V = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"], c["vocab_size"]
    nq, nk = c["num_attention_heads"], c["num_key_value_heads"]
    hd = c.get("head_dim") or H // nq
    shapes = {"model.embed_tokens.weight": (V, H), "model.norm.weight": (H,)}
    if not c.get("tie_word_embeddings", False):
        shapes["lm_head.weight"] = (V, H)
    for l in range(L):
        p = f"model.layers.{l}."
        shapes.update({p + "input_layernorm.weight": (H,), p + "post_attention_layernorm.weight": (H,),
                       p + "self_attn.q_proj.weight": (nq * hd, H), p + "self_attn.k_proj.weight": (nk * hd, H),
                       p + "self_attn.v_proj.weight": (nk * hd, H), p + "self_attn.o_proj.weight": (H, nq * hd),
                       p + "mlp.gate_proj.weight": (I, H), p + "mlp.up_proj.weight": (I, H),
                       p + "mlp.down_proj.weight": (H, I)})
    t0 = time.time()
    g = torch.Generator(device="cuda").manual_seed(0)
    tensors = {n: (torch.randn(s, generator=g, device="cuda", dtype=torch.float32) * 0.02).to(torch.bfloat16).cpu()
               for n, s in shapes.items()}
    os.makedirs(out, exist_ok=True)
    save_file(tensors, os.path.join(out, "model.safetensors"))
    shutil.copy(os.path.join(cfg_dir, "config.json"), out)
    size = os.path.getsize(os.path.join(out, "model.safetensors"))
    print(f"wrote {out}/model.safetensors: {len(shapes)} tensors, {size / 2**30:.2f} GiB in {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
