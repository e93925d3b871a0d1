"""Serving the exported DIIT student: TF Serving configs, a gRPC/REST client, a local TF-Serving-compatible server
with hot reload, a load test and warmup records. Only `tensorflow` and `tensorflow_serving.apis` are needed here;
the SavedModel itself never needs `diit_tf`. See docs/serving.md."""
