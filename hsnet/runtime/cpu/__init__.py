"""CPU kernels computing the model's operations faster than the formulas: oneDNN products, correlation of the
positions a support mask keeps, the center-pivot conv on kept pivots, and backbone conv + BatchNorm folded.
``hsnet.runtime.kernels`` picks them; each equals its formula in ``hsnet.model`` up to float rounding."""
