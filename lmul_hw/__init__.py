"""lmul-hw: the L-Mul algorithm (Luo & Sun, arXiv 2410.00907) as verified hardware."""

__version__ = "0.1.0"
