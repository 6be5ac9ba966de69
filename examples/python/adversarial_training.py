#!/usr/bin/env python3
"""Adversarial training (Madry et al.) of a small CNN on CIFAR-10 with sdsgsm.PGD as the attack:
every batch is attacked on the model's current weights, and the model learns from the
adversarials. Small enough to run in well under a minute on two cores:

    PYTHONPATH=build/python python3 examples/python/adversarial_training.py [--data data/cifar10]
        [--count 1024] [--epochs 2] [--steps 3]

Prints each epoch's mean loss, then the clean and the PGD accuracy on 256 test images.
"""
import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F

import sdsgsm


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 3, stride=2, padding=1)
        self.bn2 = nn.BatchNorm2d(32)
        self.fc = nn.Linear(32 * 4 * 4, 10)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 4), 1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="data/cifar10")
    ap.add_argument("--count", type=int, default=1024, help="training images")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3, help="PGD steps per batch")
    ap.add_argument("--batch", type=int, default=128)
    args = ap.parse_args()

    torch.manual_seed(0)
    x, y = sdsgsm.load_data(args.data, split="train", count=args.count)
    x_test, y_test = sdsgsm.load_data(args.data, split="test", count=256)
    model = SmallCNN()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    # Made once: the model is scripted once; each call attacks its weights as they are then.
    attack = sdsgsm.PGD(model, eps=8 / 255, alpha=2 / 255, steps=args.steps, threads=2)

    for epoch in range(1, args.epochs + 1):
        model.train()
        losses = []
        for i in range(0, x.shape[0], args.batch):
            xb, yb = x[i:i + args.batch], y[i:i + args.batch]
            adv = attack(xb, yb)  # evaluation-mode copy of the current weights; model stays in training mode
            loss = F.cross_entropy(model(adv), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        print(f"epoch {epoch}: adversarial loss {sum(losses) / len(losses):.4f}")

    model.eval()
    with torch.no_grad():
        clean = (model(x_test).argmax(1) == y_test).float().mean().item()
    adv = attack(x_test, y_test)
    with torch.no_grad():
        robust = (model(adv).argmax(1) == y_test).float().mean().item()
    print(f"clean accuracy {clean:.2%}, PGD-{args.steps} accuracy {robust:.2%} (eps 8/255, 256 test images)")


if __name__ == "__main__":
    main()
