"""The TFX pipeline of DIIT: one run per period (span), per-domain source trainers, the DIIT trainer of the student,
per-domain TFMA evaluation and a push of the student alone. See docs/pipeline.md."""
