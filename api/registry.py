"""Public model names (ids and aliases) resolved to the Triton models that serve them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from api.errors import InvalidRequestError, ModelNotFoundError
from api.settings import ModelKind, ServedModel


class ModelRegistry:
    """Lookup of served models by id or alias, checked against what the route needs."""

    def __init__(self, models: Iterable[ServedModel]) -> None:
        self._models = list(models)
        self._by_name = {
            name: model for model in self._models for name in (model.id, *model.aliases)
        }

    def __iter__(self) -> Iterator[ServedModel]:
        return iter(self._models)

    def get(self, name: str) -> ServedModel:
        model = self._by_name.get(name)
        if model is None:
            raise ModelNotFoundError(name)
        return model

    def resolve(self, name: str, kind: ModelKind) -> ServedModel:
        """The model for ``name``; 404 if unknown, 400 if it cannot do ``kind``."""
        model = self.get(name)
        if model.kind is not kind:
            raise InvalidRequestError(
                f"The model '{name}' is a {model.kind.value} model and does not support "
                f"this endpoint.",
                param="model",
                code="model_not_supported",
            )
        return model

    def triton_models(self) -> list[str]:
        return sorted({model.triton_model for model in self._models})
