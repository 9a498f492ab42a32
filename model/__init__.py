"""The DCGAN training engine: plain PyTorch, no web or queue code.

Import the pieces from their modules (`model.train.train`, `model.sampling.generate`, ...);
this package file stays empty so that `import model.synth` does not pull in torch.
"""
