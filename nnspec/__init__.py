"""nnspec: a declarative model-spec compiler. YAML spec -> NumPy backprop training -> ONNX.

The public API::

    spec = nnspec.load_spec("specs/iris.yaml")
    network = nnspec.build(spec, seed=0)            # untrained; .parameters(), .forward(x)
    loss, grads = network.loss_and_gradients(x, y)
    network, history = nnspec.train(spec)
    model = nnspec.export(network, "iris.onnx")
"""

from ._version import __version__
from .errors import DataError, ModelError, NnspecError, SpecError
from .network import Network
from .pipeline import build, export, resolve, train
from .spec import Spec, load_spec
from .train.loop import History

__all__ = [
    "DataError",
    "History",
    "ModelError",
    "Network",
    "NnspecError",
    "Spec",
    "SpecError",
    "__version__",
    "build",
    "export",
    "load_spec",
    "resolve",
    "train",
]
