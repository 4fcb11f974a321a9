"""edgefer.convert: export to ONNX, OpenVINO IR and TensorRT, each artifact checked before it is written."""
