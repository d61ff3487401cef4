#!/usr/bin/python3
"""PyTorch reference for the two example CNNs that ../shared/bench/models.py
lacks: the NIN variant (examples/cnn_nin.conf) and the Fashion-MNIST CNN
(examples/fashion_mnist_cnn.conf). Same method as train_bench.py: full
training steps on a fixed synthetic batch after a warm-up, channels_last,
the median of several timed repetitions; prints one JSON line.

Usage: torch_extra.py --model nin|fm --threads N [--reps 3] [--target-s 2]
"""
import argparse, json, statistics, time
import torch
import torch.nn as nn

ap = argparse.ArgumentParser()
ap.add_argument("--model", required=True, choices=["nin", "fm"])
ap.add_argument("--threads", type=int, required=True)
ap.add_argument("--reps", type=int, default=3)
ap.add_argument("--target-s", type=float, default=2.0)
args = ap.parse_args()
torch.set_num_threads(args.threads)
torch.manual_seed(0)

if args.model == "nin":
    shape, batch = (3, 32, 32), 64
    model = nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 1), nn.ReLU(),
        nn.Conv2d(32, 32, 1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 1), nn.ReLU(),
        nn.Conv2d(64, 10, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())
else:
    shape, batch = (1, 28, 28), 64
    model = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(32 * 13 * 13, 128), nn.ReLU(), nn.Linear(128, 10))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
loss_fn = nn.CrossEntropyLoss()
model = model.to(memory_format=torch.channels_last)
x = torch.randn(batch, *shape).contiguous(memory_format=torch.channels_last)
y = torch.randint(0, 10, (batch,))


def step():
    opt.zero_grad(set_to_none=True)
    loss_fn(model(x), y).backward()
    opt.step()


t0 = time.perf_counter()
while time.perf_counter() - t0 < 1.5:
    step()
t0, n = time.perf_counter(), 0
while time.perf_counter() - t0 < 0.5:
    step()
    n += 1
steps = max(3, int(n * args.target_s / 0.5))
rates = []
for _ in range(args.reps):
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    rates.append(steps * batch / (time.perf_counter() - t0))
print(json.dumps({"model": args.model, "threads": args.threads, "batch": batch,
                  "images_per_s_median": statistics.median(rates), "images_per_s_reps": rates}))
