"""Custom TFX pieces of the DIIT pipeline: the span CSV ExampleGen, the validation gate, the Transform module,
the source-trainer `run_fn`, the DIIT trainer component and the atomic pusher."""
