"""Errors of the deploy-side runtime (it never imports nnspec, so it has its own)."""


class RuntimeModelError(ValueError):
    """The model file cannot be loaded, or an input does not fit the model."""


class DeviceError(RuntimeError):
    """The requested device (CUDA) cannot be used."""


class ColumnError(RuntimeModelError):
    """A value of a raw-column input that the model cannot take: ``column``, ``row`` (from 0)
    and ``detail`` (what was expected and received), for callers that know the row's origin
    (``nnspec predict`` turns the row into the file's line)."""

    def __init__(self, column: str, row: int, detail: str):
        super().__init__(f"column '{column}', row {row}: {detail}")
        self.column, self.row, self.detail = column, row, detail
