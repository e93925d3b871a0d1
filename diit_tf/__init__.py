"""diit-tf: DIIT (Domain-Invariant Information Transfer, Huang et al., CIKM 2024) in Keras 3 and TFX.

Vocabulary (used the same way everywhere): a *domain* has its own CTR model; the *target* domain's model is the
*student*, the frozen *source* models are the *teachers*; the *gate* aggregates sources, the *mapper* carries the
aggregated source representation into the student's space, the *discriminator* tells the two apart, the *migrator*
is the multi-spot distillation; data arrives in *periods* (TFX *spans*).
"""

__version__ = "0.1.0"
