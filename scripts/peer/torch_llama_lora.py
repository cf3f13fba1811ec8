"""peft-bench's PyTorch peer for `deno task perf --peer`: the reference workload on the CPU.

The workload (the same as scripts/perf.ts builds with peft-bench's own modules): a Llama-family decoder
(RMSNorm eps 1e-5, RoPE on adjacent pairs base 10000, grouped-query attention, SwiGLU, tied embedding
head), dim 128, 4 layers, 4 heads / 2 KV heads, hidden 384, vocabulary 4096, a batch of 16 x 64 random
tokens; LoRA rank 8, alpha 16 (scale 2) on q and v; AdamW lr 1e-3 over the LoRA factors only. Measured:
a train step (forward, cross-entropy, backward, update) and a frozen forward to logits.

Run with Debian's PyTorch (`apt-get install python3-torch libopenblas0-pthread`; without OpenBLAS,
Debian's PyTorch falls back to the reference BLAS):
    /usr/bin/python3 scripts/peer/torch_llama_lora.py [--threads 2] [--dim 128 ...]
Prints one JSON object: torch version, threads, tokens per batch, train step ms, train and inference
tokens/s, counted forward FLOPs per token and inference GFLOP/s.
"""
import argparse
import json
import math
import time

import torch
import torch.nn.functional as F

DEFAULTS = dict(dim=128, layers=4, heads=4, kv_heads=2, hidden=384, vocab=4096, seq=64, batch=16,
                rank=8, alpha=16, steps=20, warmup=3, threads=2, seed=0)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name, default in DEFAULTS.items():
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=default)
    return parser.parse_args()


def rms_norm(x, weight):
    return weight * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5)


class Rope:
    """Rotary embedding on adjacent pairs (2i, 2i+1), as llama2.c and peft-bench's interleaved style."""

    def __init__(self, head_dim, seq):
        inv_freq = 10000.0 ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
        angles = torch.outer(torch.arange(seq, dtype=torch.float32), inv_freq)
        self.cos, self.sin = angles.cos(), angles.sin()

    def __call__(self, x):  # x: batch, heads, seq, head_dim
        even, odd = x[..., 0::2], x[..., 1::2]
        rotated_even = even * self.cos - odd * self.sin
        rotated_odd = even * self.sin + odd * self.cos
        return torch.stack((rotated_even, rotated_odd), dim=-1).flatten(-2)


class LoraLinear(torch.nn.Module):
    """A frozen weight W (out, in) plus scale * B A, with A ~ small random and B = 0 (PEFT's init)."""

    def __init__(self, weight, rank, scale):
        super().__init__()
        self.weight = weight
        self.lora_a = torch.nn.Parameter(torch.randn(rank, weight.shape[1]) * 0.02)
        self.lora_b = torch.nn.Parameter(torch.zeros(weight.shape[0], rank))
        self.scale = scale
        self.enabled = True

    def forward(self, x):
        y = x @ self.weight.T
        if self.enabled:
            y = y + (x @ self.lora_a.T) @ self.lora_b.T * self.scale
        return y


class Decoder(torch.nn.Module):
    def __init__(self, a):
        super().__init__()
        self.a = a
        self.head_dim = a.dim // a.heads
        kv_dim = a.kv_heads * self.head_dim
        scale = a.alpha / a.rank

        def frozen(*shape):
            return torch.randn(*shape) * 0.02

        self.embedding = frozen(a.vocab, a.dim)
        self.final_norm = torch.ones(a.dim)
        self.blocks = []
        for _ in range(a.layers):
            self.blocks.append(dict(
                attn_norm=torch.ones(a.dim), ffn_norm=torch.ones(a.dim),
                q=LoraLinear(frozen(a.dim, a.dim), a.rank, scale), k=frozen(kv_dim, a.dim),
                v=LoraLinear(frozen(kv_dim, a.dim), a.rank, scale), o=frozen(a.dim, a.dim),
                gate=frozen(a.hidden, a.dim), up=frozen(a.hidden, a.dim), down=frozen(a.dim, a.hidden)))
        self.adapters = torch.nn.ModuleList([m for b in self.blocks for m in (b["q"], b["v"])])
        self.rope = Rope(self.head_dim, a.seq)
        self.causal = torch.full((a.seq, a.seq), float("-inf")).triu(1)

    def set_lora(self, enabled):
        for m in self.adapters:
            m.enabled = enabled

    def attention(self, b, h):
        a, n, t = self.a, h.shape[0], h.shape[1]
        q = b["q"](h).view(n, t, a.heads, self.head_dim).transpose(1, 2)
        k = (h @ b["k"].T).view(n, t, a.kv_heads, self.head_dim).transpose(1, 2)
        v = b["v"](h).view(n, t, a.kv_heads, self.head_dim).transpose(1, 2)
        q, k = self.rope(q), self.rope(k)
        group = a.heads // a.kv_heads
        k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim) + self.causal
        mixed = (scores.softmax(-1) @ v).transpose(1, 2).reshape(n, t, a.dim)
        return mixed @ b["o"].T

    def forward(self, ids):
        x = self.embedding[ids]
        for b in self.blocks:
            x = x + self.attention(b, rms_norm(x, b["attn_norm"]))
            h = rms_norm(x, b["ffn_norm"])
            x = x + (F.silu(h @ b["gate"].T) * (h @ b["up"].T)) @ b["down"].T
        return rms_norm(x, self.final_norm) @ self.embedding.T


def forward_flops_per_token(a):
    """Matmul FLOPs of one forward per token, the formula scripts/perf.ts documents."""
    kv_dim = a.kv_heads * (a.dim // a.heads)
    per_layer = 2 * a.dim * a.dim + 2 * kv_dim * a.dim + 3 * a.hidden * a.dim
    return 2 * (a.layers * per_layer + a.vocab * a.dim) + 4 * a.layers * a.seq * a.dim


def seconds_per_call(fn, warmup, steps):
    for _ in range(warmup):
        fn()
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - start) / steps


def main():
    a = parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    model = Decoder(a)
    ids = torch.randint(0, a.vocab, (a.batch, a.seq))
    targets = torch.randint(0, a.vocab, (a.batch * a.seq,))
    optimizer = torch.optim.AdamW(model.adapters.parameters(), lr=1e-3)

    def train_step():
        optimizer.zero_grad()
        loss = F.cross_entropy(model(ids).view(-1, a.vocab), targets)
        loss.backward()
        optimizer.step()

    model.set_lora(True)
    train_s = seconds_per_call(train_step, a.warmup, a.steps)
    model.set_lora(False)
    with torch.no_grad():
        infer_s = seconds_per_call(lambda: model(ids), a.warmup, a.steps)
    tokens = a.batch * a.seq
    flops = forward_flops_per_token(a)
    print(json.dumps(dict(
        torch=torch.__version__, threads=torch.get_num_threads(), tokens=tokens,
        train_step_ms=round(train_s * 1e3, 2), train_tokens_per_s=round(tokens / train_s),
        infer_tokens_per_s=round(tokens / infer_s), fwd_flops_per_token=flops,
        infer_gflops=round(flops * tokens / infer_s / 1e9, 2))))


if __name__ == "__main__":
    main()
