"""SSIM oracle for the tests: scikit-image's structural_similarity on raw float64 images.

usage: ssim_oracle.py CLEAN.raw ADV.raw N C H W  -> prints one SSIM per image
"""
import sys

import numpy as np
from skimage.metrics import structural_similarity

clean_path, adv_path = sys.argv[1], sys.argv[2]
n, c, h, w = (int(v) for v in sys.argv[3:7])
clean = np.fromfile(clean_path, dtype=np.float64).reshape(n, c, h, w)
adv = np.fromfile(adv_path, dtype=np.float64).reshape(n, c, h, w)
for a, b in zip(clean, adv):
    s = structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                              data_range=1, channel_axis=0)
    print(repr(float(s)))
