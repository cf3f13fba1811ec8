"""peft-bench's PyTorch peer for `deno task perf --peer`: the perf workloads on the CPU.

The workload (the same as scripts/perf.ts builds with peft-bench's own modules): a Llama-family decoder
(RMSNorm, RoPE, grouped-query attention, SwiGLU, tied embedding head; Qwen2's q/k/v biases and Qwen3's
per-head q/k RMSNorm when asked), a batch of random tokens, LoRA (B = 0 at init) on the target
projections, AdamW lr 1e-3 over the LoRA factors only. Measured: a train step (forward, cross-entropy,
backward, update) and a frozen forward to logits. The defaults are the reference workload: dim 128,
4 layers, 4 heads / 2 KV heads, hidden 384, vocabulary 4096, RMSNorm eps 1e-5, RoPE on adjacent pairs
base 10000, batch 16 x 64, LoRA rank 8, alpha 16 on q and v. perf passes a named model's shapes
(`--workload qwen3-0.6b`) as flags. `--dtype bfloat16` stores the frozen weights in bfloat16 and
computes in bfloat16 autocast (PyTorch's CPU mixed precision); the default is float32.

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

DEFAULTS = dict(dim=128, layers=4, heads=4, kv_heads=2, head_dim=0, hidden=384, vocab=4096, seq=64, batch=16,
                rank=8, alpha=16, steps=20, warmup=3, threads=2, seed=0)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name, default in DEFAULTS.items():
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=default)
    parser.add_argument("--norm-eps", type=float, default=1e-5)
    parser.add_argument("--rope-theta", type=float, default=10000.0)
    parser.add_argument("--rope-style", choices=["interleaved", "half"], default="interleaved")
    parser.add_argument("--qk-norm", action="store_true", help="per-head RMSNorm on q and k (Qwen3)")
    parser.add_argument("--qkv-bias", action="store_true", help="biases on q, k, v (Qwen2)")
    parser.add_argument("--targets", default="q,v", help="LoRA targets among q,k,v,o,gate,up,down")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    a = parser.parse_args()
    a.head_dim = a.head_dim or a.dim // a.heads
    a.targets = set(a.targets.split(","))
    return a


def rms_norm(x, weight, eps):
    return weight * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)


class Rope:
    """Rotary embedding: pairs (2i, 2i+1) (llama2.c, "interleaved") or (i, i + d/2) (Hugging Face, "half")."""

    def __init__(self, head_dim, seq, theta, style):
        inv_freq = theta ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
        angles = torch.outer(torch.arange(seq, dtype=torch.float32), inv_freq)
        self.cos, self.sin, self.style = angles.cos(), angles.sin(), style

    def __call__(self, x):  # x: batch, heads, seq, head_dim
        if self.style == "half":
            first, second = x.chunk(2, dim=-1)
            return torch.cat((first * self.cos - second * self.sin, first * self.sin + second * self.cos), dim=-1)
        even, odd = x[..., 0::2], x[..., 1::2]
        rotated_even = even * self.cos - odd * self.sin
        rotated_odd = even * self.sin + odd * self.cos
        return torch.stack((rotated_even, rotated_odd), dim=-1).flatten(-2)


class Frozen:
    """A frozen weight W (out, in) and optional bias: x W^T + b."""

    def __init__(self, weight, bias=None):
        self.weight, self.bias = weight, bias

    def __call__(self, x):
        y = x @ self.weight.T
        return y if self.bias is None else y + self.bias


class LoraLinear(torch.nn.Module):
    """A frozen layer plus scale * B A, with A ~ small random and B = 0 (PEFT's init); A, B in float32."""

    def __init__(self, base, rank, scale):
        super().__init__()
        self.base = base
        self.lora_a = torch.nn.Parameter(torch.randn(rank, base.weight.shape[1]) * 0.02)
        self.lora_b = torch.nn.Parameter(torch.zeros(base.weight.shape[0], rank))
        self.scale = scale
        self.enabled = True

    def forward(self, x):
        y = self.base(x)
        if self.enabled:
            y = y + (x @ self.lora_a.T) @ self.lora_b.T * self.scale
        return y


class Decoder(torch.nn.Module):
    def __init__(self, a):
        super().__init__()
        self.a = a
        self.head_dim = a.head_dim
        q_dim, kv_dim = a.heads * self.head_dim, a.kv_heads * self.head_dim
        scale = a.alpha / a.rank
        dtype = getattr(torch, a.dtype)

        def frozen(*shape):
            return (torch.randn(*shape) * 0.02).to(dtype)

        def layer(out_dim, in_dim, name, bias=False):
            base = Frozen(frozen(out_dim, in_dim), torch.zeros(out_dim, dtype=dtype) if bias else None)
            return LoraLinear(base, a.rank, scale) if name in a.targets else base

        self.embedding = frozen(a.vocab, a.dim)
        self.final_norm = torch.ones(a.dim)
        self.blocks = []
        for _ in range(a.layers):
            self.blocks.append(dict(
                attn_norm=torch.ones(a.dim), ffn_norm=torch.ones(a.dim),
                q_norm=torch.ones(self.head_dim) if a.qk_norm else None,
                k_norm=torch.ones(self.head_dim) if a.qk_norm else None,
                q=layer(q_dim, a.dim, "q", a.qkv_bias), k=layer(kv_dim, a.dim, "k", a.qkv_bias),
                v=layer(kv_dim, a.dim, "v", a.qkv_bias), o=layer(a.dim, q_dim, "o"),
                gate=layer(a.hidden, a.dim, "gate"), up=layer(a.hidden, a.dim, "up"),
                down=layer(a.dim, a.hidden, "down")))
        self.adapters = torch.nn.ModuleList(
            [m for b in self.blocks for m in b.values() if isinstance(m, LoraLinear)])
        self.rope = Rope(self.head_dim, a.seq, a.rope_theta, a.rope_style)
        self.causal = torch.full((a.seq, a.seq), float("-inf")).triu(1)

    def set_lora(self, enabled):
        for m in self.adapters:
            m.enabled = enabled

    def attention(self, b, h):
        a, n, t = self.a, h.shape[0], h.shape[1]
        q = b["q"](h).view(n, t, a.heads, self.head_dim).transpose(1, 2)
        k = b["k"](h).view(n, t, a.kv_heads, self.head_dim).transpose(1, 2)
        v = b["v"](h).view(n, t, a.kv_heads, self.head_dim).transpose(1, 2)
        if b["q_norm"] is not None:
            q, k = rms_norm(q, b["q_norm"], a.norm_eps), rms_norm(k, b["k_norm"], a.norm_eps)
        q, k = self.rope(q), self.rope(k)
        group = a.heads // a.kv_heads
        k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim) + self.causal
        mixed = (scores.softmax(-1) @ v).transpose(1, 2).reshape(n, t, a.heads * self.head_dim)
        return b["o"](mixed)

    def forward(self, ids):
        a = self.a
        x = self.embedding[ids].float()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.dtype == "bfloat16"):
            for b in self.blocks:
                x = x + self.attention(b, rms_norm(x, b["attn_norm"], a.norm_eps))
                h = rms_norm(x, b["ffn_norm"], a.norm_eps)
                x = x + b["down"](F.silu(b["gate"](h)) * b["up"](h))
            return (rms_norm(x, self.final_norm, a.norm_eps) @ self.embedding.T).float()


def forward_flops_per_token(a):
    """Matmul FLOPs of one forward per token, the formula scripts/perf.ts documents."""
    q_dim, kv_dim = a.heads * a.head_dim, a.kv_heads * a.head_dim
    per_layer = 2 * q_dim * a.dim + 2 * kv_dim * a.dim + 3 * a.hidden * a.dim
    return 2 * (a.layers * per_layer + a.vocab * a.dim) + 4 * a.layers * a.seq * q_dim


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
        torch=torch.__version__, threads=torch.get_num_threads(), dtype=a.dtype, tokens=tokens,
        train_step_ms=round(train_s * 1e3, 2), train_tokens_per_s=round(tokens / train_s),
        infer_tokens_per_s=round(tokens / infer_s), fwd_flops_per_token=flops,
        infer_gflops=round(flops * tokens / infer_s / 1e9, 2))))


if __name__ == "__main__":
    main()
