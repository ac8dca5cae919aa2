"""``RecordTemp``: a step that reads and writes named artifacts of a run (Qlib's records)."""

from __future__ import annotations

import posixpath
from typing import Any, ClassVar

from alphalab.exceptions import NotFoundError, TrackingError
from alphalab.tracking import R, Recorder


class RecordTemp:
    """Base of the record templates.

    A record writes its artifacts under :attr:`artifact_path` of a run and may depend on the
    artifacts of another record (:attr:`depend_cls`); :meth:`check` tells clearly which
    artifact is missing before any work is done.
    """

    artifact_path: ClassVar[str | None] = None
    depend_cls: ClassVar[type[RecordTemp] | None] = None

    def __init__(self, recorder: Recorder | None = None) -> None:
        self._recorder = recorder

    @property
    def recorder(self) -> Recorder:
        """The run this record reads and writes (default: the active run)."""
        if self._recorder is None:
            try:
                self._recorder = R.get_recorder()
            except TrackingError as e:
                raise TrackingError(
                    f"{type(self).__name__} needs a recorder: pass recorder=... or run it "
                    "inside `with R.start(...)`"
                ) from e
        return self._recorder

    @classmethod
    def get_path(cls, path: str | None = None) -> str:
        """The artifact path of ``path`` inside this record's folder."""
        parts = [p for p in (cls.artifact_path, path) if p]
        return posixpath.join(*parts) if parts else ""

    def save(self, **objects: Any) -> None:
        """Save objects under this record's artifact folder."""
        self.recorder.save_objects(artifact_path=self.artifact_path, **objects)

    def generate(self, **kwargs: Any) -> None:
        """Compute and save this record's artifacts."""
        raise NotImplementedError

    def list(self) -> list[str]:
        """Artifact paths this record writes."""
        return []

    def _exists(self, path: str) -> bool:
        folder = posixpath.dirname(path) or None
        return path in self.recorder.list_artifacts(folder)

    def load(self, name: str, parents: bool = True) -> Any:
        """Load an artifact of this record, or of the records it depends on."""
        path = self.get_path(name)
        if self._exists(path):
            return self.recorder.load_object(path)
        if parents and self.depend_cls is not None:
            return self.depend_cls(recorder=self.recorder).load(name, parents=True)
        raise NotFoundError(
            f"Artifact {path!r} is not in run {self.recorder.id}; run {type(self).__name__} first"
        )

    def check(self, include_self: bool = False, parents: bool = True) -> None:
        """Raise NotFoundError naming the first missing artifact this record needs."""
        if include_self:
            for path in self.list():
                if not self._exists(path):
                    raise NotFoundError(
                        f"{type(self).__name__}: artifact {path!r} is missing from run "
                        f"{self.recorder.id}"
                    )
        if parents and self.depend_cls is not None:
            parent = self.depend_cls(recorder=self.recorder)
            for path in parent.list():
                if not parent._exists(path):
                    raise NotFoundError(
                        f"{type(self).__name__} needs {path!r}, written by "
                        f"{self.depend_cls.__name__}, but run {self.recorder.id} does not have "
                        f"it; add {self.depend_cls.__name__} before {type(self).__name__} in "
                        "the record list"
                    )
            parent.check(include_self=False, parents=True)
