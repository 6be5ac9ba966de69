#!/usr/bin/env python3
"""The README's Python example as a script, for the installed module (no PYTHONPATH needed):

    python3 examples/python/attack.py [CIFAR10_DIR]      (default: data/cifar10)

Attacks the first 64 CIFAR-10 test images of the shipped ResNet-20 with SD-SGSM and prints the
attack success rate. python/tests checks that the lines below the marker are the README's.
"""
import sys

import sdsgsm

data = sys.argv[1] if len(sys.argv) > 1 else "data/cifar10"

# --- the README's example (its data folder the argument) ---
model = sdsgsm.load_model("resnet20")               # a torch.jit.ScriptModule: model(x) gives logits
x, y = sdsgsm.load_data(data, count=64)   # float 64 x 3 x 32 x 32 in [0,1], int64 labels
r = sdsgsm.attack(model, x, y, attack="sdsgsm", eps=8/255)
adv = r["adversarial"]                              # float 64 x 3 x 32 x 32
print(f"ASR {r['summary']['float']['asr']:.2%} (8-bit {r['summary']['rounded_8bit']['asr']:.2%}), "
      f"mean SSIM {r['ssim'].mean():.4f}, l2 {r['l2'].mean():.3f}")
