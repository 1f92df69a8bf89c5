#!/usr/bin/env python3
"""PyTorch + PEFT yardstick for the multi-LoRA generation benchmark.

Builds a ~105M-parameter Llama (vocab 32000, hidden 768, intermediate 2048, 8 layers,
12 heads, 4 KV heads, untied embeddings) with random weights, optionally K random rank-r
LoRA adapters on all 7 projections, and times one greedy generate() of exactly --gen new
tokens for a batch of random --prompt-token prompts (no padding).

  base:  the plain model, no adapters
  one:   one adapter, active for every row
  mixed: K adapters, row i on adapter i % K via generate(..., adapter_names=[...])

Prints exactly one JSON line on stdout. Run with the fixture venv, e.g.
  /work/pyref/bin/python benches/peft_generate.py --mode mixed --batch 16 --gen 16
"""

import argparse
import json
import os
import sys
import time
import warnings

warnings.filterwarnings("ignore")

import torch
import transformers
import peft
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def build_model(dtype):
    cfg = LlamaConfig(
        vocab_size=32000,
        hidden_size=768,
        intermediate_size=2048,
        num_hidden_layers=8,
        num_attention_heads=12,
        num_key_value_heads=4,
        max_position_embeddings=1024,
        tie_word_embeddings=False,
        rms_norm_eps=1e-5,
        rope_parameters={"rope_theta": 10000.0, "rope_type": "default"},
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=None,
    )
    # Build on the meta device, then materialise with one cheap random fill per tensor:
    # no default init pass, no download.
    with torch.device("meta"):
        model = LlamaForCausalLM(cfg)
    model.to_empty(device="cpu")
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim >= 2:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.02)
            else:
                p.fill_(1.0)
        # non-persistent buffers (rotary inv_freq) were left empty by to_empty: recompute them
        model.model.rotary_emb = LlamaRotaryEmbedding(cfg)
    model = model.to(dtype)
    model.eval()
    return model


def add_adapters(model, k, rank, dtype):
    cfg = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=TARGETS, lora_dropout=0.0, bias="none",
                     task_type="CAUSAL_LM")
    pm = get_peft_model(model, cfg, adapter_name="a0")
    for i in range(1, k):
        pm.add_adapter(f"a{i}", cfg)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in pm.named_parameters():
            if "lora_A" in name or "lora_B" in name:  # PEFT starts B at zero: make every adapter non-trivial
                p.copy_((torch.randn(p.shape, generator=gen) * 0.02).to(p.dtype))
    pm.set_adapter("a0")
    pm.eval()
    return pm


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["base", "one", "mixed"], required=True)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--gen", type=int, default=128)
    ap.add_argument("--adapters", type=int, default=None, help="distinct adapters in mixed mode (default: batch)")
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    dtype = getattr(torch, args.dtype)

    if args.mode == "base":
        k = 0
    elif args.mode == "one":
        k = 1
    else:
        k = args.adapters if args.adapters is not None else args.batch
        if k < 1:
            sys.exit("--adapters must be >= 1")

    model = build_model(dtype)
    if k > 0:
        model = add_adapters(model, k, args.rank, dtype)

    gen = torch.Generator().manual_seed(2)
    prompts = torch.randint(0, 32000, (args.batch, args.prompt), generator=gen, dtype=torch.int64)

    extra = {}
    if args.mode == "mixed":
        extra["adapter_names"] = [f"a{i % k}" for i in range(args.batch)]

    def run(ids, n):
        with torch.inference_mode():
            out = model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                do_sample=False,
                num_beams=1,
                max_new_tokens=n,
                min_new_tokens=n,
                eos_token_id=None,
                pad_token_id=0,
                temperature=None,
                top_p=None,
                top_k=None,
                **extra,
            )
        assert out.shape == (ids.shape[0], ids.shape[1] + n), out.shape
        return out

    run(prompts[:, : min(8, args.prompt)], 2)  # warm-up

    t0 = time.perf_counter()
    run(prompts, args.gen)
    seconds = time.perf_counter() - t0

    print(json.dumps({
        "mode": args.mode,
        "batch": args.batch,
        "prompt": args.prompt,
        "gen": args.gen,
        "adapters": k,
        "seconds": round(seconds, 4),
        "tokens_per_s": round(args.batch * args.gen / seconds, 3),
        "torch": torch.__version__,
        "peft": peft.__version__,
        "threads": args.threads,
    }))


if __name__ == "__main__":
    main()
