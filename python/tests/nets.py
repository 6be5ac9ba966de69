"""Small modules the Python tests attack: a plain CNN, and one that only tracing can prepare."""
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, 10))

    def forward(self, x):
        return self.body(x)


class TraceOnly(Net):
    def forward(self, *xs):  # varargs: torch.jit.script refuses them, tracing takes them
        return self.body(xs[0])
