"""A typical small training script: linear regression on synthetic data, with the usual
structure (data, model, optimizer, loop, evaluation). Used by benchmarks/static_speed.py."""

import argparse
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


def parse_args():
    parser = argparse.ArgumentParser(description="Fit a linear model with SGD")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--features", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def make_data(n, features, noise=0.1, seed=0):
    generator = torch.Generator().manual_seed(seed)
    X = torch.randn(n, features, generator=generator)
    true_w = torch.arange(1, features + 1, dtype=torch.float32).unsqueeze(1)
    y = X @ true_w + 0.5 + noise * torch.randn(n, 1, generator=generator)
    return X, y


class LinearRegression(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, 1)

    def forward(self, x):
        return self.linear(x)


def evaluate(model, loader):
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for xb, yb in loader:
            pred = model(xb)
            total += F.mse_loss(pred, yb, reduction="sum").item()
            count += len(xb)
    model.train()
    return total / count


def train_one_epoch(model, loader, optimizer, clip=None):
    running = 0.0
    for xb, yb in loader:
        optimizer.zero_grad()
        pred = model(xb)
        loss = F.mse_loss(pred, yb)
        loss.backward()
        if clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        running += loss.item()
    return running / len(loader)


def closed_form(X, y):
    ones = torch.ones(len(X), 1)
    design = torch.cat([X, ones], dim=1).double()
    solution = torch.linalg.lstsq(design, y.double()).solution
    return solution[:-1].squeeze(1), solution[-1].item()


def main():
    args = parse_args()
    torch.manual_seed(args.seed)
    X, y = make_data(1000, args.features, seed=args.seed)
    split = int(0.8 * len(X))
    train = TensorDataset(X[:split], y[:split])
    valid = TensorDataset(X[split:], y[split:])
    train_loader = DataLoader(train, batch_size=args.batch_size, shuffle=True)
    valid_loader = DataLoader(valid, batch_size=256)

    model = LinearRegression(args.features)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=20, gamma=0.5)

    history = []
    started = time.perf_counter()
    for epoch in range(args.epochs):
        train_loss = train_one_epoch(model, train_loader, optimizer, clip=10.0)
        valid_loss = evaluate(model, valid_loader)
        scheduler.step()
        history.append((train_loss, valid_loss))
        if epoch % 10 == 0 or epoch == args.epochs - 1:
            print(f"epoch {epoch:3d} train {train_loss:.4f} valid {valid_loss:.4f}")
    elapsed = time.perf_counter() - started

    w, b = closed_form(X[:split], y[:split])
    learned = model.linear.weight.detach().squeeze(0).double()
    gap = torch.linalg.norm(learned - w).item()
    print(f"trained in {elapsed:.2f}s; distance to the lstsq optimum {gap:.2e}")
    print(f"bias {model.linear.bias.item():.4f} vs {b:.4f}; rmse {math.sqrt(history[-1][1]):.4f}")


if __name__ == "__main__":
    main()
