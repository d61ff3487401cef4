#!/usr/bin/python3
"""Independent reference for the sequence kernels (tests/test_seq_ops.c).

Reads cases written by the C test, computes outputs and gradients with
PyTorch (autograd for the backward pass), writes them back.

File format (little endian), a sequence of cases:
  kind: 16 bytes NUL-padded; nparams int32, params int32[nparams];
  narrays int32, then per array: name 16 bytes, n int64, float32[n].
The answer file holds, per case in order: narrays int32 and the arrays.

Keras conventions are rebuilt here from their definitions, not from
ctrain's code: LSTM gates i, f, c, o (PyTorch's i, f, g, o order); GRU
gates z, r, h (PyTorch's are r, z, n; reset_after=True is PyTorch's
formula, reset_after=False is written out by hand); masked steps keep the
state; go_backwards reverses the input and returns outputs in processing
order; attention adds (1 - mask) * -1e9 before the softmax.
"""
import struct, sys
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)


def read_cases(path):
    data = open(path, "rb").read()
    pos = 0
    cases = []
    while pos < len(data):
        kind = data[pos:pos + 16].rstrip(b"\0").decode(); pos += 16
        (np_,) = struct.unpack_from("<i", data, pos); pos += 4
        params = list(struct.unpack_from("<%di" % np_, data, pos)); pos += 4 * np_
        (na,) = struct.unpack_from("<i", data, pos); pos += 4
        arrays = {}
        for _ in range(na):
            name = data[pos:pos + 16].rstrip(b"\0").decode(); pos += 16
            (n,) = struct.unpack_from("<q", data, pos); pos += 8
            arrays[name] = torch.tensor(struct.unpack_from("<%df" % n, data, pos), dtype=torch.float64); pos += 4 * n
        cases.append((kind, params, arrays))
    return cases


def write_arrays(f, arrays):
    f.write(struct.pack("<i", len(arrays)))
    for name, t in arrays.items():
        v = t.detach().reshape(-1).to(torch.float32).tolist()
        f.write(name.encode().ljust(16, b"\0"))
        f.write(struct.pack("<q", len(v)))
        f.write(struct.pack("<%df" % len(v), *v))


def rnn_case(p, a):
    cell, B, T, Fin, u, reset_after, backwards, zero_out, has_mask = p
    x = a["x"].reshape(B, T, Fin).requires_grad_()
    G = cell * u
    W = a["kernel"].reshape(Fin, G).requires_grad_()
    U = a["rec"].reshape(u, G).requires_grad_()
    nb = 2 * G if (cell == 3 and reset_after) else G
    b = a["bias"].reshape(nb).requires_grad_()
    mask = a["mask"].reshape(B, T) if has_mask else torch.ones(B, T)
    h = torch.zeros(B, u); c = torch.zeros(B, u)
    outs = []
    order = range(T - 1, -1, -1) if backwards else range(T)
    for t in order:
        xt, m = x[:, t, :], mask[:, t:t + 1]
        if cell == 1:  # SimpleRNN via torch's cell
            hn = torch.tanh(xt @ W + h @ U + b); cn = c
        elif cell == 4:  # LSTM: torch.nn.functional's cell with transposed Keras weights
            hn, cn = torch._VF.lstm_cell(xt, (h, c), W.t(), U.t(), b, torch.zeros(G))
        elif reset_after:  # torch's GRU cell is reset_after; reorder z, r, h -> r, z, n
            perm = lambda w: torch.cat([w[..., u:2 * u], w[..., :u], w[..., 2 * u:]], -1)
            hn = torch._VF.gru_cell(xt, h, perm(W).t(), perm(U).t(), perm(b[:G]), perm(b[G:]))
            cn = c
        else:  # reset_before, by hand
            xz, xr, xh = (xt @ W + b).split(u, 1)
            z = torch.sigmoid(xz + h @ U[:, :u]); r = torch.sigmoid(xr + h @ U[:, u:2 * u])
            n = torch.tanh(xh + (r * h) @ U[:, 2 * u:])
            hn = z * h + (1 - z) * n; cn = c
        h = m * hn + (1 - m) * h
        c = m * cn + (1 - m) * c
        outs.append(h * m if zero_out else h)
    seq = torch.stack(outs, 1)
    loss = (seq * a["dseq"].reshape(B, T, u)).sum() + (h * a["dh"].reshape(B, u)).sum()
    if cell == 4:
        loss = loss + (c * a["dc"].reshape(B, u)).sum()
    loss.backward()
    r = {"seq": seq, "h": h}
    if cell == 4:
        r["c"] = c
    r.update({"dx": x.grad, "dkernel": W.grad, "drec": U.grad, "dbias": b.grad})
    return r


def attention_case(p, a):
    B, Tq, Tv, H, K, V, causal, has_kmask = p
    q = a["q"].reshape(B, Tq, H, K).requires_grad_()
    k = a["k"].reshape(B, Tv, H, K).requires_grad_()
    v = a["v"].reshape(B, Tv, H, V).requires_grad_()
    s = torch.einsum("bqhk,bvhk->bhqv", q, k) / (K ** 0.5)
    m = torch.ones(B, 1, Tq, Tv)
    if has_kmask:
        m = m * a["kmask"].reshape(B, 1, 1, Tv)
    if causal:
        m = m * torch.tril(torch.ones(Tq, Tv))
    pr = torch.softmax(s + (1 - m) * -1e9, -1)
    o = torch.einsum("bhqv,bvhd->bqhd", pr, v)
    (o * a["dout"].reshape(B, Tq, H, V)).sum().backward()
    return {"o": o, "dq": q.grad, "dk": k.grad, "dv": v.grad}


def layer_norm_case(p, a):
    rows, c = p
    x = a["x"].reshape(rows, c).requires_grad_()
    g = a["gamma"].requires_grad_(); b = a["beta"].requires_grad_()
    y = F.layer_norm(x, (c,), g, b, eps=1e-3)
    (y * a["dy"].reshape(rows, c)).sum().backward()
    return {"y": y, "dx": x.grad, "dgamma": g.grad, "dbeta": b.grad}


def conv1d_case(p, a):
    B, T, C, Fo, k, s, d, pad = p  # pad 0 valid, 1 same, 2 causal
    x = a["x"].reshape(B, T, C).transpose(1, 2).requires_grad_()
    W = a["kernel"].reshape(k, C, Fo).permute(2, 1, 0).contiguous().requires_grad_()
    b = a["bias"].requires_grad_()
    xi = x
    if pad == 2:
        xi = F.pad(x, ((k - 1) * d, 0))
    elif pad == 1:  # TF 'same': out = ceil(T / s), extra pad after
        out = -(-T // s)
        tot = max((out - 1) * s + (k - 1) * d + 1 - T, 0)
        xi = F.pad(x, (tot // 2, tot - tot // 2))
    y = F.conv1d(xi, W, b, stride=s, dilation=d).transpose(1, 2)
    (y * a["dy"].reshape(y.shape)).sum().backward()
    return {"y": y, "dx": x.grad.transpose(1, 2), "dkernel": W.grad.permute(2, 1, 0), "dbias": b.grad}


def main():
    cases = read_cases(sys.argv[1])
    fns = {"rnn": rnn_case, "attention": attention_case, "layer_norm": layer_norm_case, "conv1d": conv1d_case}
    with open(sys.argv[2], "wb") as f:
        for kind, params, arrays in cases:
            write_arrays(f, fns[kind](params, arrays))


main()
