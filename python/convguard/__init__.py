"""convguard's Python side.

convguard finds convolution configurations that hang, crash or compute wrong on a GPU
stack (see the repository's README). The probing, the store and the planner are C++;
what lives here is what must run inside a Python interpreter:

- convguard.worker: the worker of the "torch" backend, which runs probes with PyTorch
  (docs/torch-worker.md). The C++ engine starts it through
  python/convguard_torch_worker.py.

Importing this package imports nothing else: `import convguard` never imports torch.
"""
