"""The deployable generator: ONNX export, the numpy/onnxruntime runtime and its cards."""
