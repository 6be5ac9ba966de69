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


def longest_pause_during(run):
    """Runs `run()` while another Python thread ticks every millisecond; returns the call's duration
    and the longest pause between ticks during it (an attack holding the GIL would span it all)."""
    import threading
    import time
    stamps, stop = [], threading.Event()

    def tick():
        while not stop.is_set():
            stamps.append(time.monotonic())
            time.sleep(0.001)

    t = threading.Thread(target=tick)
    t.start()
    try:
        time.sleep(0.05)
        t0 = time.monotonic()
        run()
        t1 = time.monotonic()
    finally:
        stop.set()
        t.join()
    ticks = [t0] + [s for s in stamps if t0 <= s <= t1] + [t1]
    return t1 - t0, max(b - a for a, b in zip(ticks, ticks[1:]))
